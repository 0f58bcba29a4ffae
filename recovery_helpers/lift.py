"""Step 06: end read-only mode (some tenants or all), prove the application writes again, close the incident.

Lift undoes exactly what contain did: the read-only parameter gets its pre-incident value back (or is deleted
if it did not exist), and the deny policy is detached once no tenant remains contained (and only if contain
attached it). Like containment, the result is verified as the application: a harmless conditional write must
now reach the table (ConditionalCheckFailed) instead of being denied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .aws import error_code, explain
from .context import Context
from .errors import InputError, VerificationError
from .incident import utc_now
from .items import KeySchema
from .patch.shards import journal_status_counts
from .resources.iam import attached_policy_arns, require_role
from .resources.policies import policy_arn
from .resources.probe import ALLOWED, Verification, verify_writes
from .resources.readonly import get_parameter, merge_tenants, put_parameter, tenants_in, validate_tenants
from .tenancy import ALL

#: What lift checks when contain could not record what the application wrote through before.
DEFAULT_PATHS = ("PutItem", "UpdateItem", "DeleteItem")
NOTHING_TO_GET_BACK = (
    "writes as the application: not checked. 02_contain's probes found no write path open before the Deny "
    "(its policy refused their keys, e.g. an Allow limited by dynamodb:LeadingKeys), so there is nothing to "
    "get back; check with the application that it writes again."
)


@dataclass
class LiftReport:
    """What was lifted, what remains contained, the verification, and the incident summary (full lift)."""

    lifted_tenants: list[str]
    remaining_tenants: list[str]
    parameter_name: str
    parameter_value: str | None
    deny_detached: bool
    verification: Verification | None = None
    restored_table_deleted: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.ok

    def to_frame(self) -> pd.DataFrame:
        v = self.verification
        rows = [
            {
                "path": r.path,
                "now": r.outcome,
                "ok": r.outcome == ALLOWED,
                "code": r.code or "",
                "detail": r.detail,
            }
            for r in (v.results if v else [])
        ]
        return pd.DataFrame(rows, columns=["path", "now", "ok", "code", "detail"])

    def text(self) -> str:
        value = (
            "deleted (it did not exist before)"
            if self.parameter_value is None
            else repr(self.parameter_value)
        )
        deny = (
            "detached" if self.deny_detached else "still attached" if self.remaining_tenants else "as before"
        )
        lines = [
            f"lifted: {self.lifted_tenants}; still contained: {self.remaining_tenants or 'nobody'}",
            f"read-only parameter {self.parameter_name!r}: {value}",
            f"deny policy {deny}",
        ]
        if self.verification:
            lines.append(
                f"writes as the application: {'OK' if self.verified else 'NOT OK'} "
                f"({self.verification.summary()})"
            )
        if self.restored_table_deleted:
            lines.append(f"deleted restored table {self.restored_table_deleted}")
        if self.closed:
            lines.append("incident closed: the summary is in incident.json and index.html")
        return "\n".join(lines + self.notes)


def journal_counts(ctx: Context) -> dict[str, int]:
    """Per-status counts of the patch journal (``journal.jsonl``, and each segment's in ``patch-shards/``),
    empty when nothing was patched."""
    return journal_status_counts(ctx.incident.path)


@dataclass(frozen=True)
class LiftPlan:
    """What lift works on, checked against the incident before anything changes."""

    lifting: list[str]
    remaining: list[str]  # tenants still contained after this lift
    contained: list[str]  # tenants contained before it
    parameter: str
    previous: dict[str, Any]  # the parameter before the incident: {"exists", "value", "type"}
    role_name: str
    app_arn: str
    deny_arn: str
    restored: str | None


def lift(
    ctx: Context,
    *,
    tenants: Iterable[str] | str = (ALL,),
    delete_restored_table: bool = False,
    app_role_name: str | None = None,
    read_only_parameter: str | None = None,
    deny_policy_name: str | None = None,
    verify: bool = True,
    verify_timeout_seconds: float = 60.0,
    poll_initial_seconds: float = 0.5,
    poll_max_seconds: float = 8.0,
) -> LiftReport:
    """Lift read-only mode for ``tenants`` (``["all"]``: everyone) and, once nobody remains, the write Deny.

    Names default to what contain recorded in the incident. A full lift verifies as the application that
    writes work again (VerificationError with ``err.report`` when they do not), optionally deletes the
    restored table, and closes the incident with a summary.
    """
    plan = _plan(ctx, tenants, app_role_name, read_only_parameter, deny_policy_name, delete_restored_table)
    report = LiftReport(plan.lifting, plan.remaining, plan.parameter, None, False)
    report.parameter_value = _restore_parameter(ctx, plan)
    ctx.incident.update(contained_tenants=plan.remaining)
    if plan.remaining:
        report.notes.append(
            f"writes stay denied until {plan.remaining} are lifted too (the Deny is per role)."
        )
    else:
        _lift_deny(ctx, plan, report)
        if verify and not ctx.incident.get("deny_was_attached"):
            _verify_writable(
                ctx, plan, report, verify_timeout_seconds, poll_initial_seconds, poll_max_seconds
            )
    if delete_restored_table:
        if plan.remaining:
            report.notes.append(
                f"restored table {plan.restored} kept: tenants {plan.remaining} are still contained."
            )
        elif plan.restored:
            _delete_table(ctx, plan.restored)
            report.restored_table_deleted = plan.restored
    if plan.remaining:
        ctx.record("partial lift", lifted=plan.lifting, remaining=plan.remaining)
    else:
        _close(ctx, plan, report)
    return report


def _plan(
    ctx: Context,
    tenants: Iterable[str] | str,
    app_role_name: str | None,
    read_only_parameter: str | None,
    deny_policy_name: str | None,
    delete_restored_table: bool,
) -> LiftPlan:
    """Check the arguments against what contain recorded; nothing is changed."""
    inc, aws = ctx.incident, ctx.aws
    lifting = validate_tenants(tenants)
    parameter = read_only_parameter or inc.get("read_only_parameter")
    if not parameter:
        raise InputError(
            "read_only_parameter is unknown: this incident has no containment record (02_contain). "
            "Give read_only_parameter, app_role_name and deny_policy_name."
        )
    role_name, app_arn = require_role(aws, app_role_name or inc.get("app_role_name"))
    partition = app_arn.split(":")[1]
    deny_arn = (
        policy_arn(deny_policy_name, aws.account_id, partition)
        if deny_policy_name
        else inc.get("deny_policy_arn") or policy_arn("DenyWrite", aws.account_id, partition)
    )
    previous = inc.get("read_only_previous")
    contained = list(inc.get("contained_tenants") or [])
    if previous is None and inc.get("lifted_at") and not contained:
        raise InputError(
            f"incident {inc.incident_id!r} was already lifted at {inc.get('lifted_at')}: nothing "
            "is contained. Run 02_contain first if you need read-only mode again."
        )
    if previous is None:
        raise InputError(
            f"incident {inc.incident_id!r} has no record of the parameter's value before containment "
            f"(state 'read_only_previous'): was 02_contain run for it? Set {parameter!r} by hand."
        )
    remaining = _remaining(lifting, contained)
    restored = inc.get("restored_table_name")
    if delete_restored_table and restored and inc.get("restore_source") == "existing":
        raise InputError(
            f"{restored} was not created by this incident (source 'existing'): delete it yourself "
            "if you are sure, or set delete_restored_table=False."
        )
    return LiftPlan(
        lifting, remaining, contained, parameter, previous, role_name, app_arn, deny_arn, restored
    )


def _remaining(lifting: list[str], contained: list[str]) -> list[str]:
    """The tenants still contained after lifting ``lifting``."""
    if ALL in lifting:
        return []
    if ALL in contained:
        raise InputError(
            f"every tenant is contained ('all'), so {lifting} cannot be lifted alone: lift 'all', "
            "then run 02_contain with the tenants that must stay read-only."
        )
    unknown = [t for t in lifting if t not in contained]
    if unknown:
        raise InputError(f"tenants {unknown} are not contained (contained: {contained or 'nobody'}).")
    return [t for t in contained if t not in lifting]


def _restore_parameter(ctx: Context, plan: LiftPlan) -> str | None:
    """The read-only parameter: the remaining tenants, or exactly what it was before the incident.

    Returns its value now (None: deleted, as it did not exist before).
    """
    previous, parameter = plan.previous, plan.parameter
    if plan.remaining:
        value = ",".join(merge_tenants(tenants_in(previous.get("value")), plan.remaining))
        put_parameter(
            ctx,
            parameter,
            value,
            previous.get("type") or "StringList",
            reason=f"partial lift of {plan.lifting}; still read-only: {plan.remaining}",
        )
        return value
    if previous.get("exists"):
        current = get_parameter(ctx.aws, parameter)
        if current["value"] != previous["value"] or current["type"] != previous["type"]:
            if current["exists"] and current["type"] != previous["type"]:
                _delete_parameter(ctx, parameter, reason="type differs from before the incident")
            put_parameter(ctx, parameter, previous["value"], previous["type"], reason="lift: previous value")
        return previous["value"]
    _delete_parameter(ctx, parameter, reason="lift: it did not exist before the incident")
    return None


def _lift_deny(ctx: Context, plan: LiftPlan, report: LiftReport) -> None:
    """Detach the Deny (unless it was attached before the incident)."""
    aws, role_name, deny_arn = ctx.aws, plan.role_name, plan.deny_arn
    if ctx.incident.get("deny_was_attached"):
        report.notes.append(f"{deny_arn} was attached before containment: left attached.")
    elif deny_arn in attached_policy_arns(aws, role_name):
        try:
            aws.iam.detach_role_policy(RoleName=role_name, PolicyArn=deny_arn)
        except ClientError as exc:
            ctx.record("iam:DetachRolePolicy", "failed", role=role_name, policy=deny_arn, error=str(exc))
            raise explain(exc, "iam:DetachRolePolicy", role_name) from exc
        ctx.record("iam:DetachRolePolicy", role=role_name, policy=deny_arn)
        report.deny_detached = True
    else:
        report.notes.append(f"{deny_arn} was not attached to {role_name} any more.")


def _verify_writable(
    ctx: Context,
    plan: LiftPlan,
    report: LiftReport,
    timeout_seconds: float,
    initial_delay: float,
    max_delay: float,
) -> None:
    """Verify, as the application, that writes reach the table again on the paths it had before."""
    inc, aws = ctx.incident, ctx.aws
    before = inc.get("write_paths_before")
    paths = [p for p in (DEFAULT_PATHS if before is None else before) if p != "PartiQL INSERT"]
    if not paths:  # contain probed, and the application could write through no path then either
        report.notes.append(NOTHING_TO_GET_BACK)
        ctx.record("verify lift", "skipped", reason="no write path was open before containment")
        return
    schema = KeySchema.of_table(aws.dynamodb, ctx.table_name)
    v = verify_writes(
        aws,
        ctx.table_name,
        schema,
        plan.app_arn,
        expect=ALLOWED,
        paths=paths,
        timeout_seconds=timeout_seconds,
        initial_delay=initial_delay,
        max_delay=max_delay,
        check_read=False,
        session_name=f"recovery-{inc.incident_id}"[:64],
    )
    report.verification = v
    ctx.record(
        "verify lift",
        "ok" if v.ok else "failed",
        **v.record_fields(),
    )
    if not v.ok:
        failing = ", ".join(f"{r.path} ({r.outcome}: {r.code or r.detail})" for r in v.failing)
        raise VerificationError(
            f"after lifting, the application still cannot write through: {failing or v.detail}. Check "
            f"the policies attached to {plan.role_name} (is another Deny attached?) and run 06_lift again.",
            report=report,
        )


def _close(ctx: Context, plan: LiftPlan, report: LiftReport) -> None:
    """A full lift: forget the containment and close the incident with its summary."""
    inc = ctx.incident
    inc.update(read_only_previous=None, lifted_at=utc_now(), deny_was_attached=None)
    report.summary = {
        "table": ctx.table_name,
        "contained_tenants": plan.contained,
        "contained_at": inc.get("contained_at"),
        "lifted_at": inc.get("lifted_at"),
        "restored_table": plan.restored,
        "restored_table_deleted": bool(report.restored_table_deleted),
        "restore_time": inc.get("restore_time"),
        "restore_source": inc.get("restore_source"),
        "plan_digest": inc.get("plan_digest"),
        "patch": journal_counts(ctx),
        "writes_verified": report.verified,
    }
    inc.close(report.summary, who=ctx.who)
    report.closed = True


def _delete_parameter(ctx: Context, name: str, *, reason: str) -> None:
    try:
        ctx.aws.ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return
        ctx.record("ssm:DeleteParameter", "failed", parameter=name, error=str(exc))
        raise explain(exc, "ssm:DeleteParameter", name) from exc
    ctx.record("ssm:DeleteParameter", parameter=name, reason=reason)


def _delete_table(ctx: Context, name: str) -> None:
    """Delete the restored table; never the live one."""
    if name == ctx.table_name:
        raise InputError("refusing to delete the live table")
    try:
        ctx.aws.dynamodb.delete_table(TableName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            ctx.record("dynamodb:DeleteTable", "skipped", table=name, reason="already gone")
            return
        ctx.record("dynamodb:DeleteTable", "failed", table=name, error=str(exc))
        raise explain(exc, "dynamodb:DeleteTable", name) from exc
    ctx.record("dynamodb:DeleteTable", table=name)
