"""Step 01's prerequisite checks: the table, point-in-time recovery, the application role and its deny policy,
the read-only parameter, the recovery role. Each returns a :class:`Check` row (split out of prepare.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws import Aws, error_code, explain
from .context import Context
from .resources.dynamodb import iso, pitr_window
from .resources.iam import (
    attached_policy_arns,
    caller_role_name,
    ensure_deny_policy,
    get_policy_document,
    role_name_of,
)
from .resources.policies import WRITE_ACTIONS, account_trust_policy, allows, covers_all_writes, policy_arn
from .resources.readonly import get_parameter, put_parameter, tenants_in

if TYPE_CHECKING:
    from .prepare import ReadinessReport

RECOVERY_POLICY_NAME = "RecoveryRunbook"
SAMPLE_ITEMS = 50


@dataclass
class Check:
    """One prerequisite: did it hold (after any fix), what was found, and what to do if not."""

    check: str
    ok: bool
    detail: str
    todo: str = ""
    fixed: bool = False


def _check_table(ctx: Context, table: dict[str, Any] | None) -> Check:
    if table is None:
        return Check(
            "table exists",
            False,
            f"no table {ctx.table_name!r} in {ctx.aws.region} (account {ctx.aws.account_id})",
            "check table_name, region and the account you are signed in to",
        )
    return Check(
        "table exists",
        True,
        f"{table['TableStatus']}, key {_schema_text(table)}, {table.get('ItemCount', '?')} items (approximate)",
    )


def _schema_text(table: dict[str, Any]) -> str:
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    return " + ".join(
        f"{k['AttributeName']} ({types[k['AttributeName']]}, {k['KeyType'].lower()})"
        for k in table["KeySchema"]
    )


def _check_pitr(ctx: Context, report: ReadinessReport, apply: bool) -> Check:
    aws = ctx.aws
    window = pitr_window(aws, ctx.table_name)
    fixed = False
    if not window["enabled"] and apply:
        try:
            aws.dynamodb.update_continuous_backups(
                TableName=ctx.table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        except ClientError as exc:
            ctx.record("dynamodb:UpdateContinuousBackups", "failed", table=ctx.table_name, error=str(exc))
            raise explain(exc, "dynamodb:UpdateContinuousBackups", ctx.table_name) from exc
        ctx.record("dynamodb:UpdateContinuousBackups", table=ctx.table_name, point_in_time_recovery="enabled")
        report.changes.append("enabled point-in-time recovery")
        window, fixed = pitr_window(aws, ctx.table_name), True
    report.pitr = {k: iso(v) for k, v in window.items()}
    if not window["enabled"]:
        return Check(
            "point-in-time recovery",
            False,
            "disabled: no past version of any item can be restored",
            "run 01_prepare with apply=True (or `aws dynamodb update-continuous-backups "
            f"--table-name {ctx.table_name} --point-in-time-recovery-specification "
            "PointInTimeRecoveryEnabled=true`); only times after enabling are restorable",
        )
    detail = (
        f"enabled; restorable from {report.pitr['earliest']} to {report.pitr['latest']} "
        f"(recovery period {window['period_days']} days)"
    )
    if fixed:
        detail += "; enabled just now, so nothing before now can be restored"
    return Check("point-in-time recovery", True, detail, fixed=fixed)


def _role_documents(aws: Aws, role: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, document) of every inline and attached managed policy of a role."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for page in aws.iam.get_paginator("list_role_policies").paginate(RoleName=role):
        for name in page["PolicyNames"]:
            raw = aws.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            docs.append((f"inline {name}", json.loads(raw) if isinstance(raw, str) else raw))
    for arn in attached_policy_arns(aws, role):
        doc = get_policy_document(aws, arn)
        if doc is not None:
            docs.append((arn, doc))
    return docs


def _check_role(aws: Aws, app_role_name: str | None, live_arn: str, deny_arn: str) -> list[Check]:
    name = "application role"
    if not app_role_name:
        return [
            Check(
                name,
                False,
                "app_role_name not given",
                "set app_role_name to the IAM role your application runs as",
            )
        ]
    role = role_name_of(app_role_name)
    try:
        arn = aws.iam.get_role(RoleName=role)["Role"]["Arn"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return [
                Check(
                    name,
                    False,
                    f"no IAM role {role!r}",
                    "create a dedicated role for the application, or set app_role_name to the one it runs as",
                )
            ]
        raise explain(exc, "iam:GetRole", role) from exc
    try:
        docs = _role_documents(aws, role)
    except ClientError as exc:
        raise explain(exc, "iam:ListRolePolicies", role) from exc
    attached = [n for n, _ in docs]
    contained = deny_arn in attached
    rows = [
        Check(
            name,
            True,
            f"{arn}" + (" (the deny policy is attached right now: writes are denied)" if contained else ""),
        )
    ]
    if caller_role_name(aws.caller_arn) == role:
        rows.append(
            Check(
                "application role is dedicated",
                False,
                f"the runbook runs as this very role ({aws.caller_arn})",
                "run the runbook as a separate recovery role (see the policy below): denying the "
                "application's writes must not stop the recovery",
            )
        )
        return rows
    writers = [n for n, d in docs if any(allows(d, a, live_arn) for a in WRITE_ACTIONS)]
    if not writers:
        rows.append(
            Check(
                "application role is dedicated",
                False,
                f"none of its policies ({', '.join(attached) or 'none'}) allows writes to {live_arn}",
                "is this the role the application writes with? Give the right app_role_name",
            )
        )
    else:
        rows.append(
            Check(
                "application role is dedicated",
                True,
                f"not the runbook's identity; writes allowed by {', '.join(writers)}",
            )
        )
    return rows


def _check_deny_policy(ctx: Context, report: ReadinessReport, name: str, live_arn: str, apply: bool) -> Check:
    aws = ctx.aws
    arn = policy_arn(name, aws.account_id, live_arn.split(":")[1])
    doc = get_policy_document(aws, arn)
    label = f"deny policy {name!r}"
    missing = list(WRITE_ACTIONS) if doc is None else covers_all_writes(doc, live_arn)
    if not missing:
        return Check(label, True, f"{arn} denies every write action on the table")
    found = "does not exist" if doc is None else f"does not deny {', '.join(missing)}"
    if apply:
        arn, change, _ = ensure_deny_policy(ctx, name, live_arn)
        report.changes.append(f"{change} deny policy {arn}")
        return Check(
            label,
            True,
            f"{found}: {change} now ({arn}); it is NOT attached (02_contain does that)",
            fixed=True,
        )
    return Check(
        label,
        False,
        f"{arn} {found}",
        "run 01_prepare with apply=True to create/complete it (it is only attached by 02_contain)",
    )


def _check_parameter(ctx: Context, report: ReadinessReport, name: str, apply: bool) -> Check:
    label = f"read-only parameter {name!r}"
    p = get_parameter(ctx.aws, name)
    if not p["exists"]:
        if apply:
            put_parameter(ctx, name, "none", "StringList", reason="create read-only switch (01_prepare)")
            report.changes.append(f"created parameter {name} = none")
            return Check(label, True, "created now: StringList 'none' (nobody read-only)", fixed=True)
        return Check(
            label,
            False,
            "does not exist",
            "run 01_prepare with apply=True (creates it as StringList 'none'), and make the application "
            "refuse writes for tenants listed in it (or 'all')",
        )
    if p["type"] != "StringList":
        return Check(
            label,
            False,
            f"exists but is a {p['type']} (value {p['value']!r})",
            "make it a StringList (delete and recreate it, value 'none'): the application reads a list",
        )
    readonly = tenants_in(p["value"])
    detail = f"StringList = {p['value']!r}" + (f" (read-only now: {readonly})" if readonly else "")
    return Check(label, True, detail)


def _check_recovery_role(ctx: Context, report: ReadinessReport, name: str, apply: bool) -> Check:
    aws = ctx.aws
    label = f"recovery role {name!r}"
    doc = report.recovery_role_policy
    try:
        aws.iam.get_role(RoleName=name)
        exists = True
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise explain(exc, "iam:GetRole", name) from exc
        exists = False
    current = None
    if exists:
        try:
            raw = aws.iam.get_role_policy(RoleName=name, PolicyName=RECOVERY_POLICY_NAME)["PolicyDocument"]
            current = json.loads(raw) if isinstance(raw, str) else raw
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise explain(exc, "iam:GetRolePolicy", name) from exc
    if current == doc:
        return Check(label, True, f"exists with the {RECOVERY_POLICY_NAME} policy below")
    if not apply:
        what = (
            "does not exist"
            if not exists
            else f"its {RECOVERY_POLICY_NAME} policy differs from the one below"
        )
        return Check(
            label,
            False,
            what,
            "run 01_prepare with apply=True (as an administrator) or create it with the policy below",
        )
    partition = aws.caller_arn.split(":")[1]
    try:
        if not exists:
            aws.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(account_trust_policy(aws.account_id, partition)),
                Description="Runs the DynamoDB partial-recovery runbook",
            )
            ctx.record("iam:CreateRole", role=name)
        aws.iam.put_role_policy(
            RoleName=name, PolicyName=RECOVERY_POLICY_NAME, PolicyDocument=json.dumps(doc)
        )
    except ClientError as exc:
        ctx.record("iam:PutRolePolicy", "failed", role=name, error=str(exc))
        raise explain(exc, "iam:PutRolePolicy", name) from exc
    ctx.record("iam:PutRolePolicy", role=name, policy=RECOVERY_POLICY_NAME)
    report.changes.append(f"{'updated' if exists else 'created'} recovery role {name}")
    return Check(
        label,
        True,
        f"{'policy updated' if exists else 'created'} now (trusts account "
        f"{aws.account_id}; grant sts:AssumeRole on it to the on-call engineers)",
        fixed=True,
    )
