"""DynamoDB exports to S3: start them, wait for them, and stream what they wrote (manifests, then data files).

Layout AWS writes (``prefix/AWSDynamoDB/<ExportId>/``): ``manifest-summary.json`` (what and when, and where
``manifest-files.json`` is), ``manifest-files.json`` (JSON lines: ``dataFileS3Key``, ``itemCount``,
``md5Checksum``) and gzipped JSON-lines data files. Full exports hold ``{"Item": ...}`` lines; incremental
exports ``{"Metadata": {"WriteTimestampMicros": ...}, "Keys", "NewImage", "OldImage"}`` lines, one per item
changed in the window (no ``NewImage``: deleted; no ``OldImage``: created). Data files are read as streams,
one line at a time, and checked against the manifest's MD5 and item count.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..aws import Aws, explain
from ..errors import InputError, NotReadyError, RecoveryError, VerificationError
from ..items import Item, Key, from_json_safe

#: AWS's shortest incremental export window (15 minutes) and longest (24 hours).
AWS_MIN_WINDOW_SECONDS = 900
AWS_MAX_WINDOW_SECONDS = 86400
DEFAULT_TIMEOUT_SECONDS = 6 * 3600


@dataclass(frozen=True)
class ExportWindow:
    """One incremental export's ``[start, end)``, in whole seconds as the API takes them."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class WindowPlan:
    """The exports that cover a requested window, and how the request had to be adjusted."""

    windows: list[ExportWindow]
    notes: list[str]


@dataclass(frozen=True)
class ExportChange:
    """One line of an incremental export: an item changed in the window (images as DynamoDB JSON, bytes)."""

    keys: Key
    old_image: Item | None
    new_image: Item | None
    write_time: dt.datetime | None


def _epoch(when: dt.datetime) -> float:
    if when.tzinfo is None:
        raise InputError(f"{when!r} has no time zone: give times with an offset (e.g. ...+00:00)")
    return when.timestamp()


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def plan_windows(
    start: dt.datetime,
    end: dt.datetime,
    *,
    min_seconds: float = AWS_MIN_WINDOW_SECONDS,
    max_seconds: float = AWS_MAX_WINDOW_SECONDS,
    earliest: dt.datetime | None = None,
    latest: dt.datetime | None = None,
) -> WindowPlan:
    """Incremental export windows covering ``[start, end)``, within what AWS accepts.

    Times become whole seconds (start rounded down, end up: the export covers at least the window). A window
    shorter than ``min_seconds`` is widened backwards: starting earlier only adds items that changed before
    the incident, which the diff classifies as unchanged (or shows as a real difference). A window longer
    than ``max_seconds`` becomes a chain of equal consecutive exports. ``earliest``/``latest`` (PITR's
    restorable range) clamp the window; what that leaves out is said in ``notes``.
    """
    s, e = math.floor(_epoch(start)), math.ceil(_epoch(end))
    notes: list[str] = []
    if e <= s:
        raise InputError(
            f"the incident window is empty: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    if latest is not None and e > _epoch(latest):
        e = math.floor(_epoch(latest))
        if e <= s:
            raise NotReadyError(
                f"PITR's latest restorable time {_utc(e).isoformat()} is not after the window start "
                f"{_utc(s).isoformat()}: nothing of the window can be exported yet. Wait a few minutes and "
                "run the step again."
            )
        notes.append(
            f"window end moved back to PITR's latest restorable time {_utc(e).isoformat()}: changes after it "
            "are not in the export"
        )
    if e - s < min_seconds:
        s = math.floor(e - min_seconds)
        notes.append(
            f"window widened backwards to the {min_seconds:g} s minimum of incremental exports (now from "
            f"{_utc(s).isoformat()}): items changed legitimately in the extra time show up as unchanged"
        )
    if earliest is not None and s < _epoch(earliest):
        s = math.ceil(_epoch(earliest))
        notes.append(f"window start moved to PITR's earliest restorable time {_utc(s).isoformat()}")
        if e - s < min_seconds:
            raise NotReadyError(
                f"PITR history of this table covers only {_utc(s).isoformat()} .. {_utc(e).isoformat()}, "
                f"shorter than the {min_seconds:g} s an incremental export needs: use another "
                "impacted_source (full_compare, cloudwatch_logs, ...)."
            )
    count = max(1, math.ceil((e - s) / max_seconds))
    bounds = [s + round(i * (e - s) / count) for i in range(count + 1)]
    if count > 1:
        notes.append(f"window longer than {max_seconds:g} s: chained {count} exports")
    windows = [ExportWindow(_utc(a), _utc(b)) for a, b in itertools.pairwise(bounds)]
    return WindowPlan(windows, notes)


def client_token(*parts: Any) -> str:
    """A ClientToken for these export parameters: asking twice (a re-run notebook) reuses the same export."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:36]


def start_incremental_export(
    aws: Aws,
    table_arn: str,
    window: ExportWindow,
    bucket: str,
    prefix: str,
    *,
    view_type: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    """Start an INCREMENTAL_EXPORT of ``window`` into ``s3://bucket/prefix`` (returns ExportDescription)."""
    kwargs = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "INCREMENTAL_EXPORT",
        "IncrementalExportSpecification": {
            "ExportFromTime": window.start,
            "ExportToTime": window.end,
            "ExportViewType": view_type,
        },
        "ClientToken": client_token(table_arn, window.start, window.end, bucket, prefix, view_type),
    }
    return _start(aws, kwargs)


