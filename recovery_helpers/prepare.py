"""Step 01: is this table ready to be recovered? One row per prerequisite; ``apply=True`` fixes what it can.

The prerequisites come from the runbook: point-in-time recovery on (only times after it was enabled can be
restored), a dedicated application role that can be denied writes without stopping the recovery, a deny policy
covering every write path, the read-only parameter the application checks, and some record of which items
changed (a change log kept at least as long as the PITR window, an audit table, or an "updated" attribute).
The report also carries the least-privilege policy of the role that should run the runbook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .aws import describe_table as _describe
from .context import Context
from .readiness_checks import (  # noqa: F401 - re-exported: prepare's names before the split
    RECOVERY_POLICY_NAME,
    SAMPLE_ITEMS,
    Check,
    _check_deny_policy,
    _check_parameter,
    _check_pitr,
    _check_recovery_role,
    _check_role,
    _check_table,
)
from .readiness_sources import _check_change_records
from .resources.iam import role_name_of
from .resources.policies import policy_arn, recovery_role_policy, table_arn


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
    add(_check_table(ctx, table))
    if table is not None:
        add(_check_pitr(ctx, report, apply))
    live_arn = table["TableArn"] if table else table_arn(ctx.table_name, account, region, partition)
    report.checks.extend(
        _check_role(aws, app_role_name, live_arn, policy_arn(deny_policy_name, account, partition))
    )
    add(_check_deny_policy(ctx, report, deny_policy_name, live_arn, apply))
    add(_check_parameter(ctx, report, read_only_parameter, apply))
    report.checks.extend(
        _check_change_records(ctx, report, table, log_group, audit_table_name, updated_attribute, apply)
    )
    if recovery_role_name:
        add(_check_recovery_role(ctx, report, recovery_role_name, apply))
    return report
