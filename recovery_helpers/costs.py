"""What an expensive step will cost, shown in its notebook before it runs and kept in the incident timeline.

``before_restore``, ``before_diff`` and ``before_patch`` gather the figures :mod:`recovery_helpers.estimate`
needs at no more cost than DescribeTable (DescribeBackup for a backup) and, only when DescribeTable reports no
size, one Scan page of at most ``estimate.SAMPLE_ITEMS`` items; the patch's figures come from the run folder's
plan (and DescribeTable for provisioned write units). Each estimate is recorded in the timeline (action ``estimate``, with every figure), so
the run folder's ``index.html`` lists it, and the returned :class:`Costs` displays as a table (HTML) or as one
line per estimate (text). Reading the figures never fails the step: the step's own checks refuse bad input.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from . import estimate
from .context import Context
from .estimate import Estimate, TableFigures

ACTION = "estimate"
#: Plan entries read to average the size of the items a patch writes (the plan can hold millions).
PATCH_SAMPLE_ENTRIES = 10_000
ROWS = (
    ("items", "items"),
    ("bytes", "bytes"),
    ("read units", "read_units"),
    ("write units", "write_units"),
    ("export GB", "export_gb"),
    ("minutes", "minutes"),
    ("capped by", "capped_by"),
)


@dataclass
class Costs:
    """The estimates shown before one step's expensive action (none: ``remark`` says why)."""

    step: str
    estimates: list[Estimate] = field(default_factory=list)
    remark: str = ""

    def to_frame(self) -> pd.DataFrame:
        """One row per figure, one column per estimate."""
        rows = []
        for label, name in ROWS:
            row: dict[str, Any] = {"figure": label}
            for e in self.estimates:
                row[e.step] = _figure(name, getattr(e, name))
            rows.append(row)
        return pd.DataFrame(rows, columns=["figure", *(e.step for e in self.estimates)])

    def text(self) -> str:
        """One ``Estimate.line()`` per estimate, then its basis; or the remark."""
        lines = [self.remark] if self.remark else []
        for e in self.estimates:
            lines.append(e.line())
            lines.extend(f"  basis: {note}" for note in e.notes)
        return "\n".join(lines) or f"{self.step}: nothing to estimate"

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from .archive.tables import tidy_html

        parts = [f"<p>{html.escape(self.remark)}</p>"] if self.remark else []
        if self.estimates:
            parts.append(
                f"<p style='margin:4px 0'><b>What {html.escape(self.step)} will cost (estimate)</b></p>"
            )
            parts.append(tidy_html(self.to_frame()))
            for e in self.estimates:
                notes = "".join(f"<li>{html.escape(n)}</li>" for n in e.notes)
                parts.append(
                    f"<p style='margin:2px 0'><b>{html.escape(e.step)}</b>: basis</p><ul>{notes}</ul>"
                )
            parts.append(f"<pre>{html.escape(chr(10).join(e.line() for e in self.estimates))}</pre>")
        return "".join(parts) or f"<p><i>{html.escape(self.text())}</i></p>"


def _figure(name: str, value: Any) -> str:
    """A figure as a reader wants it: thousands separated, bytes also in KiB/MiB/GiB, no "0.0" for "a little"."""
    if name == "items":
        return f"{value:,}"
    if name == "bytes":
        return f"{value:,}" + (f" ({_binary(value)})" if value >= 1024 else "")
    if name in ("read_units", "write_units"):
        return f"{value:,.0f}"
    if name == "export_gb":
        return estimate.small(value, 3)
    if name == "minutes":
        return estimate.small(value, 1)
    return str(value)


def _binary(size: float) -> str:
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
    return ""


def _recorded(ctx: Context, costs: Costs) -> Costs:
    for (
        e
    ) in costs.estimates:  # "step" is the runbook's step (restore, diff, patch), "estimate" what it estimates
        figures = {k: v for k, v in e.as_dict().items() if k != "step"}
        ctx.record(ACTION, step=costs.step, estimate=e.step, **figures)
    return costs


def _unreadable(step: str, what: str, exc: Exception) -> Costs:
    return Costs(step, remark=f"no estimate: {what} could not be read ({exc}); the step's own checks follow")


# -- 03 restore ------------------------------------------------------------------------------------------
def backup_figures(dynamodb: Any, backup_arn: str, live_table: str) -> TableFigures:
    """Items and bytes of the table a backup holds (DescribeBackup's SourceTableDetails); when it reports no
    size, its item count times the live table's average item size (:func:`estimate.table_figures`)."""
    described = dynamodb.describe_backup(BackupArn=backup_arn)["BackupDescription"]
    details = described.get("SourceTableDetails") or {}
    indexes = len((described.get("SourceTableFeatureDetails") or {}).get("GlobalSecondaryIndexes") or [])
    items, size = int(details.get("ItemCount") or 0), int(details.get("TableSizeBytes") or 0)
    if size or not items:
        return TableFigures(items, size, "DescribeBackup", indexes=indexes)
    live = estimate.table_figures(dynamodb, live_table)
    return TableFigures(
        items,
        round(items * live.average_item_bytes),
        f"DescribeBackup items x the live table's average item size ({live.source})",
        indexes=indexes,
    )


