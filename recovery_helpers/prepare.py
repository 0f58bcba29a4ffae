"""Step 01: is this table ready to be recovered? One row per prerequisite; ``apply=True`` fixes what it can.

The prerequisites come from the runbook: point-in-time recovery on (only times after it was enabled can be
restored), a dedicated application role that can be denied writes without stopping the recovery, a deny policy
covering every write path, the read-only parameter the application checks, and some record of which items
changed (a change log kept at least as long as the PITR window, an audit table, or an "updated" attribute).
The report also carries the least-privilege policy of the role that should run the runbook.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .aws import Aws, error_code, explain
from .aws import describe_table as _describe
from .context import Context
from .resources.dynamodb import DEFAULT_PERIOD_DAYS, iso, pitr_window
from .resources.iam import (
    attached_policy_arns,
    caller_role_name,
    ensure_deny_policy,
    get_policy_document,
    role_name_of,
)
from .resources.policies import (
    WRITE_ACTIONS,
    account_trust_policy,
    allows,
    covers_all_writes,
    policy_arn,
    recovery_role_policy,
    table_arn,
)
from .resources.readonly import get_parameter, put_parameter, tenants_in

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


@dataclass
class ReadinessReport:
    """The readiness rows, the PITR window, what apply changed, and the recovery role's policy."""

    table_name: str
    checks: list[Check] = field(default_factory=list)
    pitr: dict[str, Any] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    recovery_role_policy: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def row(self, name: str) -> Check:
        """The check called ``name`` (KeyError if absent)."""
        for c in self.checks:
            if c.check == name:
                return c
        raise KeyError(name)

    @property
    def recovery_role_policy_json(self) -> str:
        return json.dumps(self.recovery_role_policy, indent=2)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"check": c.check, "ok": c.ok, "detail": c.detail, "what to do": c.todo, "fixed now": c.fixed}
                for c in self.checks
            ],
            columns=["check", "ok", "detail", "what to do", "fixed now"],
        )

    def summary(self) -> str:
        head = "READY" if self.ok else f"NOT READY: {len(self.failing)} of {len(self.checks)} checks fail"
        lines = [f"{self.table_name}: {head}"]
        lines += [
            f"  [{'ok' if c.ok else '!!'}] {c.check}: {c.detail}"
            + (f" -> {c.todo}" if c.todo and not c.ok else "")
            for c in self.checks
        ]
        if self.changes:
            lines.append("changed now: " + "; ".join(self.changes))
        return "\n".join(lines)


def check_readiness(
    ctx: Context,
    *,
    app_role_name: str | None,
    read_only_parameter: str = "read-only-customers",
    deny_policy_name: str = "DenyWrite",
    apply: bool = False,
    log_group: str | None = None,
    audit_table_name: str | None = None,
    updated_attribute: str | None = None,
    recovery_role_name: str | None = None,
    export_bucket: str | None = None,
    export_prefix: str | None = None,
) -> ReadinessReport:
    """Check every prerequisite of a partial recovery of ``ctx.table_name``; ``apply=True`` fixes what it can.

    ``apply`` enables PITR, creates the read-only parameter (StringList ``none``), creates or completes the
    deny policy, sets up the audit table when ``audit_table_name`` is given, and creates the recovery role
    when ``recovery_role_name`` is given. Every change is recorded in the incident timeline.
    """
    aws = ctx.aws
    account, region = aws.account_id, aws.region
    partition = aws.caller_arn.split(":")[1]
    live_arn = table_arn(ctx.table_name, account, region, partition)
    report = ReadinessReport(ctx.table_name)
    report.recovery_role_policy = recovery_role_policy(
        ctx.table_name,
        account,
        region,
        app_role_name=role_name_of(app_role_name) if app_role_name else None,
        read_only_parameter=read_only_parameter,
        deny_policy_name=deny_policy_name,
        log_group=log_group,
        audit_table_name=audit_table_name,
        export_bucket=export_bucket,
        export_prefix=export_prefix,
        partition=partition,
    )
    add = report.checks.append

    table = _describe(aws, ctx.table_name)
    if table is None:
        add(
            Check(
                "table exists",
                False,
                f"no table {ctx.table_name!r} in {region} (account {account})",
                "check table_name, region and the account you are signed in to",
            )
        )
    else:
        live_arn = table["TableArn"]
        add(
            Check(
                "table exists",
                True,
                f"{table['TableStatus']}, key {_schema_text(table)}, "
                f"{table.get('ItemCount', '?')} items (approximate)",
            )
        )
        add(_check_pitr(ctx, report, apply))
    report.checks.extend(
        _check_role(aws, app_role_name, live_arn, policy_arn(deny_policy_name, account, partition))
    )
    add(_check_deny_policy(ctx, report, deny_policy_name, live_arn, apply))
    add(_check_parameter(ctx, report, read_only_parameter, apply))
    period = report.pitr.get("period_days") or DEFAULT_PERIOD_DAYS
    sources = 0
    if log_group:
        sources += 1
        add(_check_log_group(aws, log_group, period))
    if audit_table_name:
        sources += 1
        add(_check_audit_table(ctx, report, audit_table_name, apply))
    if updated_attribute:
        sources += 1
        add(
            _check_updated_attribute(aws, ctx.table_name, updated_attribute)
            if table
            else Check(f"updated attribute {updated_attribute!r}", False, "the table does not exist")
        )
    if not sources:
        add(
            Check(
                "change record",
                False,
                "no log_group, audit_table_name or updated_attribute given",
                "record item changes (structured log lines kept >= the PITR period, or an audit table fed by "
                "the table's stream); without one, 04_diff needs a keys file, an incremental export over the "
                "incident window, or a full compare against the restored table",
            )
        )
    if recovery_role_name:
        add(_check_recovery_role(ctx, report, recovery_role_name, apply))
    return report


