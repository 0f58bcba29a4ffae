"""The start of a patch run: its report, its "patch started" record, and what a resumed run replays from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import plan as planlib
from ..context import Context
from ..items import KeySchema
from .plan_reading import plan_changes
from .reports import PatchReport
from .resume import changes_for

if TYPE_CHECKING:
    from .apply import PatchRun


def new_report(
    ctx: Context,
    run: PatchRun,
    digest: str,
    dry_run: bool,
    attrs: tuple[str, ...] | None,
    approvals: planlib.Approvals,
    schema: KeySchema,
    mode: str,
) -> PatchReport:
    """The report of this run, before anything is counted."""
    return PatchReport(
        incident_id=ctx.incident.incident_id,
        table_name=ctx.table_name,
        plan_digest=digest,
        patch_id=run.run_id,
        dry_run=dry_run,
        attributes=list(attrs) if attrs else None,
        executor=ctx.who,
        approved_by=approvals.approved_by,
        schema=schema,
        write_mode=mode,
    )


def record_start(
    ctx: Context,
    report: PatchReport,
    run: PatchRun,
    approvals: planlib.Approvals,
    mode: str,
    max_workers: int,
    max_write_rate: float | None,
    transact_batch_size: int,
    seg: tuple[int, int] | None,
    processes: int = 1,
) -> None:
    """The incident's state says a patch is running; the change log says with what."""
    ctx.incident.update(
        patch_id=run.run_id,
        patch_plan_digest=report.plan_digest,
        patch_status="running",
        patch_attributes=list(report.attributes) if report.attributes else None,
    )
    ctx.record(
        "patch started",
        patch_id=run.run_id,
        plan_digest=report.plan_digest,
        executor=report.executor,
        approved_by=approvals.approved_by,
        approved=report.approved,
        to_do=report.to_do,
        already_done=report.already_done,
        attributes=report.attributes,
        max_workers=max_workers,
        max_write_rate=max_write_rate,
        write_mode=mode,
        transact_batch_size=transact_batch_size if mode != "single" else None,
        segments=list(seg) if seg else None,
        processes=processes if processes > 1 else None,
        resumed=run.resuming,
    )


def resume_lookup(
    ctx: Context,
    approvals: planlib.Approvals,
    attrs: tuple[str, ...] | None,
    run: PatchRun,
    stamp: tuple[int, int, int],
) -> Any:
    """For a resumed run: the changes of the given keys, as the stopped run sent them; None for a new run."""
    if not run.resuming:
        return None
    return lambda keys: changes_for(
        keys,
        # checked=stamp: items as the first pass read them (binary as bytes), so that a replay
        # rebuilds the very request that was sent
        (c for _, c in plan_changes(ctx, approvals, attrs, None, checked=stamp) if c is not None),
    )
