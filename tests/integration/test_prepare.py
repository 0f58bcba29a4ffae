"""Readiness: each missing prerequisite is flagged with what to do, and apply=True fixes what it can."""

from __future__ import annotations

import json

import pytest

from recovery_helpers.prepare import RECOVERY_POLICY_NAME, check_readiness
from recovery_helpers.resources.policies import WRITE_ACTIONS, covers_all_writes, recovery_role_policy
from tests.conftest import create_table
from tests.containment_support import context, make_app_role


@pytest.fixture
def names(unique_name):
    return {
        "role": f"app-{unique_name}"[:64],
        "param": f"ro-{unique_name}",
        "policy": f"deny-{unique_name}"[:120],
        "log": f"/app/{unique_name}",
        "recovery": f"rec-{unique_name}"[:64],
    }


def _check(ctx, n, **kw):
    return check_readiness(
        ctx, app_role_name=n["role"], read_only_parameter=n["param"], deny_policy_name=n["policy"], **kw
    )


def test_a_table_with_nothing_prepared_fails_every_check(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = context(aws, tmp_path, table)
    report = _check(ctx, names)
    rows = {c.check: c for c in report.checks}
    assert rows["table exists"].ok
    assert not rows["point-in-time recovery"].ok and "apply=True" in rows["point-in-time recovery"].todo
    assert not rows["application role"].ok and "no IAM role" in rows["application role"].detail
    assert not rows[f"deny policy {names['policy']!r}"].ok
    assert not rows[f"read-only parameter {names['param']!r}"].ok
    assert not rows["change record"].ok and "incremental export" in rows["change record"].todo
    assert not report.ok and all(c.todo for c in report.failing)
    # Checking changed nothing.
    assert ctx.incident.timeline == []
    assert (
        aws.dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"
        ]["PointInTimeRecoveryStatus"]
        == "DISABLED"
    )
    assert report.to_frame().columns.tolist() == ["check", "ok", "detail", "what to do", "fixed now"]


def test_apply_fixes_what_it_can_and_records_it(aws, unique_name, tmp_path, names, sandbox):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    make_app_role(aws, names["role"], table)
    aws.logs.create_log_group(logGroupName=names["log"])  # retention unlimited
    ctx = context(aws, tmp_path, table)

    report = _check(ctx, names, apply=True, log_group=names["log"], recovery_role_name=names["recovery"])

    assert report.ok, report.summary()
    fixed = {c.check for c in report.checks if c.fixed}
    assert fixed == {
        "point-in-time recovery",
        f"deny policy {names['policy']!r}",
        f"read-only parameter {names['param']!r}",
        f"recovery role {names['recovery']!r}",
    }
    assert report.pitr["enabled"] and report.pitr["earliest"] and report.pitr["period_days"] == 35
    p = aws.ssm.get_parameter(Name=names["param"])["Parameter"]
    assert (p["Value"], p["Type"]) == ("none", "StringList")
    arn = f"arn:aws:iam::{aws.account_id}:policy/{names['policy']}"
    version = aws.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = aws.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    table_arn = aws.dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
    assert covers_all_writes(doc, table_arn) == []
    # The deny is created, not attached: preparing must not put the application in read-only mode.
    assert aws.iam.list_attached_role_policies(RoleName=names["role"])["AttachedPolicies"] == []
    # The recovery role carries exactly the printed policy.
    raw = aws.iam.get_role_policy(RoleName=names["recovery"], PolicyName=RECOVERY_POLICY_NAME)[
        "PolicyDocument"
    ]
    assert (json.loads(raw) if isinstance(raw, str) else raw) == report.recovery_role_policy
    assert json.loads(report.recovery_role_policy_json) == recovery_role_policy(
        table,
        aws.account_id,
        aws.region,
        app_role_name=names["role"],
        read_only_parameter=names["param"],
        deny_policy_name=names["policy"],
        log_group=names["log"],
    )
    actions = [e["action"] for e in ctx.incident.timeline]
    assert actions == [
        "dynamodb:UpdateContinuousBackups",
        "iam:CreatePolicy",
        "ssm:PutParameter",
        "iam:CreateRole",
        "iam:PutRolePolicy",
    ]
    # Running it again finds everything ready and changes nothing.
    again = _check(ctx, names, apply=True, log_group=names["log"], recovery_role_name=names["recovery"])
    assert again.ok and not again.changes and len(ctx.incident.timeline) == len(actions)


