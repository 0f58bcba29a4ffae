"""Verify a patch: read every item it wrote again and check it equals its target; list what is left."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import plan as planlib
from ..context import Context
from ..items import from_json_safe, iter_chunks, to_json_safe
from ..scan import BATCH_GET_MAX, batch_get
from .checks import key_schema, validate_numbers
from .plan_reading import plan_changes
from .reports import REPORT_LIMIT, VerifyReport
from .requests import pdigest
from .shards import iter_journals
from .state import current_patch, settled_lines


def verify(ctx: Context, *, max_workers: int = 8) -> VerifyReport:
    """Read every item the patch wrote again and check it equals its target; list conflicts and leftovers.

    The journals of every segment present (``patch-shards/``) are read with the whole plan's."""
    validate_numbers(max_workers, None)
    run_id = current_patch(ctx)
    schema = key_schema(ctx)
    report = VerifyReport(
        incident_id=ctx.incident.incident_id, table_name=ctx.table_name, patch_id=run_id, schema=schema
    )
    final: set[str] = set()
    _check_written(ctx, report, _written_lines(ctx, run_id, report, final), max_workers)
    failed_ids = _open_failures(ctx, run_id, report, final)
    report.pending = _never_attempted(ctx, final | failed_ids)
    ctx.record(
        "verify patch",
        result="ok" if report.ok else "problems",
        patch_id=run_id,
        checked=report.checked,
        matching=report.matching,
        mismatched=len(report.mismatched),
        conflicts=report.conflicts,
        failed=report.failed,
        pending=report.pending,
        ambiguous=report.ambiguous,
        resolved=report.resolved or None,
    )
    return report


def _written_lines(
    ctx: Context, run_id: str, report: VerifyReport, final: set[str]
) -> Iterator[dict[str, Any]]:
    """The line that settles each key (noting conflicts in the report); yields the written ones.

    A key the engineer decided (``patch.resolve_ambiguous``) counts by the decision: "write" as patched,
    "keep" as resolved (the item as found was accepted: nothing to compare)."""
    for line in settled_lines(iter_journals(ctx.incident.path), run_id):
        final.add(line["key_id"])
        if line["status"] == "conflict":
            report.conflicts += 1
            if len(report.conflict_items) < REPORT_LIMIT:
                report.conflict_items.append(line)
        elif line["status"] == "ambiguous":  # the engineer decides (docs/steps/05_patch-safety.md)
            report.ambiguous += 1
            if len(report.ambiguous_items) < REPORT_LIMIT:
                report.ambiguous_items.append(line)
        elif line["status"] == "resolved":
            report.resolved += 1
        elif line["status"] in ("patched", "unchanged"):
            yield line


def _check_written(
    ctx: Context, report: VerifyReport, lines: Iterator[dict[str, Any]], max_workers: int
) -> None:
    """Consistent reads of the written keys, in batches over worker threads; mismatches go to the report."""
    schema = report.schema
    lock = threading.Lock()

    def check(chunk: list[dict[str, Any]]) -> None:
        keys = [from_json_safe(line["key"]) for line in chunk]
        found = batch_get(ctx.aws.dynamodb, ctx.table_name, keys, schema, consistent_read=True)
        for line in chunk:
            live = found.get(line["key_id"])
            ok = (
                pdigest(live, line.get("attributes")) == line["target_digest"]
                if "target_digest" in line
                else True
            )
            with lock:
                report.checked += 1
                if ok:
                    report.matching += 1
                elif len(report.mismatched) < REPORT_LIMIT:
                    report.mismatched.append(
                        {
                            **line,
                            "status": "mismatch",
                            "found": to_json_safe(live),
                            "reason": "differs from the patch's target",
                        }
                    )

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="verify") as pool:
        futures = []
        for chunk in iter_chunks(lines, BATCH_GET_MAX):
            futures.append(pool.submit(check, chunk))
            if len(futures) >= max_workers * 2:
                futures.pop(0).result()
        for f in futures:
            f.result()


def _open_failures(ctx: Context, run_id: str, report: VerifyReport, final: set[str]) -> set[str]:
    """Keys whose last attempt failed and that have no final outcome since; noted in the report."""
    failed_ids: set[str] = set()
    for line in iter_journals(ctx.incident.path):
        if line.get("patch_id") == run_id and line.get("status") == "failed" and line["key_id"] not in final:
            if line["key_id"] not in failed_ids and len(report.failures) < REPORT_LIMIT:
                report.failures.append(line)
            failed_ids.add(line["key_id"])
    report.failed = len(failed_ids)
    return failed_ids


def _never_attempted(ctx: Context, settled: set[str]) -> int:
    """Approved changes of the patched plan that no run has attempted yet (0 if the plan changed since)."""
    incident = ctx.incident
    if incident.get("patch_plan_digest") != planlib.load_plan_meta(incident)["digest"]:
        return 0
    approvals = planlib.load_approvals(incident)
    attrs = incident.get("patch_attributes")
    return sum(
        1
        for _, change in plan_changes(ctx, approvals, tuple(attrs) if attrs else None, None)
        if change is not None and change.key_id not in settled
    )
