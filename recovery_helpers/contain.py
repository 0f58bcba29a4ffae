"""Step 02: stop further damage. Switch the application's read-only flag on, deny its writes, prove it.

Two independent brakes, as the runbook prescribes: the SSM parameter the application checks (a StringList of
read-only tenants, ``all`` for everyone) makes it refuse requests politely; a Deny policy attached to the
application's role makes DynamoDB refuse its writes whatever code path they take. The Deny is then verified
by probing every write path as the application (see ``probe.py``), never assumed.

The parameter's value before the incident is remembered once (state ``read_only_previous``) so that lift can
put it back exactly, even if contain runs several times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from .aws import Aws, explain
from .context import Context
from .errors import InputError, RecoveryError, VerificationError
from .incident import utc_now
from .items import KeySchema
from .resources.iam import (
    attached_policy_arns,
    ensure_deny_policy,
    refuse_own_role,
    require_role,
    role_name_of,
)
from .resources.policies import policy_arn
from .resources.probe import (
    ALLOWED,
    ERROR,
    PROBE_CONFIG,
    READ_PATH,
    WRITE_PATHS,
    ProbeResult,
    Verification,
    find_existing_key,
    poll,
    probe_writes,
    verify_writes,
)
from .resources.readonly import (
    get_parameter,
    merge_tenants,
    put_parameter,
    tenants_in,
    validate_tenants,
)
from .tenancy import ALL


# -- the step --------------------------------------------------------------------------------------------
@dataclass
class ContainReport:
    """What contain changed and what the probes as the application found."""

    tenants: list[str]
    parameter_name: str
    parameter_value: str
    previous: dict[str, Any]
    deny_policy_arn: str
    deny_policy_change: str
    attached_now: bool
    app_role_arn: str
    verification: Verification | None = None
    baseline: list[ProbeResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.ok

    @property
    def reads_ok(self) -> bool | None:
        v = self.verification
        return None if v is None or v.read is None else v.read.outcome == ALLOWED

    def to_frame(self) -> pd.DataFrame:
        """One row per probed path: the answer before containment (if probed) and after."""
        before = {r.path: r.outcome for r in self.baseline}
        rows = []
        v = self.verification
        for r in v.results if v else []:
            rows.append(
                {
                    "path": r.path,
                    "before": before.get(r.path, ""),
                    "now": r.outcome,
                    "ok": r.outcome in ("denied", "skipped"),
                    "code": r.code or "",
                    "detail": r.detail,
                }
            )
        if v and v.read:
            rows.append(
                {
                    "path": READ_PATH,
                    "before": "",
                    "now": v.read.outcome,
                    "ok": v.read.outcome == ALLOWED,
                    "code": v.read.code or "",
                    "detail": "reads must keep working",
                }
            )
        return pd.DataFrame(rows, columns=["path", "before", "now", "ok", "code", "detail"])

    def summary(self) -> str:
        before = repr(self.previous.get("value")) if self.previous.get("exists") else "did not exist"
        lines = [
            f"read-only parameter {self.parameter_name!r} = {self.parameter_value!r} (before: {before})",
            (
                f"deny policy {self.deny_policy_arn} ({self.deny_policy_change}) "
                f"{'attached now' if self.attached_now else 'already attached'} to {self.app_role_arn}"
            ),
        ]
        if self.verification:
            lines.append(f"verification {'OK' if self.verified else 'FAILED'}: {self.verification.summary()}")
        lines += self.notes
        return "\n".join(lines)


@dataclass(frozen=True)
class ContainPlan:
    """What contain works on, checked before anything changes."""

    tenants: list[str]
    read_only_parameter: str
    deny_policy_name: str
    role_name: str
    app_arn: str
    schema: KeySchema
    live_arn: str


def contain(
    ctx: Context,
    *,
    tenants: Iterable[str] | str = (ALL,),
    app_role_name: str | None = None,
    read_only_parameter: str = "read-only-customers",
    deny_policy_name: str = "DenyWrite",
    verify: bool = True,
    verify_timeout_seconds: float = 60.0,
    poll_initial_seconds: float = 0.5,
    poll_max_seconds: float = 8.0,
) -> ContainReport:
    """Put the application in read-only mode for ``tenants`` and deny its writes; verify as the application.

    Raises VerificationError (after recording everything; ``err.report`` is the report) when a write path is
    still open, or when the check could not be made at all. Re-running is safe: the parameter's original value
    is kept from the first run, tenants are merged, and an attached policy is not attached twice.
    """
    plan = _plan(ctx, tenants, app_role_name, read_only_parameter, deny_policy_name)
    previous, contained, value = _switch_read_only(ctx, plan)
    attached = attached_policy_arns(ctx.aws, plan.role_name)
    baseline = _probe_before_deny(ctx, plan, attached) if verify else []
    deny_arn, change, attached_now = _deny_writes(ctx, plan, attached)
    report = ContainReport(
        contained,
        plan.read_only_parameter,
        value,
        previous,
        deny_arn,
        change,
        attached_now,
        plan.app_arn,
        baseline=baseline,
        notes=[],
    )
    if not verify:
        ctx.record("verify containment", "skipped", reason="verify=False")
        report.notes.append("containment NOT verified (verify=False)")
        return report
    _verify_denied(ctx, plan, report, verify_timeout_seconds, poll_initial_seconds, poll_max_seconds)
    return report


def _plan(
    ctx: Context,
    tenants: Iterable[str] | str,
    app_role_name: str | None,
    read_only_parameter: str,
    deny_policy_name: str,
) -> ContainPlan:
    """Check the arguments against the incident and AWS; nothing is changed."""
    inc, aws = ctx.incident, ctx.aws
    tenants = validate_tenants(tenants)
    if not read_only_parameter or not isinstance(read_only_parameter, str):
        raise InputError("read_only_parameter is required: the SSM parameter your application checks.")
    if not deny_policy_name or not isinstance(deny_policy_name, str):
        raise InputError("deny_policy_name is required, e.g. 'DenyWrite'.")
    for key, given in (
        ("read_only_parameter", read_only_parameter),
        ("app_role_name", role_name_of(app_role_name or "")),
    ):
        before = inc.get(key)
        if inc.get("contained_tenants") and before and given and before != given:
            raise InputError(
                f"incident {inc.incident_id!r} was contained with {key}={before!r}, not {given!r}: "
                "lift it first (06_lift), or use the same value."
            )
    role_name, app_arn = require_role(aws, app_role_name)
    refuse_own_role(aws, role_name)
    try:
        desc = aws.dynamodb.describe_table(TableName=ctx.table_name)["Table"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", ctx.table_name) from exc
    return ContainPlan(
        tenants=tenants,
        read_only_parameter=read_only_parameter,
        deny_policy_name=deny_policy_name,
        role_name=role_name,
        app_arn=app_arn,
        schema=KeySchema.from_description(desc),
        live_arn=desc["TableArn"],
    )


def _switch_read_only(ctx: Context, plan: ContainPlan) -> tuple[dict[str, Any], list[str], str]:
    """Remember the parameter as it was before the incident (first run only), then switch read-only on.

    Returns (the value before the incident, the contained tenants, the parameter's value now).
    """
    inc, aws, name = ctx.incident, ctx.aws, plan.read_only_parameter
    previous = inc.get("read_only_previous")
    if previous is None:
        previous = get_parameter(aws, name)
        inc.update(read_only_parameter=name, read_only_previous=previous)
        ctx.record("remember read-only parameter", parameter=name, previous=previous)
    contained = merge_tenants(inc.get("contained_tenants") or [], plan.tenants)
    value = ",".join(merge_tenants(tenants_in(previous.get("value")), contained))
    type_ = previous.get("type") or "StringList"
    if get_parameter(aws, name)["value"] != value:
        put_parameter(ctx, name, value, type_, reason=f"read-only mode for {contained}")
    inc.update(
        contained_tenants=contained,
        app_role_name=plan.role_name,
        contained_at=inc.get("contained_at") or utc_now(),
    )
    return previous, contained, value


def _probe_before_deny(ctx: Context, plan: ContainPlan, attached: list[str]) -> list[ProbeResult]:
    """What the application could write before the Deny (lift checks it gets these back); first run only."""
    inc, aws = ctx.incident, ctx.aws
    deny_arn = policy_arn(plan.deny_policy_name, aws.account_id, plan.live_arn.split(":")[1])
    if inc.get("write_paths_before") is not None or deny_arn in attached:
        return []
    baseline = _baseline(aws, ctx.table_name, plan.schema, plan.app_arn)
    if baseline:
        inc.update(write_paths_before=[r.path for r in baseline if r.outcome == ALLOWED])
        ctx.record("probe writes before containment", paths={r.path: r.outcome for r in baseline})
    return baseline


def _deny_writes(ctx: Context, plan: ContainPlan, attached: list[str]) -> tuple[str, str, bool]:
    """Make the deny policy cover every write action and attach it to the application's role.

    Returns (the policy's ARN, what was done to the policy, whether this run attached it).
    """
    inc, aws = ctx.incident, ctx.aws
    deny_arn, change, _missing = ensure_deny_policy(ctx, plan.deny_policy_name, plan.live_arn)
    if inc.get("deny_was_attached") is None:
        inc.update(deny_was_attached=deny_arn in attached)
    attached_now = deny_arn not in attached
    if attached_now:
        try:
            aws.iam.attach_role_policy(RoleName=plan.role_name, PolicyArn=deny_arn)
        except ClientError as exc:
            ctx.record("iam:AttachRolePolicy", "failed", role=plan.role_name, policy=deny_arn, error=str(exc))
            raise explain(exc, "iam:AttachRolePolicy", plan.role_name) from exc
        ctx.record("iam:AttachRolePolicy", role=plan.role_name, policy=deny_arn)
    inc.update(deny_policy_arn=deny_arn)
    return deny_arn, change, attached_now


def _verify_denied(
    ctx: Context,
    plan: ContainPlan,
    report: ContainReport,
    timeout_seconds: float,
    initial_delay: float,
    max_delay: float,
) -> None:
    """Verify, as the application, that every write path is denied and reads still work."""
    existing = find_existing_key(ctx.aws.dynamodb, ctx.table_name, plan.schema)
    v = verify_writes(
        ctx.aws,
        ctx.table_name,
        plan.schema,
        plan.app_arn,
        expect="denied",
        existing_key=existing,
        timeout_seconds=timeout_seconds,
        initial_delay=initial_delay,
        max_delay=max_delay,
        session_name=f"recovery-{ctx.incident.incident_id}"[:64],
    )
    report.verification = v
    ctx.record(
        "verify containment",
        "ok" if v.ok else "failed",
        **v.record_fields(),
        read=v.read.outcome if v.read else None,
    )
    if report.baseline and not any(r.outcome == ALLOWED for r in report.baseline):
        report.notes.append(PROBES_REFUSED_BEFORE)
    if v.read is not None and v.read.outcome != ALLOWED:
        report.notes.append(
            f"WARNING: the application can no longer read ({v.read.code}): check the role's policies."
        )
    if v.ok:
        return
    if v.method == "unverified":
        raise VerificationError(f"containment is UNVERIFIED: {v.detail}", report=report)
    open_paths = ", ".join(f"{r.path} ({r.outcome}: {r.code or r.detail})" for r in v.failing)
    raise VerificationError(
        f"containment FAILED: as {plan.app_arn}, these write paths are not denied after "
        f"{v.elapsed_seconds:.0f}s: {open_paths}. Check for other Allow paths (resource policies, "
        f"other roles the application uses) and that {report.deny_policy_arn} is attached; run 02_contain "
        "again.",
        report=report,
    )


#: When every write probe was refused before the Deny too, "denied now" does not show the Deny took effect.
PROBES_REFUSED_BEFORE = (
    "WARNING: the application was refused on every write path before the Deny too (see 'before'): the probes "
    "show that their keys cannot be written, not that the Deny took effect. An application policy limited to "
    "some keys (dynamodb:LeadingKeys) refuses the probes' random keys; the Deny itself is attached (above)."
)


def _baseline(aws: Aws, table: str, schema: KeySchema, app_arn: str) -> list[ProbeResult]:
    """The paths the application can write through now (PartiQL INSERT excluded: no harmless form while the
    application may delete concurrently). Empty when the role cannot be assumed."""
    try:
        app = aws.assume_role(app_arn, session_name="recovery-probe-baseline")
    except (RecoveryError, BotoCoreError, ResponseParserError):
        return []  # no baseline: lift then checks the classic three paths

    client = app.with_config(PROBE_CONFIG, call_tag="probe")  # recorded apart: probe-calls.jsonl
    paths = [p for p in WRITE_PATHS if p != "PartiQL INSERT"]
    results = {r.path: r for r in probe_writes(client.dynamodb, table, schema, paths)}

    def again() -> list[ProbeResult]:
        # a path whose probe met only throttling or 5xx (a hot table) is asked again: left out, lift would not
        # check that the application gets it back
        transient = [p for p, r in results.items() if r.outcome == ERROR and _transient(r.code)]
        results.update({r.path: r for r in probe_writes(client.dynamodb, table, schema, transient)})
        return list(results.values())

    if any(r.outcome == ERROR and _transient(r.code) for r in results.values()):
        poll(
            again,
            lambda rs: not any(r.outcome == ERROR and _transient(r.code) for r in rs),
            timeout_seconds=BASELINE_RETRY_SECONDS,
            initial_delay=0.5,
            max_delay=4.0,
        )
    return [results[p] for p in paths]


#: How long 02_contain keeps asking a throttled write path what the application could do before the Deny.
BASELINE_RETRY_SECONDS = 20.0
_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "InternalServerError",
    "ServiceUnavailable",
    "ConnectionClosedError",
    "EndpointConnectionError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
}


def _transient(code: str | None) -> bool:
    """An answer that says nothing about permissions: the same request may be answered later."""
    return code in _TRANSIENT_CODES or (code or "").startswith("5")
