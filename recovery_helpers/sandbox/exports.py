"""Exports to S3 shaped like AWS's: manifests, gzip JSON-lines data files, full and incremental exports.

Layout under ``s3://<bucket>/<prefix>/AWSDynamoDB/<ExportId>/``: ``_started``, ``manifest-summary.json``,
``manifest-files.json`` (JSON lines: itemCount, md5Checksum, etag, dataFileS3Key) and ``data/<id>.json.gz``.
A full export holds ``{"Item": ...}`` lines as of ExportTime; an incremental export holds one line per item
written in [ExportFromTime, ExportToTime): ``{"Metadata": {"WriteTimestampMicros": ...}, "Keys", "NewImage",
"OldImage"}`` (no NewImage: deleted; no OldImage: created). The export stays IN_PROGRESS for the sandbox's
``export_seconds`` and the incremental window must be at least ``export_min_window_seconds`` (AWS: 15 minutes).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import patches, restores
from .history import HISTORIES

EXPORTS: dict[str, Export] = {}


def to_json_safe(value: Any) -> Any:
    """DynamoDB JSON with bytes as base64 text, as export files hold it (the sandbox never imports the runbook's
    ``items``: it must check the runbook, not share its code)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and type(value).__name__ == "Binary":  # boto3's Binary wrapper
        return base64.b64encode(bytes(value.value)).decode()
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_safe(v) for v in value]
    return value


MAX_WINDOW = 24 * 3600.0


@dataclass
class Export:
    arn: str
    export_id: str
    table_arn: str
    table_id: str
    bucket: str
    prefix: str | None
    export_type: str
    export_format: str
    export_time: float
    start_time: float
    ready_at: float
    client_token: str | None
    incremental: dict[str, Any] | None = None
    item_count: int = 0
    billed_bytes: int = 0
    manifest_key: str = ""
    failure: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.failure:
            return "FAILED"
        return "COMPLETED" if patches.now() >= self.ready_at else "IN_PROGRESS"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ExportArn": self.arn,
            "ExportStatus": self.status,
            "StartTime": self.start_time,
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "ExportTime": self.export_time,
            "S3Bucket": self.bucket,
            "S3SseAlgorithm": "AES256",
            "ExportFormat": self.export_format,
            "ExportType": self.export_type,
        }
        if self.prefix:
            out["S3Prefix"] = self.prefix
        if self.client_token:
            out["ClientToken"] = self.client_token
        if self.incremental:
            out["IncrementalExportSpecification"] = self.incremental
        if self.status == "COMPLETED":
            out.update(
                EndTime=self.ready_at,
                ExportManifest=self.manifest_key,
                ItemCount=self.item_count,
                BilledSizeBytes=self.billed_bytes,
            )
        if self.failure:
            out.update(FailureCode=self.failure[0], FailureMessage=self.failure[1], EndTime=self.start_time)
        return out