def before_restore(
    ctx: Context,
    *,
    source: str = "pitr",
    backup_arn: str | None = None,
    restored_table_name: str | None = None,
    restore_indexes: bool = True,
) -> Costs:
    """The restore's items, bytes and minutes (no capacity is spent); nothing when using an existing table."""
    if source == "existing":
        return Costs(
            "restore", remark=f"source='existing': nothing is restored, {restored_table_name} is used"
        )
    if source not in ("pitr", "backup"):
        return Costs("restore", remark=f"no estimate for source={source!r} (the restore cell refuses it)")
    ddb = ctx.aws.dynamodb
    try:
        if source == "backup" and backup_arn:
            figures = backup_figures(ddb, backup_arn, ctx.table_name)
        else:
            figures = estimate.table_figures(ddb, ctx.table_name)
    except (ClientError, BotoCoreError) as exc:
        return _unreadable("restore", "the backup" if source == "backup" else "the live table", exc)
    return _recorded(
        ctx, Costs("restore", [estimate.estimate_restore(figures, restore_indexes=restore_indexes)])
    )


# -- 04 diff ---------------------------------------------------------------------------------------------
def before_diff(
    ctx: Context,
    *,
    impacted_source: str | Sequence[str],
    source_options: dict[str, Any] | None = None,
    export_arns: Sequence[str] | None = None,
) -> Costs:
    """A full_compare scan (read units) or the full_export exports (export GB), from the live table's figures;
    the other sources read only the impacted keys, counted once they have run."""
    from .sources.full_compare import DEFAULT_WORKERS

    sources = [impacted_source] if isinstance(impacted_source, str) else list(impacted_source or [])
    whole = [s for s in sources if s in ("full_compare", "full_export")]
    if not whole:
        return Costs(
            "diff",
            remark=f"impacted_source={', '.join(map(str, sources))}: no scan of the whole table and no export; "
            "only the impacted keys are read (one consistent read each on the live and the restored table)",
        )
    try:
        figures = estimate.table_figures(ctx.aws.dynamodb, ctx.table_name)
    except (ClientError, BotoCoreError) as exc:
        return _unreadable("diff", "the live table", exc)
    options = source_options or {}
    estimates = []
    if "full_compare" in whole:
        workers = int(options.get("max_workers", DEFAULT_WORKERS))
        estimates.append(
            estimate.estimate_full_compare(figures, max_workers=workers, read_capacity=figures.read_capacity)
        )
    if "full_export" in whole:
        estimates.append(estimate.estimate_full_export_diff(figures, reused=min(2, len(export_arns or []))))
    return _recorded(ctx, Costs("diff", estimates))


# -- 05 patch --------------------------------------------------------------------------------------------
def patch_item_bytes(ctx: Context, *, sample: int = PATCH_SAMPLE_ENTRIES) -> float:
    """Average size of what the patch writes over the first ``sample`` approved changes of the plan: the larger
    of the restored and the live image (DynamoDB bills a write by the larger of the item before and after)."""
    from .plan import iter_plan, load_approvals

    approvals = load_approvals(ctx.incident)
    sizes: list[int] = []
    for entry in iter_plan(ctx.incident):
        if entry.action == "none" or not approvals.is_approved(entry):
            continue
        sizes.append(max(estimate.item_size(entry.restored or {}), estimate.item_size(entry.live or {})))
        if len(sizes) >= sample:
            break
    return sum(sizes) / len(sizes) if sizes else 0.0


def transactional(write_mode: str, max_write_rate: float | None) -> bool:
    """Whether the patch writes through TransactWriteItems: "transact", or "auto" with no max_write_rate."""
    return write_mode == "transact" or (write_mode == "auto" and not max_write_rate)


def before_patch(
    ctx: Context,
    preview: Any,
    *,
    max_write_rate: float | None = None,
    write_mode: str = "auto",
    max_processes: int = 1,
    max_workers: int = estimate.PATCH_WORKERS,
    segments: Sequence[int] | None = None,
) -> Costs:
    """Items the patch will write (the dry run's count), their write and read units and the minutes of a run
    of that shape (``max_processes`` x ``max_workers``, this machine's ``segments`` share), capped by
    ``max_write_rate`` or the table's provisioned write units; from the plan and one DescribeTable."""
    items = int(getattr(preview, "to_do", 0) or 0)
    if items == 0:
        return Costs("patch", remark="nothing left to write: no capacity will be spent")
    try:
        table = ctx.aws.dynamodb.describe_table(TableName=ctx.table_name)["Table"]
        write_capacity = estimate.provisioned(table)["write_capacity"]
    except (ClientError, BotoCoreError):
        write_capacity = None  # the patch's own checks say what is wrong with the table
    est = estimate.estimate_patch(
        items,
        patch_item_bytes(ctx),
        max_write_rate=max_write_rate,
        transactional=transactional(write_mode, max_write_rate),
        write_capacity=write_capacity,
        max_processes=_count_or(max_processes, 1),
        max_workers=_count_or(max_workers, estimate.PATCH_WORKERS),
        segments=_segment_or_none(segments),
    )
    est.notes.append(f"write_mode={write_mode!r}")
    return _recorded(ctx, Costs("patch", [est]))


def _segment_or_none(segments: Any) -> tuple[int, int] | None:
    """``(i, n)`` as given (a list from papermill too), else None: the patch's own checks refuse the rest."""
    if isinstance(segments, (list, tuple)) and len(segments) == 2:
        i, n = segments
        if all(isinstance(x, int) and not isinstance(x, bool) for x in (i, n)) and 0 <= i < n:
            return int(i), int(n)
    return None


def _count_or(value: Any, default: int) -> int:
    """A positive whole number as given, else the default: the estimate never fails, the patch refuses bad
    input itself."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else default
