"""Apply the reviewed, approved plan to the live table (or, in a dry run, list what would be written).

Two passes over the plan: the first counts and checks every entry (nothing is written if the plan is unusable),
the second streams the changes to the engine (``run.run_engine``). A run in progress for the same plan is
resumed: finished keys are skipped, a key backed up without an outcome is settled by reading it again.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import plan as planlib
from ..context import Context
from ..errors import ApprovalError, InputError
from ..incident import utc_now
from ..items import KeySchema, to_json_safe
from ..journal import JsonlFile
from ..ratelimit import RateLimiter, RateStats
from .apply_start import new_report, record_start, resume_lookup
from .checks import (
    key_schema,
    validate_attributes,
    validate_numbers,
    validate_processes,
    validate_read_batch,
    validate_write_mode,
)
from .engine import DEFAULT_WRITE_MODE, READ_BATCH, TRANSACT_BATCH, Engine, EngineTuning
from .plan_reading import check_plan, plan_changes, plan_stamp
from .processes import MergedRun, SegmentOptions, run_processes
from .reports import PatchReport
from .requests import Change, condition_summary
from .run import RunSpec, fill_report, run_engine
from .shards import check_layout, describe_layout, patch_files, run_state, segment_lock, segmented_run_id

#: Skipped-entry journal lines written at once.
SKIPPED_FLUSH = 1000


@dataclass
class PatchRun:
    """Which patch run this call is: a new one, or the one in progress for the same plan."""

    run_id: str
    resuming: bool
    final: set[str]  # keys with a final outcome in this run's journal
    noted: set[str]  # keys already journaled as skipped by this run


def apply_plan(
    ctx: Context,
    *,
    dry_run: bool = True,
    max_workers: int = 8,
    max_write_rate: float | None = None,
    attributes: Sequence[str] | None = None,
    require_distinct_approver: bool = False,
    segments: tuple[int, int] | None = None,
    progress: bool = True,
    read_batch_size: int = READ_BATCH,
    limiter: RateLimiter | None = None,
    write_mode: str = DEFAULT_WRITE_MODE,
    transact_batch_size: int = TRANSACT_BATCH,
    tuning: EngineTuning | None = None,
    max_processes: int = 1,
) -> PatchReport:
    """Apply the approved entries of the reviewed plan to the live table (``dry_run=True``: only list them).

    ``attributes``: None restores whole items; a list reverts only those attributes of updated items
    (items the incident deleted are put back whole, items it created are deleted). ``segments=(i, n)``: only
    the keys of segment i of n (one machine's share), its backup and journal in
    ``patch-shards/segment-i-of-n/``. ``max_processes=P``: P worker processes, each patching one segment
    of P with ``max_write_rate / P``, merged into one report. ``read_batch_size``: keys per consistent
    BatchGetItem (1: GetItem per key instead). ``limiter``: a RateLimiter to share (else one for
    max_write_rate). ``write_mode``: ``"single"`` (one conditional write per item), ``"transact"``
    (TransactWriteItems of ``transact_batch_size`` items, 2 WCU per item on AWS) or ``"auto"`` (transactions
    without max_write_rate, single writes with it; see docs/steps/05_patch.md). ``tuning``: engine knobs for
    benchmarks (defaults are the runbook's).
    """
    if not isinstance(dry_run, bool):
        raise InputError(f"dry_run must be True or False, got {dry_run!r}")
    seg = validate_numbers(max_workers, segments)
    processes = validate_processes(max_processes, seg, limiter)
    limiter = limiter or RateLimiter(max_write_rate)  # validates max_write_rate
    mode = validate_write_mode(write_mode, transact_batch_size, limiter)
    validate_read_batch(read_batch_size)
    incident = ctx.incident
    incident.reload()  # another process (a killed run, a parallel segment) may have moved the state on
    digest, _meta, approvals = check_plan(ctx)
    schema = key_schema(ctx)
    attrs = validate_attributes(attributes, schema)
    _check_approver(approvals, ctx.who, require_distinct_approver)
    total = seg[1] if seg else processes if processes > 1 else None
    run = _choose_run(ctx, digest, attrs, total, seg)
    report = new_report(ctx, run, digest, dry_run, attrs, approvals, schema, mode)
    report.layout = describe_layout(processes, seg)
    stamp = plan_stamp(ctx)
    _count(ctx, report, approvals, attrs, seg, run)
    if dry_run:
        return _dry_run(ctx, report, schema, approvals, attrs, seg, run, stamp)
    record_start(
        ctx, report, run, approvals, mode, max_workers, max_write_rate, transact_batch_size, seg, processes
    )
    options = SegmentOptions(
        attributes=attrs,
        max_workers=max_workers,
        read_batch_size=read_batch_size,
        write_mode=mode,
        transact_batch_size=transact_batch_size,
        progress=progress,
        tuning=tuning,
        total=report.to_do,
    )
    if processes > 1:
        merged, elapsed = run_processes(ctx, run.run_id, processes, options, max_write_rate, digest, stamp)
        return _finish(ctx, report, merged, elapsed, merged.stats)
    engine, elapsed = run_segment(ctx, run, digest, approvals, schema, stamp, seg, options, limiter)
    return _finish(ctx, report, engine, elapsed, limiter.stats)


def run_segment(
    ctx: Context,
    run: PatchRun,
    digest: str,
    approvals: planlib.Approvals,
    schema: KeySchema,
    stamp: tuple[int, int, int],
    seg: tuple[int, int] | None,
    options: SegmentOptions,
    limiter: RateLimiter,
    bar: Any = None,
) -> tuple[Engine, float]:
    """Pass 2 over one segment (None: the whole plan): feed its changes to the engine, in its own files
    (``bar``: what the engine updates instead of a bar of its own, e.g. a worker's shared counter)."""
    journal_path, backup_path = patch_files(ctx.incident.path, seg)
    attrs = options.attributes
    spec = RunSpec(
        kind="patch",
        verb="patched",
        run_id=run.run_id,
        run_fields={"patch_id": run.run_id, "plan_digest": digest},
        journal_path=journal_path,
        backup_path=backup_path,
        # unique per process run: a resumed run never reuses a token of the stopped one except to replay it
        token_scope=f"patch|{run.run_id}|{digest}|{utc_now()}|{os.getpid()}",
        total=options.total,
        limiter=limiter,
        max_workers=options.max_workers,
        read_batch_size=options.read_batch_size,
        write_mode=options.write_mode,
        transact_batch_size=options.transact_batch_size,
        progress=options.progress,
        bar=bar,
        tuning=options.tuning,
        interrupted_counts=("patched", "unchanged", "conflict", "failed", "ambiguous"),
        final=run.final,
        resume_lookup=resume_lookup(ctx, approvals, attrs, run, stamp),
    )
    feed = _ChangeFeed(ctx, approvals, attrs, seg, run, stamp, spec.run_fields)
    with segment_lock(journal_path.parent) if seg else contextlib.nullcontext():
        return run_engine(ctx, schema, spec, feed.changes, after=feed.flush)


def _check_approver(approvals: planlib.Approvals, executor: str, require_distinct_approver: bool) -> None:
    if require_distinct_approver and (approvals.approved_by is None or approvals.approved_by == executor):
        raise ApprovalError(
            f"require_distinct_approver=True: the plan was approved by {approvals.approved_by or 'nobody'} "
            "and "
            f"would be executed by {executor}. Have another person approve it in 04_diff, or run the "
            "patch as "
            "another identity."
        )


def _choose_run(
    ctx: Context,
    digest: str,
    attrs: tuple[str, ...] | None,
    total: int | None,
    seg: tuple[int, int] | None,
) -> PatchRun:
    """Resume the patch run in progress for this plan, else start a new one (``total``: segments, or None)."""
    incident = ctx.incident
    status = incident.get("patch_status")
    run_id = incident.get("patch_id")
    resuming = bool(run_id) and incident.get("patch_plan_digest") == digest and status not in ("undone", None)
    if status == "undoing":
        raise InputError(
            f"an undo of patch {run_id} is unfinished: run undo again until it completes, then "
            "re-run 04_diff before patching again."
        )
    if resuming:
        previous = incident.get("patch_attributes")
        if (tuple(previous) if previous else None) != attrs:
            raise InputError(
                f"patch {run_id} of this plan was started with attributes={previous!r}; resume it with the "
                "same "
                "attributes, or undo it first."
            )
        check_layout(incident.path, run_id, total)
        final, noted = run_state(incident.path, run_id, total, seg)
        return PatchRun(run_id=run_id, resuming=True, final=final, noted=noted)
    if total is not None:
        run_id = segmented_run_id(digest, total, incident.path)
        check_layout(incident.path, run_id, total)
        final, noted = run_state(incident.path, run_id, total, seg)
        return PatchRun(run_id=run_id, resuming=bool(final or noted), final=final, noted=noted)
    run_id = f"{digest[:12]}-{utc_now().replace(':', '').replace('-', '')}"
    return PatchRun(run_id=run_id, resuming=False, final=set(), noted=set())


def _count(
    ctx: Context,
    report: PatchReport,
    approvals: planlib.Approvals,
    attrs: tuple[str, ...] | None,
    seg: tuple[int, int] | None,
    run: PatchRun,
) -> None:
    """Pass 1: count and check every entry (nothing is written if the plan is unusable)."""
    counts: Counter[str] = Counter()
    for _entry, change in plan_changes(ctx, approvals, attrs, seg, counts):
        if change is not None and change.key_id in run.final:
            counts["already_done"] += 1
        elif change is not None:
            counts["to_do"] += 1
            counts[f"would:{change.action}"] += 1
    report.approved, report.not_approved = counts["approved"], counts["not_approved"]
    report.no_change, report.to_do = counts["no_change"], counts["to_do"]
    report.already_done = counts["already_done"]
    report.would_write = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("would:")}
    if counts["approved"] == 0:
        raise ApprovalError(
            f"nothing in plan {report.plan_digest[:12]} is approved ({counts['not_approved']} proposed "
            "changes await a decision): "
            "approve in 04_diff (the buttons, approve=True, or approval_token=<digest>)."
        )


def _dry_run(
    ctx: Context,
    report: PatchReport,
    schema: KeySchema,
    approvals: planlib.Approvals,
    attrs: tuple[str, ...] | None,
    seg: tuple[int, int] | None,
    run: PatchRun,
    stamp: tuple[int, int, int],
) -> PatchReport:
    """List what would be written (report.writes), record the dry run, write nothing."""
    rows = []
    for entry, change in plan_changes(ctx, approvals, attrs, seg, checked=stamp):
        if change is None or change.key_id in run.final:
            continue
        rows.append(
            {
                **schema.key_to_plain(change.key),
                "action": change.action,
                "classification": change.classification,
                "tenant": entry.tenant,
                "condition": condition_summary(change),
            }
        )
    import pandas as pd

    report.writes = pd.DataFrame(
        rows, columns=[*schema.names, "action", "classification", "tenant", "condition"]
    )
    ctx.record(
        "patch dry run",
        plan_digest=report.plan_digest,
        would_write=report.would_write,
        not_approved=report.not_approved,
        attributes=report.attributes,
    )
    return report


class _ChangeFeed:
    """Pass 2: the changes still to make, in plan order; skipped entries journaled once per patch run."""

    def __init__(
        self,
        ctx: Context,
        approvals: planlib.Approvals,
        attrs: tuple[str, ...] | None,
        seg: tuple[int, int] | None,
        run: PatchRun,
        stamp: tuple[int, int, int],
        run_fields: dict[str, Any],
    ) -> None:
        self.ctx, self.approvals, self.attrs, self.seg, self.run, self.stamp = (
            ctx,
            approvals,
            attrs,
            seg,
            run,
            stamp,
        )
        self.run_fields = run_fields
        self.skipped: list[dict[str, Any]] = []

    def changes(self, journal: JsonlFile) -> Iterator[Change]:
        for entry, change in plan_changes(self.ctx, self.approvals, self.attrs, self.seg, checked=self.stamp):
            if change is None:
                if entry.key_id not in self.run.noted:
                    self._skip(entry, journal)
                continue
            if change.key_id in self.run.final:
                continue
            yield change

    def _skip(self, entry: planlib.PlanEntry, journal: JsonlFile) -> None:
        self.skipped.append(
            {
                **self.run_fields,
                "key_id": entry.key_id,
                "key": to_json_safe(entry.key),
                "status": "skipped",
                "reason": "no change needed" if entry.action == "none" else "not approved",
                "time": utc_now(),
            }
        )
        if len(self.skipped) >= SKIPPED_FLUSH:
            self.flush(journal)

    def flush(self, journal: JsonlFile) -> None:
        journal.append_many(self.skipped)
        self.skipped.clear()


def _finish(
    ctx: Context, report: PatchReport, engine: Engine | MergedRun, elapsed: float, rate: RateStats
) -> PatchReport:
    """Fill the report from the engine (or the processes' merged outcomes) and the rate limiting it saw,
    record "patch finished", raise the engine's fatal error if any."""
    fill_report(report, engine, elapsed)
    c = engine.counts
    report.throttled, report.retried_calls, report.raced = c["throttled"], c["retried_calls"], c["raced"]
    report.rate = rate
    fatal = engine.fatal
    if fatal is None and not report.failed and not report.conflicts and not report.ambiguous:
        result = "ok"
    elif fatal is not None:
        result = "stopped"
    else:
        result = "failed" if report.failed else "ambiguous" if report.ambiguous else "conflicts"
    ctx.incident.update(patch_status="finished" if fatal is None and not report.failed else "running")
    ctx.record(
        "patch finished",
        result=result,
        patch_id=report.patch_id,
        executor=report.executor,
        patched=report.patched,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        ambiguous=report.ambiguous,
        ambiguous_keys=[line["key_id"] for line in report.ambiguous_items[:100]] or None,
        failed=report.failed,
        not_approved=report.not_approved,
        already_done=report.already_done,
        raced=report.raced,
        throttled=report.throttled,
        write_capacity_units=report.write_capacity_units,
        write_mode=report.write_mode,
        written_by=report.writes_by_path,
        transactions=report.transactions,
        transactions_cancelled=report.transactions_cancelled,
        seconds=round(report.elapsed_seconds, 3),
        error=str(fatal) if fatal else None,
    )
    if fatal is not None:
        raise fatal
    return report
