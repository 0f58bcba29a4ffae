"""Step 03's inputs and restore point, checked before anything changes: the source, the requested time against
the incident start and the PITR window, the backup, the restored table's default name and index overrides
(split out of restore.py, which calls them and re-exports the names).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, error_code, explain
from .aws import describe_table as _describe
from .context import Context
from .errors import InputError, NotReadyError
from .resources.dynamodb import iso
from .times import parse_time

SOURCES = ("pitr", "backup", "existing")
MAX_TABLE_NAME = 255


def default_restored_name(table_name: str, when: dt.datetime) -> str:
    """``<table>-restored-<YYYYmmddTHHMMSS>`` (UTC), trimmed to DynamoDB's 255-character limit."""
    suffix = f"-restored-{when.astimezone(dt.UTC):%Y%m%dT%H%M%S}"
    return table_name[: MAX_TABLE_NAME - len(suffix)] + suffix


def _index_overrides(features: dict[str, Any], restore_indexes: bool) -> dict[str, Any]:
    """Empty index overrides (drop them all) when indexes are not wanted and the source has them."""
    if restore_indexes:
        return {}
    out: dict[str, Any] = {}
    if features.get("GlobalSecondaryIndexes"):
        out["GlobalSecondaryIndexOverride"] = []
    if features.get("LocalSecondaryIndexes"):
        out["LocalSecondaryIndexOverride"] = []
    return out


def _check_inputs(
    ctx: Context, source: str, restore_time: Any, incident_start: Any
) -> tuple[dt.datetime | None, dt.datetime | None, dict[str, Any]]:
    """(the requested time, the incident start, the live table's description); InputError before any change."""
    if source not in SOURCES:
        raise InputError(f"source {source!r} is not one of {SOURCES}.")
    requested = (
        parse_time(restore_time, "restore_time") if (restore_time is not None or source == "pitr") else None
    )
    start = parse_time(incident_start, "incident_start") if incident_start is not None else None
    if requested and start and requested > start:
        raise InputError(
            f"restore_time {requested.isoformat()} is after incident_start {start.isoformat()}: the "
            "restored table would already hold corrupted items. Choose a time before the incident."
        )
    live = _describe(ctx.aws, ctx.table_name)
    if live is None:
        raise InputError(
            f"table {ctx.table_name!r} does not exist in {ctx.aws.region}: check table_name and region."
        )
    return requested, start, live


def _pitr_point(
    ctx: Context, window: dict[str, Any], requested: dt.datetime, notes: list[str]
) -> dt.datetime:
    """The time to restore to (whole seconds), checked against the table's point-in-time window."""
    if not window["enabled"]:
        raise NotReadyError(
            f"point-in-time recovery is not enabled on {ctx.table_name}: enable it (01_prepare "
            "with apply=True). Only times after enabling it can be restored; for an earlier "
            "time use source='backup' with an on-demand backup."
        )
    when = requested.replace(microsecond=0)
    if when != requested:
        notes.append(
            f"restore time rounded down to whole seconds: {when.isoformat()} (requested "
            f"{requested.isoformat()}); DynamoDB restores to the second"
        )
    earliest, latest = window["earliest"], window["latest"]
    if (earliest and when < earliest) or (latest and when > latest):
        raise InputError(
            f"restore_time {when.isoformat()} is outside the point-in-time window of "
            f"{ctx.table_name}: restorable from {iso(earliest)} to {iso(latest)}. Choose a time "
            "in that window (the latest restorable time is about 5 minutes ago on AWS)."
        )
    return when


def _backup_point(
    ctx: Context,
    backup_arn: str | None,
    start: dt.datetime | None,
    requested: dt.datetime | None,
    notes: list[str],
) -> tuple[dt.datetime, dict[str, Any]]:
    """The time a backup holds the table as of, and the table features it was taken with."""
    backup = _check_backup(ctx.aws, ctx.table_name, backup_arn, start)
    when = backup["BackupDetails"]["BackupCreationDateTime"].astimezone(dt.UTC)
    if requested and abs((requested - when).total_seconds()) >= 1:
        notes.append(
            f"the backup holds the table as of {when.isoformat()}, not restore_time {requested.isoformat()}"
        )
    return when, backup.get("SourceTableFeatureDetails") or {}


def _check_backup(
    aws: Aws, table_name: str, backup_arn: str | None, start: dt.datetime | None
) -> dict[str, Any]:
    if not backup_arn:
        raise InputError(
            "source='backup' needs backup_arn (see `aws dynamodb list-backups --table-name "
            f"{table_name}` or AWS Backup's recovery points)."
        )
    try:
        backup = aws.dynamodb.describe_backup(BackupArn=backup_arn)["BackupDescription"]
    except ClientError as exc:
        if error_code(exc) in ("BackupNotFoundException", "ResourceNotFoundException", "ValidationException"):
            raise InputError(
                f"backup {backup_arn!r} was not found: check backup_arn and region.", cause=exc
            ) from exc
        raise explain(exc, "dynamodb:DescribeBackup", backup_arn) from exc
    source_name = (backup.get("SourceTableDetails") or {}).get("TableName")
    if source_name and source_name != table_name:
        raise InputError(f"backup {backup_arn} is of table {source_name!r}, not {table_name!r}.")
    details = backup["BackupDetails"]
    if details.get("BackupStatus") != "AVAILABLE":
        raise NotReadyError(
            f"backup {backup_arn} is {details.get('BackupStatus')}: wait until it is AVAILABLE."
        )
    taken = details["BackupCreationDateTime"]
    if start and taken > start:
        raise InputError(
            f"backup {backup_arn} was taken at {iso(taken)}, after incident_start {start.isoformat()}: "
            "it may hold corrupted items. Choose a backup taken before the incident."
        )
    return backup
