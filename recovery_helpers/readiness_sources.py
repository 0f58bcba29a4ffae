"""Step 01's checks of the change records 04_diff can read: the log group (kept as long as the PITR window),
the audit table, the "updated" attribute (split out of prepare.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws import Aws, explain
from .aws import describe_table as _describe
from .context import Context
from .resources.dynamodb import DEFAULT_PERIOD_DAYS

if TYPE_CHECKING:
    from .prepare import ReadinessReport

from .readiness_checks import SAMPLE_ITEMS, Check


def _check_change_records(
    ctx: Context,
    report: ReadinessReport,
    table: dict[str, Any] | None,
    log_group: str | None,
    audit_table_name: str | None,
    updated_attribute: str | None,
    apply: bool,
) -> list[Check]:
    """A record of item changes 04_diff can read: the log group, the audit table, the updated attribute."""
    checks = []
    period = report.pitr.get("period_days") or DEFAULT_PERIOD_DAYS
    if log_group:
        checks.append(_check_log_group(ctx.aws, log_group, period))
    if audit_table_name:
        checks.append(_check_audit_table(ctx, report, audit_table_name, apply))
    if updated_attribute:
        checks.append(
            _check_updated_attribute(ctx.aws, ctx.table_name, updated_attribute)
            if table
            else Check(f"updated attribute {updated_attribute!r}", False, "the table does not exist")
        )
    if not checks:
        checks.append(
            Check(
                "change record",
                False,
                "no log_group, audit_table_name or updated_attribute given",
                "record item changes (structured log lines kept >= the PITR period, or an audit table fed by "
                "the table's stream); without one, 04_diff needs a keys file, an incremental export over the "
                "incident window, or a full compare against the restored table",
            )
        )
    return checks


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
