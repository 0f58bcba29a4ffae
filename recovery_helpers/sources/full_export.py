"""Impacted keys, with both versions, from two FULL exports: the table at the restore time and the table now.

No restored table and no read capacity: ``ExportTableToPointInTime`` (FULL_EXPORT) reads PITR history. The
"before" export is taken at ``restore_time`` (default: the incident start), the "after" export now; the two are
compared on an engine (``compare_engine``: ``"duckdb"``, embedded, the default, or ``"spark"``) with the same
semantics as every other comparison (numbers by value with all digits, sets unordered, maps by key). Every item
that differs is a finding with both images (``has_images=True``); the diff then reads the live item as usual.

Options (``request.options``): ``export_bucket`` (required unless both exports are given), ``export_prefix``
(default ``dynamodb-recovery/<table>/full``), ``restore_time`` (ISO 8601 or datetime; must not be after the
incident start), ``export_arns`` (exports to reuse instead of starting them: one or two FULL exports of this
table; the one at or before the incident start is the "before", a later one the "after"), ``compare_engine``,
``memory_limit`` / ``spark_master`` (engine settings), ``export_timeout_seconds`` (default 6 h) and
``record`` (the exports started are recorded with it). A re-run reuses the "before" export (same ClientToken).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..errors import InputError
from ..items import from_json_safe
from ..resources import exports
from ..tenancy import selects
from . import ImpactedKey, SourceRequest

NAME = "full_export"
ENGINES = ("duckdb", "spark")
ACTION_OF = {"changed": "update", "deleted": "delete", "created": "create"}


def _time(value: Any, name: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise InputError(
            f"{name} {value!r} must be an ISO 8601 time WITH an offset, e.g. 2025-01-31T09:55:00+00:00"
        )
    return when.astimezone(dt.UTC)


def _describe(request: SourceRequest, arn: str) -> dict[str, Any]:
    try:
        return request.aws.dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeExport", arn) from exc


def _given_exports(
    request: SourceRequest, arns: list[str], table_arn: str, before_time: dt.datetime
) -> tuple[str | None, str | None]:
    """(before ARN, after ARN) among the exports named in ``export_arns`` (checked: FULL, this table)."""
    if len(arns) > 2:
        raise InputError(f"export_arns names {len(arns)} exports: give at most two (before and after).")
    before = after = None
    for arn in arns:
        desc = _describe(request, arn)
        if desc.get("ExportType", "FULL_EXPORT") != "FULL_EXPORT":
            raise InputError(
                f"export {arn} is an {desc['ExportType']}: full_export needs FULL exports "
                "(an incremental export goes with impacted_source='incremental_export')."
            )
        if desc.get("TableArn") != table_arn:
            raise InputError(f"export {arn} is of {desc.get('TableArn')}, not of {table_arn}.")
        when = desc.get("ExportTime")
        if when is not None and when <= before_time:
            if before is not None:
                raise InputError(
                    "export_arns names two exports before the incident: give one before, one after."
                )
            before = arn
        else:
            if after is not None:
                raise InputError(
                    f"export_arns names two exports after {before_time.isoformat()}: the 'before' export must "
                    "be at or before restore_time / incident_start (it is the table before the incident)."
                )
            after = arn
    return before, after


def _start(request: SourceRequest, table_arn: str, bucket: str, prefix: str, when: dt.datetime | None) -> str:
    # the "before" (at ``when``) carries a ClientToken: the same request on a re-run reuses the same export
    desc = exports.start_full_export(request.aws, table_arn, bucket, prefix, when)
    record = request.options.get("record")
    if record is not None:
        record(
            "start full export",
            "ok",
            export_arn=desc["ExportArn"],
            bucket=bucket,
            prefix=prefix,
            export_time=when.isoformat() if when else "now",
        )
    return desc["ExportArn"]


def _location(desc: dict[str, Any]) -> str:
    summary_key = exports.manifest_summary_key(desc)
    return f"s3://{desc['S3Bucket']}/{summary_key.rsplit('/', 1)[0]}"


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Every item that differs between the two exports, with both images (``has_images=True``)."""
    from ..compare.command import compare_files
    from ..compare.differences import read_differences
    from ..compare.exports_layout import open_export

    options = request.options
    engine = options.get("compare_engine") or "duckdb"
    if engine not in ENGINES:
        raise InputError(f"compare_engine {engine!r} is not one of {', '.join(ENGINES)}.")
    before_time = _time(options.get("restore_time") or request.window_start, "restore_time")
    before_time = before_time.replace(microsecond=0)
    if before_time > request.window_start:
        raise InputError(
            f"restore_time {before_time.isoformat()} is after incident_start {request.window_start.isoformat()}: "
            "the 'before' export would already hold the incident's changes. Give an earlier restore_time."
        )
    arns = options.get("export_arns") or []
    if isinstance(arns, str):
        arns = [a.strip() for a in arns.split(",") if a.strip()]
    try:
        table_arn = request.aws.dynamodb.describe_table(TableName=request.table_name)["Table"]["TableArn"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", request.table_name) from exc
    before_arn, after_arn = _given_exports(request, list(arns), table_arn, before_time)
    bucket = options.get("export_bucket")
    if (before_arn is None or after_arn is None) and not bucket:
        raise InputError(
            "impacted_source 'full_export' needs an S3 bucket for the exports: set the `export_bucket` parameter "
            "(a bucket in the table's region that this identity may write to), or name both exports in "
            "`export_arns`."
        )
    prefix = str(options.get("export_prefix") or f"dynamodb-recovery/{request.table_name}/full").strip("/")
    started = 0
    if before_arn is None:
        before_arn, started = _start(request, table_arn, bucket, prefix, before_time), started + 1
    if after_arn is None:
        after_arn, started = _start(request, table_arn, bucket, prefix, None), started + 1
    request.stats.add("exports_started", started)
    timeout = float(options.get("export_timeout_seconds", exports.DEFAULT_TIMEOUT_SECONDS))
    descriptions = exports.wait_for_exports(request.aws, [before_arn, after_arn], timeout_seconds=timeout)
    after_time = descriptions[after_arn].get("ExportTime")
    if after_time is not None and after_time < request.window_end:
        request.stats.problem(
            f"the 'after' export is of {after_time.isoformat()}, before incident_end "
            f"{request.window_end.isoformat()}: items changed after it are not found (drop it from export_arns)"
        )

    work = Path(request.scratch_dir) / "full-export-work"
    shutil.rmtree(work, ignore_errors=True)
    try:
        sides = [
            open_export(_location(descriptions[arn]), s3=request.aws.s3, download_dir=work / side)
            for side, arn in (("before", before_arn), ("after", after_arn))
        ]
        summary = compare_files(
            engine,
            sides[0],
            sides[1],
            request.key_schema.names,
            work / "differences",
            temp_dir=work,
            memory_limit=options.get("memory_limit"),
            master=options.get("spark_master"),
        )
        request.stats.read += summary.compared
        request.stats.add("equal_but_rewritten", summary.equal_but_rewritten)
        for line in read_differences(work / "differences"):
            finding = _finding(request, line)
            if finding is not None:
                yield finding
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _finding(request: SourceRequest, line: dict[str, Any]) -> ImpactedKey | None:
    key = from_json_safe(line["key"])
    before, after = from_json_safe(line["restored"]), from_json_safe(line["live"])
    tenant = request.tenancy.tenant_of(after, before, key)
    if request.tenancy.configured and not selects(request.tenants, tenant):
        request.stats.add("filtered_tenant")
        return None
    return ImpactedKey(
        key=key,
        action=ACTION_OF[line["classification"]],
        first_change=None,
        source=NAME,
        before=before,
        after=after,
        has_images=True,
    )
