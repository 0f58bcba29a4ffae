"""Impacted keys, with both versions of each item, from DynamoDB incremental exports of the incident window.

An ``INCREMENTAL_EXPORT`` (``NEW_AND_OLD_IMAGES``) of ``[window_start, window_end)`` lists every item changed
in the window once, with its image when the window opened (``OldImage``; absent: created) and when it closed
(``NewImage``; absent: deleted). That is the impacted list and the pre-incident items at once: no restored
table is needed for these keys.

Options (``request.options``): ``export_bucket`` (required), ``export_prefix`` (default
``dynamodb-recovery/<table>``), ``export_min_window_seconds`` (AWS: 900; a shorter window is widened
backwards, which only adds items that changed legitimately just before the incident: they classify as
unchanged), ``export_timeout_seconds`` (default 6 h), ``record`` (a ``ctx.record``-like callable; the exports
started are recorded with it). Windows longer than 24 h become a chain of consecutive exports: each key's
``before`` comes from the first export that has it and its ``after`` from the last (merged in a SQLite file in
the run folder, so memory does not grow with the number of keys).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..errors import InputError
from ..items import from_json_safe, to_json_safe
from ..resources import exports
from ..tenancy import selects_any
from . import ImpactedKey, SourceRequest

NAME = "incremental_export"


def _action(before: dict | None, after: dict | None) -> str:
    if before is None and after is not None:
        return "create"
    if before is not None and after is None:
        return "delete"
    return "update" if before is not None else "unknown"


def _pitr_range(request: SourceRequest) -> tuple[dt.datetime | None, dt.datetime | None]:
    try:
        desc = request.aws.dynamodb.describe_continuous_backups(TableName=request.table_name)
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeContinuousBackups", request.table_name) from exc
    pitr = desc["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise InputError(
            f"point-in-time recovery is not enabled on {request.table_name}: incremental exports read PITR "
            "history. Use another impacted_source (cloudwatch_logs, audit_table, full_compare...)."
        )
    return pitr.get("EarliestRestorableDateTime"), pitr.get("LatestRestorableDateTime")


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Every item changed in the window, with its before and after images (``has_images=True``)."""
    options = request.options
    bucket = options.get("export_bucket")
    if not bucket:
        raise InputError(
            "impacted_source 'incremental_export' needs an S3 bucket for the export: set the `export_bucket` "
            "parameter (a bucket in the table's region that this identity may write to)."
        )
    prefix = str(options.get("export_prefix") or f"dynamodb-recovery/{request.table_name}").strip("/")
    min_seconds = float(options.get("export_min_window_seconds", exports.AWS_MIN_WINDOW_SECONDS))
    timeout = float(options.get("export_timeout_seconds", exports.DEFAULT_TIMEOUT_SECONDS))
    record: Callable[..., Any] | None = options.get("record")
    stats = request.stats

    earliest, latest = _pitr_range(request)
    plan = exports.plan_windows(
        request.window_start, request.window_end, min_seconds=min_seconds, earliest=earliest, latest=latest
    )
    for note in plan.notes:
        stats.problem(note)
    try:
        table_arn = request.aws.dynamodb.describe_table(TableName=request.table_name)["Table"]["TableArn"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", request.table_name) from exc
    arns = []
    for window in plan.windows:
        desc = exports.start_incremental_export(request.aws, table_arn, window, bucket, prefix)
        arns.append(desc["ExportArn"])
        if record is not None:
            record(
                "start incremental export",
                "ok",
                export_arn=desc["ExportArn"],
                bucket=bucket,
                prefix=prefix,
                export_from=window.start.isoformat(),
                export_to=window.end.isoformat(),
            )
    stats.add("exports", len(arns))
    descriptions = exports.wait_for_exports(request.aws, arns, timeout_seconds=timeout)
    manifests = [exports.read_manifest(request.aws, descriptions[arn]) for arn in arns]
    if len(manifests) == 1:
        yield from _single(request, manifests[0])
    else:
        yield from _chained(request, manifests)


def _finding(
    request: SourceRequest, change: exports.ExportChange, before: Any, after: Any, when: dt.datetime | None
) -> ImpactedKey | None:
    key = request.key_schema.key_of(change.keys)
    if not selects_any(request.tenancy, request.tenants, before, after, key):  # old or new tenant
        request.stats.add("filtered_tenant")
        return None
    return ImpactedKey(
        key=key,
        action=_action(before, after),
        first_change=when,
        source=NAME,
        before=before,
        after=after,
        has_images=True,
    )


def _single(request: SourceRequest, manifest: exports.Manifest) -> Iterator[ImpactedKey]:
    for change in exports.iter_changes(request.aws, manifest):
        request.stats.read += 1
        finding = _finding(request, change, change.old_image, change.new_image, change.write_time)
        if finding is not None:
            yield finding


def _chained(request: SourceRequest, manifests: list[exports.Manifest]) -> Iterator[ImpactedKey]:
    """Merge a chain: before from the first export with the key, after (and time) from the last."""
    path = Path(request.scratch_dir) / "incremental-export-merge.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE k (key_id TEXT PRIMARY KEY, keys TEXT, before TEXT, after TEXT, first TEXT)")
        for manifest in manifests:
            for change in exports.iter_changes(request.aws, manifest):
                request.stats.read += 1
                key_id = request.key_schema.key_id(change.keys)
                when = change.write_time.isoformat() if change.write_time else None
                db.execute(
                    "INSERT INTO k VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(key_id) DO UPDATE SET after = excluded.after",
                    (key_id, _dump(change.keys), _dump(change.old_image), _dump(change.new_image), when),
                )
            db.commit()
        rows = db.execute("SELECT keys, before, after, first FROM k ORDER BY key_id")
        for keys, before, after, first in rows:
            change = exports.ExportChange(_load(keys), None, None, None)
            when = dt.datetime.fromisoformat(first) if first else None
            finding = _finding(request, change, _load(before), _load(after), when)
            if finding is not None:
                yield finding
    finally:
        db.close()
        path.unlink(missing_ok=True)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(to_json_safe(value))


def _load(text: str | None) -> Any:
    return None if text is None else from_json_safe(json.loads(text))
