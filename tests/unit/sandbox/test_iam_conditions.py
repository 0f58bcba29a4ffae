"""IAM Condition blocks: evaluated as AWS does for the keys the sandbox knows, strict for the rest.

moto treated every condition but StringEquals on sts:ExternalId as met, so an Allow for one policy ARN or one
S3 prefix allowed them all. Over HTTP, as a role whose only policy is the one under test.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from recovery_helpers.resources import policies
from recovery_helpers.sandbox.iam_conditions import evaluate
from tests.conftest import create_table


def _as_role(aws, name: str, *statements: dict):
    trust = json.dumps(policies.account_trust_policy(aws.account_id))
    aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    doc = {"Version": "2012-10-17", "Statement": list(statements)}
    aws.iam.put_role_policy(RoleName=name, PolicyName="under-test", PolicyDocument=json.dumps(doc))
    return aws.assume_role(policies.role_arn(name, aws.account_id), "conditions")


def _refused(call, *args, **kwargs) -> bool:
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), exc
        return True
    return False


def test_list_bucket_is_allowed_only_under_the_prefix_its_condition_names(sandbox, aws, unique_name):
    bucket = unique_name[:60]
    aws.s3.create_bucket(Bucket=bucket)
    role = _as_role(
        aws,
        f"s3p-{unique_name}"[:60],
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": ["exports/*", "exports"]}},
        },
    )
    assert not _refused(role.s3.list_objects_v2, Bucket=bucket, Prefix="exports/abc/")
    assert _refused(role.s3.list_objects_v2, Bucket=bucket, Prefix="payroll/")
    assert _refused(role.s3.list_objects_v2, Bucket=bucket)  # no prefix: the key is absent, StringLike false


def test_a_negated_arn_condition_and_the_requested_region(sandbox, aws, unique_name):
    app = f"app-{unique_name}"[:60]
    aws.iam.create_role(
        RoleName=app, AssumeRolePolicyDocument=json.dumps(policies.account_trust_policy(aws.account_id))
    )
    arns = {}
    for name in ("keep", "free"):
        made = aws.iam.create_policy(
            PolicyName=f"{name}-{unique_name}"[:60], PolicyDocument=json.dumps(policies.deny_write_policy())
        )
        arns[name] = made["Policy"]["Arn"]
    role = _as_role(
        aws,
        f"neg-{unique_name}"[:60],
        {
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"iam:PolicyARN": arns["keep"]}},
        },
        {
            "Effect": "Allow",
            "Action": "iam:ListRoles",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-3"}},
        },
    )
    assert _refused(role.iam.attach_role_policy, RoleName=app, PolicyArn=arns["keep"])
    assert not _refused(role.iam.attach_role_policy, RoleName=app, PolicyArn=arns["free"])
    assert _refused(role.iam.list_roles)  # asked in us-east-1


def test_a_condition_the_sandbox_cannot_evaluate_never_makes_it_more_lenient(sandbox, aws, unique_name):
    """dynamodb:LeadingKeys is not modelled: the Allow under it does not apply, the Deny under it does."""
    table = create_table(aws.dynamodb, unique_name)
    arn = f"arn:aws:dynamodb:{aws.region}:{aws.account_id}:table/{table}"
    leading = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["tenant-a"]}}
    item = {"pk": {"S": "tenant-a"}, "sk": {"S": "1"}}
    allow_only_under = _as_role(
        aws,
        f"al-{unique_name}"[:60],
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": arn, "Condition": leading},
    )
    assert _refused(allow_only_under.dynamodb.put_item, TableName=table, Item=item)
    deny_under = _as_role(
        aws,
        f"dn-{unique_name}"[:60],
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": arn},
        {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": arn, "Condition": leading},
    )
    assert _refused(deny_under.dynamodb.put_item, TableName=table, Item=item)
    assert not _refused(deny_under.dynamodb.get_item, TableName=table, Key=item)  # the Allow still works


@pytest.mark.parametrize(
    ("condition", "context", "verdict"),
    [
        ({"StringEquals": {"iam:PolicyARN": ["a", "b"]}}, {"iam:policyarn": ["b"]}, True),  # values OR-ed
        ({"StringNotEquals": {"iam:PolicyARN": ["a", "b"]}}, {"iam:policyarn": ["b"]}, False),  # NOR
        ({"StringEquals": {"iam:PolicyARN": "a"}}, {}, False),  # absent key: positive operator false
        ({"StringNotEquals": {"iam:PolicyARN": "a"}}, {}, True),  # ... negated operator true
        ({"StringEqualsIfExists": {"iam:PolicyARN": "a"}}, {}, True),
        ({"Null": {"iam:PolicyARN": "true"}}, {}, True),
        ({"Null": {"iam:PolicyARN": "false"}}, {}, False),
        ({"ForAllValues:StringEquals": {"s3:prefix": "x"}}, {}, True),
        ({"StringLike": {"S3:Prefix": "a?c*"}}, {"s3:prefix": ["abcdef"]}, True),  # keys ignore case
        ({"StringLike": {"s3:prefix": "A*"}}, {"s3:prefix": ["abc"]}, False),  # values do not
        (
            {"ArnLike": {"iam:PolicyARN": "arn:aws:iam::*:policy/p*"}},
            {"iam:policyarn": ["arn:aws:iam::1:policy/px"]},
            True,
        ),
        ({"ArnLike": {"iam:PolicyARN": "arn:aws:*"}}, {"iam:policyarn": ["arn:aws:iam::1:policy/p"]}, False),
        # several operators and keys are AND-ed; False wins over unknown, unknown over True
        ({"StringEquals": {"iam:PolicyARN": "a"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, False),
        (
            {"StringEquals": {"iam:PolicyARN": "a"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            {"iam:policyarn": ["a"]},
            None,
        ),
        (
            {"NumericLessThan": {"iam:PolicyARN": "3"}},
            {"iam:policyarn": ["1"]},
            None,
        ),  # operator not implemented
    ],
)
def test_evaluation_rules(condition, context, verdict):
    assert evaluate(condition, context) is verdict
