"""IAM in the sandbox holds like AWS's: a Deny on the write actions stops every write path, reads go on."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table

SEED_DENY = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
FULL_DENY = SEED_DENY + [
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
]


@pytest.fixture
def app(aws, unique_name):
    """A table, an application role allowed everything on it, and a client acting as that role."""
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    account = aws.account_id
    role = f"app-{unique_name}"[:60]
    aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    aws.iam.put_role_policy(
        RoleName=role,
        PolicyName="rw",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "dynamodb:*",
                        "Resource": [
                            f"arn:aws:dynamodb:{aws.region}:{account}:table/{table}",
                            f"arn:aws:dynamodb:{aws.region}:{account}:table/{table}/index/*",
                        ],
                    }
                ],
            }
        ),
    )
    as_app = aws.assume_role(f"arn:aws:iam::{account}:role/{role}")
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "existing"}})
    return {"table": table, "role": role, "ddb": as_app.dynamodb, "aws": aws}


def _write_paths(ddb, table):
    key = {"pk": {"S": "existing"}}
    return {
        "PutItem": lambda: ddb.put_item(TableName=table, Item={"pk": {"S": "p1"}}),
        "UpdateItem": lambda: ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET a = :a",
            ExpressionAttributeValues={":a": {"S": "x"}},
        ),
        "DeleteItem": lambda: ddb.delete_item(TableName=table, Key={"pk": {"S": "p1"}}),
        "BatchWriteItem": lambda: ddb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "p2"}}}}]}
        ),
        "TransactWriteItems": lambda: ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "p3"}}}}]
        ),
        "PartiQLInsert": lambda: ddb.execute_statement(
            Statement=f"INSERT INTO \"{table}\" VALUE {{'pk': 'p4'}}"
        ),
        "PartiQLUpdate": lambda: ddb.execute_statement(
            Statement=f"UPDATE \"{table}\" SET a = 'y' WHERE pk = 'existing'"
        ),
        "PartiQLDelete": lambda: ddb.execute_statement(Statement=f"DELETE FROM \"{table}\" WHERE pk = 'p4'"),
    }


def _outcomes(ddb, table):
    out = {}
    for name, call in _write_paths(ddb, table).items():
        try:
            call()
            out[name] = "allowed"
        except ClientError as exc:
            out[name] = exc.response["Error"]["Code"]
    return out


def _deny(aws, role, actions, resource="*"):
    arn = aws.iam.create_policy(
        PolicyName=f"deny-{role}"[:60],
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "Action": actions, "Resource": resource}],
            }
        ),
    )["Policy"]["Arn"]
    aws.iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    return arn


def test_full_deny_stops_every_write_path_but_not_reads(app):
    assert set(_outcomes(app["ddb"], app["table"]).values()) == {"allowed"}
    arn = _deny(app["aws"], app["role"], FULL_DENY)
    outcomes = _outcomes(app["ddb"], app["table"])
    assert outcomes == {name: "AccessDeniedException" for name in outcomes}
    assert app["ddb"].get_item(TableName=app["table"], Key={"pk": {"S": "existing"}})["Item"]
    assert app["ddb"].scan(TableName=app["table"])["Count"] >= 1
    app["aws"].iam.detach_role_policy(RoleName=app["role"], PolicyArn=arn)
    assert set(_outcomes(app["ddb"], app["table"]).values()) == {"allowed"}


def test_seed_articles_policy_leaves_batch_and_partiql_open(app):
    """As on AWS: TransactWriteItems is checked as PutItem etc., BatchWriteItem and PartiQL are separate actions."""
    _deny(app["aws"], app["role"], SEED_DENY)
    outcomes = _outcomes(app["ddb"], app["table"])
    assert outcomes["TransactWriteItems"] == "AccessDeniedException"
    assert outcomes["PutItem"] == outcomes["UpdateItem"] == outcomes["DeleteItem"] == "AccessDeniedException"
    assert outcomes["BatchWriteItem"] == "allowed"
    assert outcomes["PartiQLInsert"] == outcomes["PartiQLUpdate"] == outcomes["PartiQLDelete"] == "allowed"


def test_table_arn_resources_are_evaluated(app, aws):
    other = create_table(aws.dynamodb, f"{app['table']}-other", range_key=None)
    account = aws.account_id
    aws.iam.put_role_policy(
        RoleName=app["role"],
        PolicyName="rw-other",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "dynamodb:*",
                        "Resource": f"arn:aws:dynamodb:{aws.region}:{account}:table/{other}",
                    }
                ],
            }
        ),
    )
    _deny(
        aws, app["role"], FULL_DENY, resource=f"arn:aws:dynamodb:{aws.region}:{account}:table/{app['table']}"
    )
    assert set(_outcomes(app["ddb"], app["table"]).values()) == {"AccessDeniedException"}
    app["ddb"].put_item(TableName=other, Item={"pk": {"S": "still-writable"}})


def test_unknown_credentials_are_refused(sandbox):
    import boto3

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=sandbox.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wrong",
    )
    with pytest.raises(ClientError) as err:
        ddb.list_tables()
    assert err.value.response["Error"]["Code"] in {"UnrecognizedClientException", "InvalidClientTokenId"}


def test_ssm_logs_and_iam_policies_are_evaluated_on_the_resource(aws, sandbox, unique_name):
    account = aws.account_id
    param, other_param = f"{unique_name}-ro", f"{unique_name}-other"
    aws.ssm.put_parameter(Name=param, Type="StringList", Value="none")
    aws.ssm.put_parameter(Name=other_param, Type="String", Value="x")
    group, other_group = f"/{unique_name}/app", f"/{unique_name}/other"
    aws.logs.create_log_group(logGroupName=group)
    aws.logs.create_log_group(logGroupName=other_group)
    role = f"scoped-{unique_name}"[:60]
    aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    aws.iam.put_role_policy(
        RoleName=role,
        PolicyName="scoped",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ssm:GetParameter"],
                        "Resource": f"arn:aws:ssm:{aws.region}:{account}:parameter/{param}",
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["logs:FilterLogEvents"],
                        "Resource": f"arn:aws:logs:{aws.region}:{account}:log-group:{group}:*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["iam:GetPolicy", "iam:CreatePolicy"],
                        "Resource": f"arn:aws:iam::{account}:policy/{unique_name}-deny",
                    },
                ],
            }
        ),
    )
    scoped = aws.assume_role(f"arn:aws:iam::{account}:role/{role}")

    def code(call):
        try:
            call()
            return "allowed"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    doc = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    )
    assert code(lambda: scoped.ssm.get_parameter(Name=param)) == "allowed"
    assert code(lambda: scoped.ssm.get_parameter(Name=other_param)) == "AccessDeniedException"
    assert code(lambda: scoped.logs.filter_log_events(logGroupName=group)) == "allowed"
    assert code(lambda: scoped.logs.filter_log_events(logGroupName=other_group)) == "AccessDeniedException"
    assert (
        code(lambda: scoped.iam.create_policy(PolicyName=f"{unique_name}-deny", PolicyDocument=doc))
        == "allowed"
    )
    assert (
        code(lambda: scoped.iam.create_policy(PolicyName=f"{unique_name}-x", PolicyDocument=doc))
        == "AccessDenied"
    )