# -- checks ----------------------------------------------------------------------------------------------
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


def _check_log_group(aws: Aws, name: str, period_days: int) -> Check:
    label = f"change log {name!r}"
    try:
        groups = []
        for page in aws.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
            groups += [g for g in page["logGroups"] if g["logGroupName"] == name]
    except ClientError as exc:
        raise explain(exc, "logs:DescribeLogGroups", name) from exc
    if not groups:
        return Check(label, False, "no such log group", "check log_group (and region)")
    retention = groups[0].get("retentionInDays")
    if retention is None:
        return Check(label, True, "retention unlimited")
    if retention >= period_days:
        return Check(label, True, f"retention {retention} days >= PITR period {period_days} days")
    return Check(
        label,
        False,
        f"retention {retention} days < PITR period {period_days} days: changes older "
        f"than {retention} days cannot be found",
        f"aws logs put-retention-policy --log-group-name {name} --retention-in-days "
        f"{_retention_at_least(period_days)}",
    )


def _retention_at_least(days: int) -> int:
    allowed = [
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    ]
    return next((d for d in allowed if d >= days), allowed[-1])


def _check_audit_table(ctx: Context, report: ReadinessReport, name: str, apply: bool) -> Check:
    aws = ctx.aws
    label = f"audit table {name!r}"
    table = _describe(aws, name)
    live = _describe(aws, ctx.table_name)
    stream = bool(live and (live.get("StreamSpecification") or {}).get("StreamEnabled"))
    if table is not None and stream:
        return Check(label, True, f"exists ({table['TableStatus']}); the table's stream is enabled")
    if not apply:
        missing = [
            m
            for m, bad in (
                ("the audit table does not exist", table is None),
                ("the live table has no stream", not stream),
            )
            if bad
        ]
        return Check(
            label,
            False,
            "; ".join(missing),
            "run 01_prepare with apply=True, then deploy the Streams handler (recovery_helpers.appkit) "
            "that writes change records into it",
        )
    try:
        module = importlib.import_module("recovery_helpers.sources.audit_table")
        ensure_audit_table, enable_stream = module.ensure_audit_table, module.enable_stream
    except (ImportError, AttributeError) as exc:
        return Check(
            label,
            False,
            f"audit table setup skipped: recovery_helpers.sources.audit_table is not available ({exc})",
            "create the audit table and enable the stream by hand",
        )
    if table is None:
        ensure_audit_table(aws, name)
        ctx.record("create audit table", table=name)
        report.changes.append(f"created audit table {name}")
    if not stream and live is not None:
        enable_stream(aws, ctx.table_name)
        ctx.record("enable stream", table=ctx.table_name)
        report.changes.append(f"enabled the stream of {ctx.table_name}")
    return Check(
        label, True, "audit table and stream set up now; deploy the Streams handler that fills it", fixed=True
    )


def _check_updated_attribute(aws: Aws, table_name: str, attribute: str) -> Check:
    label = f"updated attribute {attribute!r}"
    try:
        items = aws.dynamodb.scan(TableName=table_name, Limit=SAMPLE_ITEMS).get("Items", [])
    except ClientError as exc:
        raise explain(exc, "dynamodb:Scan", table_name) from exc
    if not items:
        return Check(
            label,
            False,
            "the table is empty: cannot tell whether items carry it",
            "make the application set it on every write",
        )
    having = sum(1 for i in items if attribute in i)
    note = " (it cannot reveal deleted items: pair it with a log or an incremental export)"
    if having == len(items):
        return Check(label, True, f"present on all {len(items)} sampled items{note}")
    return Check(
        label,
        False,
        f"present on {having} of {len(items)} sampled items",
        "make the application set it on every write; items without it can only be found by a full compare",
    )


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
