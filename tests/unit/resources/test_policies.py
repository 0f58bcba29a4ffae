"""The deny policy covers every write path; coverage reads wildcards; the recovery role is least privilege."""

from __future__ import annotations

import json

import pytest

from recovery_helpers.resources.policies import (
    WRITE_ACTIONS,
    action_matches,
    covers_all_writes,
    deny_write_policy,
    merged_deny_policy,
    recovery_role_actions,
    recovery_role_policy,
)

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
SEED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "RevokeWritePermission",
            "Effect": "Deny",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Resource": ["*"],
        }
    ],
}


def _deny(action, resource="*", **extra):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}],
    }


def test_the_seed_policy_misses_batch_and_partiql_writes():
    assert covers_all_writes(SEED) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ]


def test_deny_write_policy_covers_every_write_on_the_table_and_its_indexes():
    doc = deny_write_policy([TABLE])
    assert covers_all_writes(doc, TABLE) == []
    assert doc["Statement"][0]["Resource"] == [TABLE, f"{TABLE}/index/*"]
    assert covers_all_writes(doc, TABLE.replace("orders", "other")) == list(WRITE_ACTIONS)
    assert deny_write_policy()["Statement"][0]["Resource"] == ["*"]
    # The document survives JSON, as IAM stores it.
    assert covers_all_writes(json.dumps(doc), TABLE) == []


def test_condition_check_is_not_denied_because_it_cannot_write():
    assert "dynamodb:ConditionCheckItem" not in WRITE_ACTIONS
    assert "dynamodb:TransactWriteItems" not in WRITE_ACTIONS  # not an IAM action: authorised per element


@pytest.mark.parametrize(
    "actions, missing",
    [
        ("dynamodb:*", []),
        ("*", []),
        (["dynamodb:*Item", "dynamodb:PartiQL*"], []),
        ("dynamodb:*Item", ["dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"]),
        (
            [
                "DynamoDB:putitem",
                "dynamodb:UPDATEITEM",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:PartiQL?nsert",
                "dynamodb:PartiQLUpdate",
            ],
            ["dynamodb:PartiQLDelete"],
        ),
        ("dynamodb:Get*", list(WRITE_ACTIONS)),
    ],
)
def test_coverage_understands_wildcards_and_case(actions, missing):
    assert covers_all_writes(_deny(actions)) == missing


def test_coverage_of_not_action_not_resource_conditions_and_allows():
    assert covers_all_writes(_deny_not_action(["dynamodb:Get*", "dynamodb:Query"])) == []
    assert covers_all_writes(_deny_not_action(["dynamodb:PartiQL*"])) == [
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ]
    conditional = _deny("dynamodb:*", Condition={"StringEquals": {"aws:PrincipalTag/team": "x"}})
    assert covers_all_writes(conditional) == list(WRITE_ACTIONS)
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
    }
    assert covers_all_writes(allow) == list(WRITE_ACTIONS)
    not_resource = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "NotResource": TABLE}],
    }
    assert covers_all_writes(not_resource, TABLE) == list(WRITE_ACTIONS)
    assert covers_all_writes(_deny("dynamodb:*", "arn:aws:dynamodb:*:*:table/ord*"), TABLE) == []


def _deny_not_action(not_actions):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "NotAction": not_actions, "Resource": "*"}],
    }


def test_brackets_in_patterns_are_literal_as_in_iam():
    assert not action_matches("dynamodb:[P]utItem", "dynamodb:PutItem")


def test_completing_an_existing_policy_keeps_the_tables_it_already_denied():
    other = TABLE.replace("orders", "invoices")
    merged = merged_deny_policy(_deny(["dynamodb:PutItem"], [other]), TABLE)
    assert covers_all_writes(merged, TABLE) == [] and covers_all_writes(merged, other) == []
    assert covers_all_writes(merged_deny_policy(SEED, TABLE), "arn:aws:dynamodb:eu-west-1:1:table/x") == []