def start_full_export(
    aws: Aws, table_arn: str, bucket: str, prefix: str, export_time: dt.datetime | None = None
) -> dict[str, Any]:
    """Start a FULL_EXPORT (a snapshot at ``export_time``, default now) into ``s3://bucket/prefix``.

    With an ``export_time`` the request carries a ClientToken of its parameters, so asking again (a re-run
    notebook) reuses the same export; "now" is a new snapshot each time.
    """
    kwargs: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
    }
    if export_time is not None:
        kwargs["ExportTime"] = export_time
        kwargs["ClientToken"] = client_token(table_arn, "FULL_EXPORT", export_time, bucket, prefix)
    return _start(aws, kwargs)


def _start(aws: Aws, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return aws.dynamodb.export_table_to_point_in_time(**kwargs)["ExportDescription"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "PointInTimeRecoveryUnavailableException":
            raise NotReadyError(
                f"cannot export {kwargs['TableArn']}: point-in-time recovery is not enabled on it "
                "(exports read PITR history). Use another impacted_source.",
                cause=exc,
            ) from exc
        raise explain(exc, "dynamodb:ExportTableToPointInTime", kwargs["TableArn"]) from exc


def wait_for_exports(
    aws: Aws,
    export_arns: Sequence[str],
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    first_interval: float = 1.0,
    max_interval: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll DescribeExport until every export is COMPLETED; FAILED or the timeout raise (with the ARNs).

    The interval doubles from ``first_interval`` up to ``max_interval`` (with jitter): quick exports are
    noticed quickly, long ones are not polled every second for an hour.
    """
    deadline = clock() + timeout_seconds
    pending = list(dict.fromkeys(export_arns))
    done: dict[str, dict[str, Any]] = {}
    interval = first_interval
    while True:
        status: dict[str, str] = {}
        for arn in list(pending):
            try:
                desc = aws.dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
            except ClientError as exc:
                raise explain(exc, "dynamodb:DescribeExport", arn) from exc
            status[arn] = desc["ExportStatus"]
            if desc["ExportStatus"] == "COMPLETED":
                done[arn] = desc
                pending.remove(arn)
            elif desc["ExportStatus"] == "FAILED":
                raise RecoveryError(
                    f"export {arn} FAILED: {desc.get('FailureCode', '')} {desc.get('FailureMessage', '')}. "
                    "Check that the bucket exists and this identity may write to it, then run again with "
                    "another export_prefix (the same parameters return the same failed export for 8 hours)."
                )
        if progress is not None:
            progress(status)
        if not pending:
            return {arn: done[arn] for arn in dict.fromkeys(export_arns)}
        remaining = deadline - clock()
        if remaining <= 0:
            raise NotReadyError(
                f"exports still running after {timeout_seconds:g} s: {', '.join(pending)}. Run the step "
                "again later with the same incident_start and incident_end (set the end explicitly): the "
                "same window picks up the same exports."
            )
        sleep(min(remaining, interval * (0.75 + random.random() / 2)))
        interval = min(max_interval, interval * 2)


# -- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """An export's manifests: the summary and the data files (dicts from manifest-files.json)."""

    bucket: str
    summary: dict[str, Any]
    files: list[dict[str, Any]]

    @property
    def item_count(self) -> int | None:
        return self.summary.get("itemCount")

    @property
    def export_type(self) -> str:
        return self.summary.get("exportType", "FULL_EXPORT")


def manifest_summary_key(description: Mapping[str, Any]) -> str:
    """Where an export's ``manifest-summary.json`` is: ``ExportManifest``, else derived from the ARN."""
    if description.get("ExportManifest"):
        return description["ExportManifest"]
    export_id = description["ExportArn"].rsplit("/", 1)[-1]
    prefix = (description.get("S3Prefix") or "").strip("/")
    return f"{prefix}/AWSDynamoDB/{export_id}/manifest-summary.json".lstrip("/")


def read_manifest(aws: Aws, description: Mapping[str, Any]) -> Manifest:
    """Read a completed export's manifest-summary.json and manifest-files.json."""
    bucket = description["S3Bucket"]
    summary_key = manifest_summary_key(description)
    summary = json.loads(_get(aws, bucket, summary_key).read())
    files_key = summary.get("manifestFilesS3Key") or summary_key.rsplit("/", 1)[0] + "/manifest-files.json"
    body = _get(aws, bucket, files_key)
    files = [json.loads(line) for line in body.iter_lines() if line.strip()]
    return Manifest(bucket, summary, files)


def _get(aws: Aws, bucket: str, key: str) -> Any:
    try:
        return aws.s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise VerificationError(
                f"s3://{bucket}/{key} is missing: the export's files were moved or deleted, or the export "
                "did not write them. Export again (another export_prefix)."
            ) from exc
        raise explain(exc, "s3:GetObject", f"s3://{bucket}/{key}") from exc


class _HashingReader(io.RawIOBase):
    """A read-only stream that computes the MD5 of what passes through it."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.md5 = hashlib.md5()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        self.md5.update(data)
        buffer[: len(data)] = data
        return len(data)


def iter_lines(aws: Aws, manifest: Manifest) -> Iterator[dict[str, Any]]:
    """Every JSON line of every data file, streamed; each file is checked against its MD5 and item count."""
    for entry in manifest.files:
        key = entry["dataFileS3Key"]
        raw = _HashingReader(_get(aws, manifest.bucket, key))
        count = 0
        with gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 16)) as gz:
            for line in io.TextIOWrapper(gz, encoding="utf-8"):
                if line.strip():
                    count += 1
                    yield json.loads(line)
        while raw.read(1 << 16):
            pass
        expected_md5 = entry.get("md5Checksum")
        if expected_md5 and base64.b64encode(raw.md5.digest()).decode() != expected_md5:
            raise VerificationError(
                f"s3://{manifest.bucket}/{key} does not match its manifest MD5: export again."
            )
        if entry.get("itemCount") is not None and int(entry["itemCount"]) != count:
            raise VerificationError(
                f"s3://{manifest.bucket}/{key} has {count} lines, its manifest says {entry['itemCount']}: "
                "export again."
            )


def iter_items(aws: Aws, manifest: Manifest) -> Iterator[Item]:
    """The items of a full export (DynamoDB JSON, binary as bytes)."""
    for line in iter_lines(aws, manifest):
        yield from_json_safe(line["Item"])


def iter_changes(aws: Aws, manifest: Manifest) -> Iterator[ExportChange]:
    """The changed items of an incremental export."""
    for line in iter_lines(aws, manifest):
        yield parse_change(line)


def parse_change(line: Mapping[str, Any]) -> ExportChange:
    """One incremental-export line as a :class:`ExportChange`."""
    micros = ((line.get("Metadata") or {}).get("WriteTimestampMicros") or {}).get("N")
    when = _utc(int(micros) / 1e6) if micros is not None else None
    old, new = line.get("OldImage"), line.get("NewImage")
    return ExportChange(
        keys=from_json_safe(line["Keys"]),
        old_image=from_json_safe(old) if old is not None else None,
        new_image=from_json_safe(new) if new is not None else None,
        write_time=when,
    )
