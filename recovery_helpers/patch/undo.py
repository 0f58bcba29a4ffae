"""Undo a patch: put back every item it changed, where the item is still exactly what the patch wrote.

An attribute-level patch is undone attribute by attribute (only the attributes it restored are set back, on
the condition that they still hold what the patch wrote), so a change another writer made to any other
attribute since is kept. Like the patch, undo backs up each item it replaces right before the write
(``undo-backup.jsonl``) and settles its own in-flight writes on resume (see ``resume``). Keys the patch
journaled as ambiguous are not undone: they are listed for the engineer. Once the engineer decided one
(``patch.resolve_ambiguous``), "write" is undone like any patched key and "keep" is left alone (listed).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..context import Context
from ..errors import InputError, RecoveryError
from ..incident import utc_now
from ..items import from_json_safe, item_digest
from ..journal import JsonlFile
from ..ratelimit import RateLimiter
from .checks import key_schema, validate_numbers, validate_write_mode
from .engine import DEFAULT_WRITE_MODE, READ_BATCH, TRANSACT_BATCH, EngineTuning
from .reports import REPORT_LIMIT, UndoReport
from .requests import Change, pdigest
from .resume import changes_for
from .run import RunSpec, fill_report, run_engine
from .shards import iter_journals
from .state import (
    UNDO_BACKUP_FILE,
    UNDO_FILE,
    current_patch,
    final_lines,
    journal_state,
    patched_lines,
)


def undo(
    ctx: Context,
    *,
    max_workers: int = 8,
    progress: bool = True,
    limiter: RateLimiter | None = None,
    write_mode: str = DEFAULT_WRITE_MODE,
    transact_batch_size: int = TRANSACT_BATCH,
    tuning: EngineTuning | None = None,
) -> UndoReport:
    """Put back every item the patch changed, where it is still exactly what the patch wrote.

    Anything written since the patch is a conflict: reported, never overwritten. Journaled in ``undo.jsonl``
    and resumable like the patch itself. ``write_mode`` as for apply_plan. A patch split into segments is
    undone from every segment's journal present (``patch-shards/``), in this one process.
    """
    validate_numbers(max_workers, None)
    limiter = limiter or RateLimiter(None)
    mode = validate_write_mode(write_mode, transact_batch_size, limiter)
    incident = ctx.incident
    run_id = current_patch(ctx)
    schema = key_schema(ctx)
    undo_path = incident.path / UNDO_FILE
    final, done_counts, _ = journal_state(undo_path, run_id)
    report = UndoReport(
        incident_id=incident.incident_id,
        table_name=ctx.table_name,
        patch_id=run_id,
        executor=ctx.who,
        already_done=sum(done_counts.values()),
        schema=schema,
        write_mode=mode,
    )
    report.to_undo = sum(
        1 for line in patched_lines(iter_journals(incident.path), run_id) if line["key_id"] not in final
    )
    left = _left_ambiguous(incident.path, run_id)
    if report.to_undo == 0 and report.already_done == 0 and not left:
        raise InputError(
            f"patch {run_id} of incident {incident.incident_id!r} changed no item: nothing to undo."
        )

    def changes(_journal: JsonlFile) -> Iterator[Change]:
        for line in patched_lines(iter_journals(incident.path), run_id):
            if line["key_id"] not in final:
                yield _reverse(line)

    incident.update(patch_status="undoing")
    ctx.record(
        "undo started",
        patch_id=run_id,
        executor=report.executor,
        to_undo=report.to_undo,
        already_done=report.already_done,
    )
    spec = _undo_spec(
        incident.path,
        run_id,
        final,
        report,
        limiter,
        max_workers,
        mode,
        transact_batch_size,
        progress,
        tuning,
    )
    engine, elapsed = run_engine(ctx, schema, spec, changes)
    fill_report(report, engine, elapsed)
    report.ambiguous += len(left)
    report.ambiguous_items.extend(left[: max(0, 1000 - len(report.ambiguous_items))])
    kept = final_lines(iter_journals(incident.path), run_id, "resolved")
    report.resolved_items = list(itertools.islice(kept, REPORT_LIMIT))
    _record_finish(ctx, report, run_id, mode, engine.fatal)
    if engine.fatal is not None:
        raise engine.fatal
    return report


def _left_ambiguous(run_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The keys the patch journaled as ambiguous: not undone, listed for the engineer."""
    return [
        {
            **line,
            "reason": f"not undone: the patch could not tell whether it wrote this key ({line['reason']})",
        }
        for line in final_lines(iter_journals(run_dir), run_id, "ambiguous")
    ]


