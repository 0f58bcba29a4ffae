"""Step 03: bring back the table as it was before the incident, into a NEW table, and wait until it is usable.

DynamoDB cannot restore into an existing table: point-in-time recovery (or an on-demand backup) creates a new
one, which stays CREATING for minutes to hours. Everything checkable is checked before AWS is asked (time
format, PITR window, incident start, backup, key schema), the wait is our own poll loop (boto3's waiter gives
up after 500 s), and re-running resumes waiting instead of starting a second restore.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from .aws import describe_table as _describe
from .aws import error_code, explain
from .context import Context
from .errors import InputError, NotReadyError
from .incident import utc_now
from .items import KeySchema
from .resources.dynamodb import iso, pitr_window, wait_until_active
from .restore_point import (  # noqa: F401 - re-exported: restore's names before the split
    MAX_TABLE_NAME,
    SOURCES,
    _backup_point,
    _check_backup,
    _check_inputs,
    _index_overrides,
    _pitr_point,
    default_restored_name,
)


@dataclass
class RestoreResult:
    """The restored table, the point in time it holds, and how long AWS took."""

    table_name: str
    restored_table_name: str
    source: str
    restore_time: str | None
    status: str
    requested_time: str | None = None
    started: bool = False
    resumed: bool = False
    elapsed_seconds: float = 0.0
    status_history: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        """The table statuses seen while waiting, in order (e.g. ``["CREATING", "ACTIVE"]``)."""
        return [h["status"] for h in self.status_history]

    def summary(self) -> str:
        how = "resumed waiting for" if self.resumed else ("started" if self.started else "using")
        lines = [
            (
                f"{how} {self.restored_table_name} ({self.source}, data as of {self.restore_time}): "
                f"{self.status} after {self.elapsed_seconds:.0f}s"
            ),
            f"indexes: {', '.join(self.indexes) or 'none'}",
        ]
        return "\n".join(lines + self.notes)


# -- the step -------------------------------------------------------------------------------------------
def restore_table(
    ctx: Context,
    *,
    restore_time: str | dt.datetime | None = None,
    source: str = "pitr",
    backup_arn: str | None = None,
    restored_table_name: str | None = None,
    restore_indexes: bool = True,
    incident_start: str | dt.datetime | None = None,
    on_demand: bool = True,
    wait: bool = True,
    poll_seconds: float = 15.0,
    timeout_seconds: float | None = None,
    progress: bool = True,
    on_status: Callable[[str, float], None] | None = None,
) -> RestoreResult:
    """Restore ``ctx.table_name`` as of ``restore_time`` into a new table (or use an existing one) and wait.

    ``source``: ``pitr`` (point-in-time recovery), ``backup`` (an on-demand/AWS Backup backup, ``backup_arn``)
    or ``existing`` (a table restored earlier, ``restored_table_name``). ``restore_indexes=False`` restores
    without secondary indexes (faster). ``on_demand`` restores in on-demand billing, so that the diff's scans
    are not throttled by a small provisioned capacity. Raises NotReadyError if ``timeout_seconds`` passes
    first: run again to keep waiting. ``on_status(status, elapsed_seconds)`` is called on each status change.
    """
    requested, start, live = _check_inputs(ctx, source, restore_time, incident_start)
    if source == "existing":
        return _use_existing(
            ctx, live, restored_table_name, requested, poll_seconds, timeout_seconds, progress, on_status
        )
    notes: list[str] = []
    window: dict[str, Any] = {}
    if source == "pitr":
        assert requested is not None
        window = pitr_window(ctx.aws, ctx.table_name)
        when = _pitr_point(ctx, window, requested, notes)
        features: dict[str, Any] = live
    else:
        when, features = _backup_point(ctx, backup_arn, start, requested, notes)
    target = restored_table_name or default_restored_name(ctx.table_name, when)
    if target == ctx.table_name:
        raise InputError(
            "restored_table_name must differ from the live table: DynamoDB restores into a new table."
        )
    resumed = _resume(ctx, target, source, when, backup_arn, notes)
    if not resumed:
        _start(
            ctx,
            source,
            target,
            when,
            backup_arn,
            _index_overrides(features, restore_indexes),
            on_demand and (live.get("BillingModeSummary") or {}).get("BillingMode") != "PAY_PER_REQUEST",
        )
    if not restore_indexes:
        notes.append(
            "restored WITHOUT secondary indexes (queries on indexes will not work on the restored table)"
        )
    result = RestoreResult(
        ctx.table_name,
        target,
        source,
        when.isoformat(),
        "CREATING",
        requested.isoformat() if requested else None,
        started=not resumed,
        resumed=resumed,
        window={k: iso(v) for k, v in window.items()},
        notes=notes,
    )
    if not wait:
        desc = _describe(ctx.aws, target)
        result.status = desc["TableStatus"] if desc else "CREATING"
        return result
    _wait_and_finish(ctx, result, poll_seconds, timeout_seconds, progress, tag=True, on_status=on_status)
    return result


def _resume(
    ctx: Context, target: str, source: str, when: dt.datetime, backup_arn: str | None, notes: list[str]
) -> bool:
    """True when this incident already started the restore into ``target`` (wait for it, start nothing)."""
    inc = ctx.incident
    existing = _describe(ctx.aws, target)
    if (
        existing is not None
        and inc.get("restored_table_name") != target
        and _requested_here(ctx, existing, source, when, backup_arn)
    ):
        # this incident asked for exactly this restore, then stopped before noting that AWS had started it
        _note_started(ctx, source, target, when, backup_arn)
        notes.append(f"the restore into {target} requested by an earlier run of this step is under way")
    if existing is None:
        if inc.get("restored_table_name") and inc.get("restored_table_name") != target:
            notes.append(
                f"this incident restored {inc.get('restored_table_name')} before; the new table replaces "
                "it as the incident's restored table"
            )
        return False
    if inc.get("restored_table_name") != target:
        raise InputError(
            f"table {target!r} already exists and this incident did not create it: choose another "
            "restored_table_name, or use source='existing' with restored_table_name to use it."
        )
    notes.append(f"a restore into {target} was already started by this incident: waiting for it")
    ctx.record("resume restore wait", table=target, status=existing["TableStatus"])
    return True


def _start(
    ctx: Context,
    source: str,
    target: str,
    when: dt.datetime,
    backup_arn: str | None,
    overrides: dict[str, Any],
    on_demand: bool,
) -> None:
    """Ask AWS to start the restore, and record it (state first, so a crash mid-wait can resume).

    The request is noted in the state before it is sent: a process that dies before noting the answer, or an
    answer lost and the request sent again by the SDK (AWS then says TableAlreadyExists), is recognised as this
    restore (same target, source table and time or backup, from the table's RestoreSummary) and waited for.
    """
    aws, inc = ctx.aws, ctx.incident
    kwargs: dict[str, Any] = {"TargetTableName": target, **overrides}
    if on_demand:
        kwargs["BillingModeOverride"] = "PAY_PER_REQUEST"
    if source == "pitr":
        action = "dynamodb:RestoreTableToPointInTime"
        call: Callable[..., Any] = aws.dynamodb.restore_table_to_point_in_time
        kwargs.update(SourceTableName=ctx.table_name, RestoreDateTime=when)
    else:
        action = "dynamodb:RestoreTableFromBackup"
        call = aws.dynamodb.restore_table_from_backup
        kwargs.update(BackupArn=backup_arn)
    # noted before asking: if the process dies before the answer is noted, a re-run recognises the restore
    inc.update(
        restore_requested={
            "target": target,
            "source": source,
            "restore_time": when.isoformat(),
            "backup_arn": backup_arn,
        }
    )
    note = None
    try:
        call(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
        existing = _describe(aws, target) if code == "TableAlreadyExistsException" and retried else None
        if existing is not None and _requested_here(ctx, existing, source, when, backup_arn):
            # the answer to an earlier attempt was lost and the SDK asked again: AWS had started this restore
            note = "AWS had started it on an earlier attempt whose answer was lost"
        else:
            _refused(ctx, exc, action, target, when)
    _note_started(ctx, source, target, when, backup_arn)
    ctx.record(
        action,
        source=ctx.table_name,
        target=target,
        restore_time=when.isoformat(),
        backup_arn=backup_arn,
        overrides={k: v for k, v in kwargs.items() if k.endswith("Override")},
        **({"note": note} if note else {}),
    )


def _requested_here(
    ctx: Context, table: dict[str, Any], source: str, when: dt.datetime, backup_arn: str | None
) -> bool:
    """Is ``table`` the restore this incident requested (same target, source table, time or backup)?"""
    requested = ctx.incident.get("restore_requested") or {}
    summary = table.get("RestoreSummary") or {}
    if requested.get("target") != table.get("TableName") or requested.get("source") != source:
        return False
    if not str(summary.get("SourceTableArn", "")).endswith(f":table/{ctx.table_name}"):
        return False
    if source == "backup":
        return bool(backup_arn) and summary.get("SourceBackupArn") == backup_arn
    restored_at = summary.get("RestoreDateTime")
    return isinstance(restored_at, dt.datetime) and restored_at.replace(microsecond=0) == when


def _note_started(ctx: Context, source: str, target: str, when: dt.datetime, backup_arn: str | None) -> None:
    """The incident's restored table from now on (03 resumes waiting for it, 04 reads it, 06 may delete it)."""
    ctx.incident.update(
        restored_table_name=target,
        restore_time=when.isoformat(),
        restore_source=source,
        restore_status="CREATING",
        restore_started=utc_now(),
        restore_backup_arn=backup_arn,
    )


def _refused(ctx: Context, exc: ClientError, action: str, target: str, when: dt.datetime) -> NoReturn:
    """AWS did not start the restore: record it and raise what the user can act on."""
    code = error_code(exc)
    ctx.incident.update(restore_requested=None)
    ctx.record(action, "failed", target=target, error=str(exc))
    message = exc.response.get("Error", {}).get("Message", "")
    if code == "InvalidRestoreTimeException":
        raise InputError(
            f"AWS refused restore time {when.isoformat()}: {message}. Check the window "
            "(01_prepare shows it).",
            cause=exc,
        ) from exc
    if code == "PointInTimeRecoveryUnavailableException":
        raise NotReadyError(
            f"point-in-time recovery is unavailable for {ctx.table_name}: {message}", cause=exc
        ) from exc
    if code == "TableAlreadyExistsException":
        raise InputError(
            f"table {target} already exists: choose another restored_table_name.", cause=exc
        ) from exc
    raise explain(exc, action, ctx.table_name) from exc


def _use_existing(
    ctx: Context,
    live: dict[str, Any],
    name: str | None,
    requested: dt.datetime | None,
    poll_seconds: float,
    timeout_seconds: float | None,
    progress: bool,
    on_status: Callable[[str, float], None] | None,
) -> RestoreResult:
    aws = ctx.aws
    if not name:
        raise InputError("source='existing' needs restored_table_name: the table restored earlier.")
    if name == ctx.table_name:
        raise InputError("restored_table_name must be the restored copy, not the live table itself.")
    table = _describe(aws, name)
    if table is None:
        raise InputError(f"table {name!r} does not exist in {aws.region}: check restored_table_name.")
    want, got = KeySchema.from_description(live), KeySchema.from_description(table)
    if want != got:
        raise InputError(
            f"table {name!r} has key {got.describe()}, but {ctx.table_name} has {want.describe()}: "
            f"it is not a restore of this table. Set restored_table_name to a restore of {ctx.table_name}, "
            "or use source='pitr' or 'backup' to make one."
        )
    ctx.incident.update(
        restored_table_name=name,
        restore_time=requested.isoformat() if requested else None,
        restore_source="existing",
        restore_status=table["TableStatus"],
    )
    ctx.record(
        "use existing restored table", table=name, restore_time=requested.isoformat() if requested else None
    )
    result = RestoreResult(
        ctx.table_name, name, "existing", requested.isoformat() if requested else None, table["TableStatus"]
    )
    if requested is None:
        result.notes.append(
            "restore_time not given: the diff cannot tell which point in time this table holds"
        )
    _wait_and_finish(ctx, result, poll_seconds, timeout_seconds, progress, tag=False, on_status=on_status)
    return result


def _wait_and_finish(
    ctx: Context,
    result: RestoreResult,
    poll_seconds: float,
    timeout_seconds: float | None,
    progress: bool,
    *,
    tag: bool,
    on_status: Callable[[str, float], None] | None = None,
) -> None:
    aws, inc = ctx.aws, ctx.incident
    history = result.status_history

    def seen(status: str, elapsed: float) -> None:
        history.append({"status": status, "elapsed_seconds": round(elapsed, 3), "at": utc_now()})
        if on_status:
            on_status(status, elapsed)

    try:
        table, elapsed = wait_until_active(
            aws,
            result.restored_table_name,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
            progress=progress,
            on_status=seen,
        )
    except NotReadyError:
        result.status = history[-1]["status"] if history else "CREATING"
        ctx.record("wait for restore", "timeout", table=result.restored_table_name, statuses=result.statuses)
        raise
    result.status, result.elapsed_seconds = "ACTIVE", elapsed
    result.indexes = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", []) or []] + [
        i["IndexName"] for i in table.get("LocalSecondaryIndexes", []) or []
    ]
    if tag:
        _tag(ctx, table["TableArn"])
    inc.update(restore_status="ACTIVE", restored_table_arn=table["TableArn"])
    ctx.record(
        "restore complete",
        table=result.restored_table_name,
        source=result.source,
        restore_time=result.restore_time,
        statuses=result.statuses,
        waited_seconds=round(elapsed, 1),
        indexes=result.indexes,
    )


def _tag(ctx: Context, arn: str) -> None:
    """Tag the restored table with the incident id (AWS does not copy tags; it marks what lift may delete)."""
    aws = ctx.aws
    try:
        tags = aws.dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
        if {"Key": "incident", "Value": ctx.incident.incident_id} in tags:
            return
        aws.dynamodb.tag_resource(
            ResourceArn=arn, Tags=[{"Key": "incident", "Value": ctx.incident.incident_id}]
        )
    except ClientError as exc:
        ctx.record("dynamodb:TagResource", "failed", table=arn, error=str(exc))
        raise explain(exc, "dynamodb:TagResource", arn) from exc
    ctx.record("dynamodb:TagResource", table=arn, tags={"incident": ctx.incident.incident_id})
