"""Step 02: stop further damage. Switch the application's read-only flag on, deny its writes, prove it.

Two independent brakes, as the runbook prescribes: the SSM parameter the application checks (a StringList of
read-only tenants, ``all`` for everyone) makes it refuse requests politely; a Deny policy attached to the
application's role makes DynamoDB refuse its writes whatever code path they take. The Deny is then verified
by probing every write path as the application (see ``probe.py``), never assumed.

The parameter's value before the incident is remembered once (state ``read_only_previous``) so that lift can
put it back exactly, even if contain runs several times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

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
            f"deny policy {self.deny_policy_arn} ({self.deny_policy_change}) "
            f"{'attached now' if self.attached_now else 'already attached'} to {self.app_role_arn}",
        ]
        if self.verification:
            lines.append(f"verification {'OK' if self.verified else 'FAILED'}: {self.verification.summary()}")
        lines += self.notes
        return "\n".join(lines)


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

    Raises VerificationError (after recording everything) when a write path is still open, or when the check
    could not be made at all. Re-running is safe: the parameter's original value is kept from the first run,
    tenants are merged, and an attached policy is not attached twice.
    """
    inc = ctx.incident
    aws = ctx.aws
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
    schema = KeySchema.from_description(desc)
    live_arn = desc["TableArn"]

    # 1. Remember the parameter as it was before the incident (first run only), then switch read-only on.
    previous = inc.get("read_only_previous")
    if previous is None:
        previous = get_parameter(aws, read_only_parameter)
        inc.update(read_only_parameter=read_only_parameter, read_only_previous=previous)
        ctx.record("remember read-only parameter", parameter=read_only_parameter, previous=previous)
    contained = merge_tenants(inc.get("contained_tenants") or [], tenants)
    values = merge_tenants(tenants_in(previous.get("value")), contained)
    value = ",".join(values)
    type_ = previous.get("type") or "StringList"
    current = get_parameter(aws, read_only_parameter)
    if current["value"] != value:
        put_parameter(ctx, read_only_parameter, value, type_, reason=f"read-only mode for {contained}")
    inc.update(
        contained_tenants=contained,
        app_role_name=role_name,
        contained_at=inc.get("contained_at") or utc_now(),
    )

    # 2. What could the application write before the Deny? (lift checks it gets these back.)
    notes: list[str] = []
    attached = attached_policy_arns(aws, role_name)
    deny_arn = policy_arn(deny_policy_name, aws.account_id, live_arn.split(":")[1])
    baseline: list[ProbeResult] = []
    if verify and inc.get("write_paths_before") is None and deny_arn not in attached:
        baseline = _baseline(aws, ctx.table_name, schema, app_arn)
        if baseline:
            inc.update(write_paths_before=[r.path for r in baseline if r.outcome == ALLOWED])
            ctx.record("probe writes before containment", paths={r.path: r.outcome for r in baseline})

    # 3. Deny every write action, as the application's role.
    deny_arn, change, _missing = ensure_deny_policy(ctx, deny_policy_name, live_arn)
    if inc.get("deny_was_attached") is None:
        inc.update(deny_was_attached=deny_arn in attached)
    attached_now = deny_arn not in attached
    if attached_now:
        try:
            aws.iam.attach_role_policy(RoleName=role_name, PolicyArn=deny_arn)
        except ClientError as exc:
            ctx.record("iam:AttachRolePolicy", "failed", role=role_name, policy=deny_arn, error=str(exc))
            raise explain(exc, "iam:AttachRolePolicy", role_name) from exc
        ctx.record("iam:AttachRolePolicy", role=role_name, policy=deny_arn)
    inc.update(deny_policy_arn=deny_arn)

    report = ContainReport(
        contained,
        read_only_parameter,
        value,
        previous,
        deny_arn,
        change,
        attached_now,
        app_arn,
        baseline=baseline,
        notes=notes,
    )
    if not verify:
        ctx.record("verify containment", "skipped", reason="verify=False")
        notes.append("containment NOT verified (verify=False)")
        return report

    # 4. Verify, as the application, that every write path is denied and reads still work.
    existing = find_existing_key(aws.dynamodb, ctx.table_name, schema)
    v = verify_writes(
        aws,
        ctx.table_name,
        schema,
        app_arn,
        expect="denied",
        existing_key=existing,
        timeout_seconds=verify_timeout_seconds,
        initial_delay=poll_initial_seconds,
        max_delay=poll_max_seconds,
        session_name=f"recovery-{inc.incident_id}"[:64],
    )
    report.verification = v
    ctx.record(
        "verify containment",
        "ok" if v.ok else "failed",
        method=v.method,
        paths={r.path: r.outcome for r in v.results},
        read=v.read.outcome if v.read else None,
        attempts=v.attempts,
        elapsed_seconds=round(v.elapsed_seconds, 2),
        detail=v.detail,
    )
    if v.read is not None and v.read.outcome != ALLOWED:
        notes.append(
            f"WARNING: the application can no longer read ({v.read.code}): check the role's policies."
        )
    if not v.ok:
        if v.method == "unverified":
            err = VerificationError(f"containment is UNVERIFIED: {v.detail}")
        else:
            open_paths = ", ".join(f"{r.path} ({r.outcome}: {r.code or r.detail})" for r in v.failing)
            err = VerificationError(
                f"containment FAILED: as {app_arn}, these write paths are not denied after "
                f"{v.elapsed_seconds:.0f}s: {open_paths}. Check for other Allow paths (resource policies, "
                f"other roles the application uses) and that {deny_arn} is attached; run 02_contain again."
            )
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


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