def _undo_spec(
    run_dir: Path,
    run_id: str,
    final: set[str],
    report: UndoReport,
    limiter: RateLimiter,
    max_workers: int,
    mode: str,
    transact_batch_size: int,
    progress: bool,
    tuning: EngineTuning | None,
) -> RunSpec:
    """How the engine runs this undo: its journal and backup files, tokens, and what a resume replays."""
    return RunSpec(
        kind="undo",
        verb="undone",
        run_id=run_id,
        run_fields={"patch_id": run_id},
        journal_path=run_dir / UNDO_FILE,
        backup_path=run_dir / UNDO_BACKUP_FILE,
        token_scope=f"undo|{run_id}|{utc_now()}|{os.getpid()}",
        total=report.to_undo,
        limiter=limiter,
        max_workers=max_workers,
        read_batch_size=READ_BATCH,
        write_mode=mode,
        transact_batch_size=transact_batch_size,
        progress=progress,
        tuning=tuning,
        interrupted_counts=("undone", "ambiguous"),
        final=final,
        resume_lookup=lambda keys: changes_for(
            keys, (_reverse(line) for line in patched_lines(iter_journals(run_dir), run_id))
        ),
    )


def _record_finish(
    ctx: Context, report: UndoReport, run_id: str, mode: str, fatal: RecoveryError | None
) -> None:
    """The incident's state (undone only when nothing failed) and the "undo finished" record."""
    complete = fatal is None and report.failed == 0
    ctx.incident.update(patch_status="undone" if complete else "undoing")
    ctx.record(
        "undo finished",
        result="ok" if report.ok and complete else "problems",
        patch_id=run_id,
        executor=report.executor,
        undone=report.undone,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        failed=report.failed,
        ambiguous=report.ambiguous,
        ambiguous_keys=[line["key_id"] for line in report.ambiguous_items[:100]] or None,
        kept_as_decided=[line["key_id"] for line in report.resolved_items[:100]] or None,
        write_mode=mode,
        transactions=report.transactions,
        write_capacity_units=report.write_capacity_units,
        seconds=round(report.elapsed_seconds, 3),
        error=str(fatal) if fatal else None,
    )


def _reverse(line: dict[str, object]) -> Change:
    """The change that takes a patched item (as journaled) back to what it was before the patch.

    A ``revert-attributes`` line is reversed on its attributes only: they must still hold what the patch
    wrote (its target_digest), and only they are set back to the backup's values.
    """
    before = from_json_safe(line["before"])
    attrs = line.get("attributes")
    if line.get("action") == "revert-attributes" and attrs and before is not None:
        names = tuple(str(a) for a in attrs)  # type: ignore[union-attr]
        return Change(
            key_id=str(line["key_id"]),
            key=from_json_safe(line["key"]),
            expected_digest=str(line["target_digest"]),
            target=before,
            target_digest=pdigest(before, names),
            attributes=names,
            action="revert-attributes",
            reviewed=None,
            classification="undo",
        )
    return Change(
        key_id=str(line["key_id"]),
        key=from_json_safe(line["key"]),
        expected_digest=str(line["after_digest"]),
        target=before,
        target_digest=item_digest(before),
        attributes=None,
        action="put" if before is not None else "delete",
        reviewed=None,
        classification="undo",
    )