def test_recovery_role_policy_is_least_privilege():
    doc = recovery_role_policy(
        "orders",
        "123456789012",
        "us-east-1",
        app_role_name="orders-app",
        log_group="/app/orders",
        export_bucket="exports",
        export_prefix="orders/",
    )
    actions = recovery_role_actions(doc)
    # Every action the runbook performs...
    for needed in [
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:RestoreTableToPointInTime",
        "dynamodb:RestoreTableFromBackup",
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:TagResource",
        "dynamodb:DeleteTable",
        "ssm:GetParameter",
        "ssm:PutParameter",
        "ssm:DeleteParameter",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:CreatePolicyVersion",
        "sts:AssumeRole",
        "logs:FilterLogEvents",
        "s3:GetObject",
        "s3:ListBucket",
        "iam:SimulatePrincipalPolicy",
    ]:
        assert needed in actions, needed
    # ...and no more: no service wildcards, no IAM role/user administration, no writes to other tables.
    assert not any("*" in a for a in actions)
    for forbidden in [
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:CreateUser",
        "iam:PassRole",
        "dynamodb:CreateTable",
        "dynamodb:UpdateTable",
        "dynamodb:DeleteBackup",
    ]:
        assert forbidden not in actions, forbidden
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert not {"dynamodb:DeleteTable", "dynamodb:BatchWriteItem"} & set(by_sid["LiveTable"]["Action"])
    assert by_sid["LiveTable"]["Resource"] == [f"{TABLE}", f"{TABLE}/index/*"]
    assert by_sid["RestoredTables"]["Resource"][0] == f"{TABLE}-restored-*"
    assert by_sid["ContainAppRole"]["Condition"] == {
        "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::123456789012:policy/DenyWrite"}
    }
    assert by_sid["ContainAppRole"]["Resource"] == "arn:aws:iam::123456789012:role/orders-app"
    assert (
        by_sid["ReadOnlyParameter"]["Resource"]
        == "arn:aws:ssm:us-east-1:123456789012:parameter/read-only-customers"
    )
    assert by_sid["ExportObjects"]["Resource"] == "arn:aws:s3:::exports/orders/*"
    wide = [s["Sid"] for s in doc["Statement"] if s["Resource"] == "*"]
    assert sorted(wide) == ["ChangeLogLookup", "ListOnly"]  # APIs without resource-level permissions


def test_recovery_role_policy_only_names_what_is_configured():
    doc = recovery_role_policy("orders", "123456789012", "us-east-1")
    sids = {s["Sid"] for s in doc["Statement"]}
    assert not sids & {"ContainAppRole", "ChangeLog", "AuditTable", "ExportObjects"}
    assert len(json.dumps(doc)) < 6144  # IAM's inline role policy size limit (10,240 chars; managed 6,144)


def test_the_recovery_role_can_restore_and_read_but_not_drop_or_write_elsewhere(
    sandbox, aws, unique_name, tmp_path
):
    """Acting as the role 01_prepare creates: DynamoDB evaluates its policy per table ARN in the sandbox."""
    from botocore.exceptions import ClientError

    from recovery_helpers.prepare import check_readiness
    from recovery_helpers.restore import restore_table
    from tests.conftest import create_table
    from tests.containment_support import attempt, context

    table = create_table(aws.dynamodb, unique_name)
    other = create_table(aws.dynamodb, f"{unique_name}-other", pitr=False)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}})
    role = f"rec-{unique_name}"[:64]
    check_readiness(
        context(aws, tmp_path, table, "setup"),
        app_role_name=None,
        apply=True,
        recovery_role_name=role,
        deny_policy_name=f"deny-{unique_name}",
        read_only_parameter=f"ro-{unique_name}",
    )
    recovery = aws.assume_role(f"arn:aws:iam::{aws.account_id}:role/{role}")
    sandbox.advance(1)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1)

    result = restore_table(
        context(recovery, tmp_path, table), restore_time=t.isoformat(), poll_seconds=0.02, progress=False
    )

    ddb = recovery.dynamodb
    assert ddb.get_item(TableName=result.restored_table_name, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})[
        "Item"
    ]
    assert (
        attempt(
            lambda: ddb.put_item(
                TableName=table,
                Item={"pk": {"S": "b"}, "sk": {"S": "1"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
        == "ok"
    )
    assert (
        attempt(lambda: ddb.put_item(TableName=other, Item={"pk": {"S": "b"}, "sk": {"S": "1"}})) == "denied"
    )
    assert attempt(lambda: ddb.delete_table(TableName=table)) == "denied"
    assert (
        attempt(
            lambda: ddb.batch_write_item(
                RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}}]}
            )
        )
        == "denied"
    )
    assert attempt(lambda: ddb.delete_table(TableName=result.restored_table_name)) == "ok"
    try:
        ddb.restore_table_to_point_in_time(
            SourceTableName=table, TargetTableName=f"{unique_name}-elsewhere", RestoreDateTime=t
        )
        raise AssertionError("a restore into a table outside <table>-restored-* must be denied")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException"