def test_an_incomplete_deny_policy_names_what_is_missing(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    seed = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Resource": "*",
                "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            }
        ],
    }
    aws.iam.create_policy(PolicyName=names["policy"], PolicyDocument=json.dumps(seed))
    ctx = context(aws, tmp_path, table)
    row = _check(ctx, names).row(f"deny policy {names['policy']!r}")
    assert not row.ok
    assert row.detail.endswith(
        "does not deny dynamodb:BatchWriteItem, dynamodb:PartiQLInsert, "
        "dynamodb:PartiQLUpdate, dynamodb:PartiQLDelete"
    )
    fixed = _check(ctx, names, apply=True).row(f"deny policy {names['policy']!r}")
    assert fixed.ok and fixed.fixed and "updated" in fixed.detail
    arn = f"arn:aws:iam::{aws.account_id}:policy/{names['policy']}"
    assert len(aws.iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 2


def test_a_role_that_cannot_write_the_table_is_not_the_application_role(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    make_app_role(aws, names["role"], table, allow=False)
    report = _check(context(aws, tmp_path, table), names)
    assert report.row("application role").ok
    row = report.row("application role is dedicated")
    assert not row.ok and "allows writes" in row.detail


def test_a_role_allowed_to_write_is_dedicated(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    make_app_role(aws, names["role"], table)
    row = _check(context(aws, tmp_path, table), names).row("application role is dedicated")
    assert row.ok and "inline app-rw" in row.detail


def test_a_parameter_of_the_wrong_type_is_flagged_not_changed(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    aws.ssm.put_parameter(Name=names["param"], Value="none", Type="String")
    row = _check(context(aws, tmp_path, table), names, apply=True).row(
        f"read-only parameter {names['param']!r}"
    )
    assert not row.ok and "String" in row.detail and "StringList" in row.todo
    assert aws.ssm.get_parameter(Name=names["param"])["Parameter"]["Type"] == "String"


def test_log_retention_must_cover_the_pitr_period(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    aws.logs.create_log_group(logGroupName=names["log"])
    aws.logs.put_retention_policy(logGroupName=names["log"], retentionInDays=7)
    ctx = context(aws, tmp_path, table)
    row = _check(ctx, names, log_group=names["log"]).row(f"change log {names['log']!r}")
    assert (
        not row.ok and "7 days < PITR period 35 days" in row.detail and "--retention-in-days 60" in row.todo
    )
    aws.logs.put_retention_policy(logGroupName=names["log"], retentionInDays=90)
    assert _check(ctx, names, log_group=names["log"]).row(f"change log {names['log']!r}").ok
    missing = _check(ctx, names, log_group=names["log"] + "-nope").row(
        f"change log {names['log'] + '-nope'!r}"
    )
    assert not missing.ok


def test_updated_attribute_must_be_on_items(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    ctx = context(aws, tmp_path, table)
    label = "updated attribute 'updatedAt'"
    assert not _check(ctx, names, updated_attribute="updatedAt").row(label).ok  # empty table: cannot tell
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "updatedAt": {"N": "1"}})
    assert _check(ctx, names, updated_attribute="updatedAt").row(label).ok
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}})
    row = _check(ctx, names, updated_attribute="updatedAt").row(label)
    assert not row.ok and "1 of 2" in row.detail


def test_audit_table_is_set_up_on_apply(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    ctx = context(aws, tmp_path, table)
    audit = f"{unique_name}-audit"
    label = f"audit table {audit!r}"
    assert not _check(ctx, names, audit_table_name=audit).row(label).ok
    row = _check(ctx, names, audit_table_name=audit, apply=True).row(label)
    assert row.ok and row.fixed, row
    assert aws.dynamodb.describe_table(TableName=audit)["Table"]["TableStatus"] == "ACTIVE"
    assert aws.dynamodb.describe_table(TableName=table)["Table"]["StreamSpecification"]["StreamEnabled"]
    assert _check(ctx, names, audit_table_name=audit).row(label).ok


def test_a_missing_table_is_flagged(aws, tmp_path, names):
    report = _check(context(aws, tmp_path, "no-such-table-here"), names)
    assert not report.row("table exists").ok and "check table_name" in report.row("table exists").todo
    assert len(report.row(f"deny policy {names['policy']!r}").detail) > 0


def test_write_actions_in_the_created_policy(aws, unique_name, tmp_path, names):
    table = create_table(aws.dynamodb, unique_name)
    _check(context(aws, tmp_path, table), names, apply=True)
    arn = f"arn:aws:iam::{aws.account_id}:policy/{names['policy']}"
    version = aws.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = aws.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["Statement"][0]["Action"] == list(WRITE_ACTIONS)