def handle_export(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import PointInTimeRecoveryUnavailable, TableNotFoundException

    body = self.body
    backend = self.dynamodb_backend
    token = body.get("ClientToken")
    if token:
        for existing in EXPORTS.values():
            if existing.client_token == token and existing.table_arn == body["TableArn"]:
                return ActionResult({"ExportDescription": existing.describe()})
    table = next((t for t in backend.tables.values() if t.table_arn == body["TableArn"]), None)
    if table is None:
        raise TableNotFoundException(body["TableArn"])
    win = restores.window(table)
    if win is None:
        raise PointInTimeRecoveryUnavailable(table.name)
    earliest, latest = win
    now = patches.now()
    export_type = body.get("ExportType") or "FULL_EXPORT"
    export_format = body.get("ExportFormat") or "DYNAMODB_JSON"
    if export_format != "DYNAMODB_JSON":
        raise restores._validation("The sandbox writes DYNAMODB_JSON exports only (ION is not emulated)")
    export_id = f"{int(now * 1000):013d}-{uuid.uuid4().hex[:8]}"
    export = Export(
        arn=f"{table.table_arn}/export/{export_id}",
        export_id=export_id,
        table_arn=table.table_arn,
        table_id=str(uuid.uuid5(uuid.NAMESPACE_URL, table.table_arn)),
        bucket=body["S3Bucket"],
        prefix=body.get("S3Prefix"),
        export_type=export_type,
        export_format=export_format,
        export_time=now,
        start_time=now,
        ready_at=now + patches.settings().export_seconds,
        client_token=token,
    )
    hist = HISTORIES[table.table_arn]
    if export_type == "FULL_EXPORT":
        when = restores._epoch(body["ExportTime"]) if body.get("ExportTime") else now
        if not earliest <= when <= max(latest, now):
            raise _invalid_time(
                f"ExportTime {restores._iso(when)} is outside the restorable period "
                f"[{restores._iso(earliest)}, {restores._iso(latest)}]"
            )
        export.export_time = when
        lines = ({"Item": item} for item in hist.items_at(when))
    else:
        spec = body.get("IncrementalExportSpecification") or {}
        start = restores._epoch(spec["ExportFromTime"])
        end = restores._epoch(spec["ExportToTime"])
        view = spec.get("ExportViewType") or "NEW_AND_OLD_IMAGES"
        minimum = patches.settings().export_min_window_seconds
        if end - start < minimum:
            raise restores._validation(
                f"The incremental export period must be at least {minimum:g} seconds "
                f"(ExportFromTime {restores._iso(start)}, ExportToTime {restores._iso(end)})"
            )
        if end - start > MAX_WINDOW:
            raise restores._validation("The incremental export period must be at most 24 hours")
        if start < earliest or end > latest:
            raise _invalid_time(
                f"The export period [{restores._iso(start)}, {restores._iso(end)}) is outside "
                f"the restorable period [{restores._iso(earliest)}, {restores._iso(latest)}]"
            )
        export.export_time = end
        export.incremental = {"ExportFromTime": start, "ExportToTime": end, "ExportViewType": view}
        lines = (_incremental_line(hist, last, old, new, view) for last, old, new in hist.changes(start, end))
    s3 = _s3(self.current_account)
    if export.bucket not in s3.buckets:
        export.failure = ("S3NoSuchBucket", f"The specified bucket does not exist: {export.bucket}")
    else:
        _write(s3, export, lines)
    EXPORTS[export.arn] = export
    return ActionResult({"ExportDescription": export.describe()})


def _incremental_line(hist: Any, last: float, old: Any, new: Any, view: str) -> dict[str, Any]:
    image = new if new is not None else old
    keys = {hist.hash_attr: image[hist.hash_attr]}
    if hist.range_attr:
        keys[hist.range_attr] = image[hist.range_attr]
    line: dict[str, Any] = {
        "Metadata": {"WriteTimestampMicros": {"N": str(int(last * 1_000_000))}},
        "Keys": keys,
    }
    if new is not None:
        line["NewImage"] = new
    if old is not None and view == "NEW_AND_OLD_IMAGES":
        line["OldImage"] = old
    return line


def _write(s3: Any, export: Export, lines: Any) -> None:
    base = f"{export.prefix.rstrip('/')}/" if export.prefix else ""
    root = f"{base}AWSDynamoDB/{export.export_id}"
    s3.put_object(export.bucket, f"{root}/_started", b"")
    manifest_lines = []
    chunk: list[str] = []
    total = 0
    size = 0

    def flush() -> None:
        nonlocal size
        if not chunk:
            return
        data = gzip.compress(("\n".join(chunk) + "\n").encode())
        key = f"{root}/data/{uuid.uuid4().hex[:26]}.json.gz"
        s3.put_object(export.bucket, key, data)
        md5 = hashlib.md5(data)
        manifest_lines.append(
            {
                "itemCount": len(chunk),
                "md5Checksum": base64.b64encode(md5.digest()).decode(),
                "etag": md5.hexdigest(),
                "dataFileS3Key": key,
            }
        )
        size += len(data)
        chunk.clear()

    for line in lines:
        chunk.append(json.dumps(to_json_safe(line), separators=(",", ":")))
        total += 1
        if len(chunk) >= max(1, int(patches.settings().export_items_per_file)):
            flush()
    flush()
    files_key = f"{root}/manifest-files.json"
    s3.put_object(export.bucket, files_key, "".join(json.dumps(m) + "\n" for m in manifest_lines).encode())
    iso = restores._iso
    summary = {
        "version": "2023-08-01" if export.incremental else "2020-06-30",
        "exportArn": export.arn,
        "startTime": iso(export.start_time),
        "endTime": iso(export.ready_at),
        "tableId": export.table_id,
        "tableArn": export.table_arn,
        "exportTime": iso(export.export_time),
        "s3Bucket": export.bucket,
        "s3Prefix": export.prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": size,
        "itemCount": total,
        "outputFormat": export.export_format,
        "exportType": export.export_type,
    }
    if export.incremental:
        summary.update(
            exportFromTime=iso(export.incremental["ExportFromTime"]),
            exportToTime=iso(export.incremental["ExportToTime"]),
            outputView=export.incremental["ExportViewType"],
        )
    export.manifest_key = f"{root}/manifest-summary.json"
    s3.put_object(export.bucket, export.manifest_key, json.dumps(summary, indent=2).encode())
    export.item_count, export.billed_bytes = total, size


def _s3(account_id: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id]["aws"]


def _invalid_time(message: str) -> Exception:
    return restores._error("InvalidExportTimeException", message)


def handle_describe_export(self: Any) -> Any:
    from moto.core.responses import ActionResult

    export = EXPORTS.get(self.body["ExportArn"])
    if export is None:
        raise restores._error("ExportNotFoundException", f"Export not found: {self.body['ExportArn']}")
    return ActionResult({"ExportDescription": export.describe()})


def handle_list_exports(self: Any) -> Any:
    from moto.core.responses import ActionResult

    table_arn = self.body.get("TableArn")
    summaries = [
        {"ExportArn": e.arn, "ExportStatus": e.status, "ExportType": e.export_type}
        for e in EXPORTS.values()
        if table_arn in (None, e.table_arn)
    ]
    return ActionResult({"ExportSummaries": summaries})
