"""The reports of step 5 (patch, verify, undo): counts, summaries and DataFrames of the items to look at.

Data only: the engine fills them, the notebook prints ``summary()`` and displays ``to_frame()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..items import Item, KeySchema, canonical_json, canonical_value, from_json_safe
from ..ratelimit import RateStats

if TYPE_CHECKING:  # pandas is imported where a frame is made: a patch worker never needs it
    import pandas as pd

#: Conflicts/failures kept in a report (all of them are in the journal).
REPORT_LIMIT = 1000
#: The summary line for keys a run cannot tell whether it wrote (see docs/steps/05_patch-safety.md).
AMBIGUOUS_ADVICE = (
    "  AMBIGUOUS: {n} keys were neither rewritten nor skipped: the run stopped with their write in flight "
    "and cannot tell whether the item now is its own write or another writer's. to_frame() shows each with "
    "the item before the write (before) and the item now (found); decide per key "
    "(docs/steps/05_patch-safety.md): patch.resolve_ambiguous(ctx, key_id, 'keep' or 'write', reason=...) (or "
    "the notebook's resolve_ambiguous parameter), or re-run 04_diff to review it again"
)


def _key_columns(schema: KeySchema | None, key: Any) -> dict[str, Any]:
    if schema is None:
        return {"key": json.dumps(key)}
    return schema.key_to_plain(from_json_safe(key))


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(canonical_value(value), sort_keys=True) if value is not None else "(absent)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def difference(before: Item | None, after: Item | None) -> str:
    """What differs between two versions of an item, in one line: ``status: {"S":"a"} → {"S":"b"}; ...``."""
    if before is None and after is None:
        return ""
    if before is None:
        return "the item exists now"
    if after is None:
        return "the item is gone now"
    parts = [
        f"{name}: {_short(before.get(name))} → {_short(after.get(name))}"
        for name in sorted(set(before) | set(after))
        if canonical_json({"v": before[name]} if name in before else None)
        != canonical_json({"v": after[name]} if name in after else None)
    ]
    return "; ".join(parts)


def _paths(report: PatchReport | UndoReport) -> str:
    """How the writes went out: write_mode, items per path, transactions and cancellations."""
    by_path = report.writes_by_path
    text = (
        f"write mode {report.write_mode}: {by_path.get('transact', 0)} items in {report.transactions} "
        f"transactions, {by_path.get('single', 0)} single writes"
    )
    if report.transactions_cancelled:
        text += (
            f"; {report.transactions_cancelled} transactions cancelled (their items were settled one by one)"
        )
    return text


def _items_frame(schema: KeySchema | None, lines: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """One row per journal line: key columns, a one-line ``difference`` (reviewed → found), ``columns``."""
    from ..archive.values import item_text  # the archive (and pandas) only where a frame is made

    rows = []
    for line in lines:
        row = _key_columns(schema, line["key"])
        if line.get("status") == "ambiguous" and "found" in line:
            # the item before the write (backup) -> the item found: what the write, or another writer, did
            row["difference"] = difference(from_json_safe(line.get("before")), from_json_safe(line["found"]))
        elif "found" in line and "reviewed" in line:
            row["difference"] = difference(
                from_json_safe(line.get("reviewed")), from_json_safe(line["found"])
            )
        for col in columns:
            value = line.get(col)
            if col in ("reviewed", "found") and isinstance(value, dict):
                value = item_text(from_json_safe(value))  # plain values, as DynamoDB stores them
            row[col] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        rows.append(row)
    names = list(schema.names) if schema else ["key"]
    import pandas as pd

    return pd.DataFrame(rows, columns=[*names, "difference", *columns])


@dataclass
class PatchReport:
    """What apply_plan did (or, in a dry run, would do). ``print(report)`` gives the summary."""

    incident_id: str
    table_name: str
    plan_digest: str
    patch_id: str | None
    dry_run: bool
    attributes: list[str] | None
    executor: str
    approved_by: str | None
    approved: int = 0
    not_approved: int = 0
    no_change: int = 0
    already_done: int = 0
    to_do: int = 0
    patched: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    ambiguous: int = 0
    throttled: int = 0
    retried_calls: int = 0
    raced: int = 0
    write_capacity_units: float = 0.0
    elapsed_seconds: float = 0.0
    write_mode: str = "auto"
    writes_by_path: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    transactions_cancelled: int = 0
    would_write: dict[str, int] = field(default_factory=dict)
    writes: pd.DataFrame | None = None
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    ambiguous_items: list[dict[str, Any]] = field(default_factory=list)
    rate: RateStats | None = None
    schema: KeySchema | None = field(default=None, repr=False)
    #: How the run was split ("" for one process over the whole plan): shown in the summary's first line.
    layout: str = ""

    @property
    def ok(self) -> bool:
        """True when every approved change is applied (or already was) and nothing failed or conflicted."""
        return (
            not self.dry_run
            and self.failed == 0
            and self.conflicts == 0
            and self.ambiguous == 0
            and self.stopped_early == 0
        )

    @property
    def stopped_early(self) -> int:
        """Approved changes left for another run (a fatal error stopped this one)."""
        if self.dry_run:
            return 0
        done = self.patched + self.unchanged + self.conflicts + self.failed + self.ambiguous
        return max(0, self.to_do - done)

    def summary(self) -> str:
        scope = "whole items" if not self.attributes else f"attributes {', '.join(self.attributes)}"
        head = (
            f"patch of {self.table_name} (incident {self.incident_id}, plan {self.plan_digest[:12]}, "
            f"{scope}{', ' + self.layout if self.layout else ''}) "
            f"as {self.executor}; approved by {self.approved_by or 'nobody'}"
        )
        lines = [
            head,
            (
                f"  approved changes: {self.approved}; not approved: {self.not_approved} (never written); "
                f"no change needed: {self.no_change}"
            ),
        ]
        if self.dry_run:
            parts = ", ".join(f"{n} {a}" for a, n in sorted(self.would_write.items())) or "nothing"
            lines.append(
                f"  DRY RUN, nothing written. Would write: {parts}; already done by an earlier run: "
                f"{self.already_done}"
            )
            return "\n".join(lines)
        lines.append(
            f"  patched: {self.patched}; already as intended: {self.unchanged}; conflicts (not "
            f"overwritten): {self.conflicts}; failed: {self.failed}; done by an earlier run: "
            f"{self.already_done}"
        )
        if self.stopped_early:
            lines.append(
                f"  STOPPED EARLY: {self.stopped_early} approved changes not attempted; run again to resume"
            )
        if self.raced:
            lines.append(
                f"  {self.raced} items gained an attribute between read and write (kept in backup.jsonl)"
            )
        rate = (
            f"{self.to_do / self.elapsed_seconds:.0f} items/s" if self.elapsed_seconds and self.to_do else "-"
        )
        lines.append(
            f"  {self.elapsed_seconds:.1f} s ({rate}); write capacity units: "
            f"{self.write_capacity_units:g}; throttled: {self.throttled}; calls retried by the SDK: "
            f"{self.retried_calls}"
        )
        lines.append(f"  {_paths(self)}")
        if self.conflicts:
            lines.append(
                "  conflicts: these items changed after the review; look at them (to_frame()), then "
                "re-run 04_diff if they still need recovering"
            )
        if self.ambiguous:
            lines.append(AMBIGUOUS_ADVICE.format(n=self.ambiguous))
        if self.failed:
            lines.append("  failures: run the patch again to retry them (finished items are skipped)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        """Dry run: the writes it would make. Otherwise: the items that need a look (conflicts, failures)."""
        if self.dry_run:
            import pandas as pd

            return self.writes if self.writes is not None else pd.DataFrame()
        return _items_frame(
            self.schema,
            [*self.ambiguous_items, *self.conflict_items, *self.failures],
            ["status", "reason", "error", "reviewed", "before", "found"],
        )


@dataclass
class VerifyReport:
    """Every patched item read again and compared with its target."""

    incident_id: str
    table_name: str
    patch_id: str | None
    checked: int = 0
    matching: int = 0
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    conflicts: int = 0
    failed: int = 0
    ambiguous: int = 0
    ambiguous_items: list[dict[str, Any]] = field(default_factory=list)
    #: ambiguous keys the engineer decided to keep as found (patch.resolve_ambiguous)
    resolved: int = 0
    schema: KeySchema | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return (
            not self.mismatched
            and self.pending == 0
            and self.failed == 0
            and self.conflicts == 0
            and self.ambiguous == 0
        )

    def summary(self) -> str:
        lines = [
            (
                f"verification of {self.table_name} (incident {self.incident_id}, patch {self.patch_id}): "
                f"{self.matching}/{self.checked} patched items equal their target"
            )
        ]
        if self.mismatched:
            lines.append(
                f"  {len(self.mismatched)} patched items differ from their target now (changed since "
                "the patch, or undone)"
            )
        if self.conflicts:
            lines.append(f"  {self.conflicts} conflicts were left as found (changed after the review)")
        if self.failed:
            lines.append(f"  {self.failed} items failed: run the patch again")
        if self.pending:
            lines.append(f"  {self.pending} approved changes were not attempted yet: run the patch again")
        if self.ambiguous:
            lines.append(AMBIGUOUS_ADVICE.format(n=self.ambiguous))
        if self.resolved:
            lines.append(f"  {self.resolved} ambiguous keys were kept as found by the engineer's decision")
        if self.ok:
            lines.append("  OK")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        return _items_frame(
            self.schema,
            [*self.mismatched, *self.ambiguous_items, *self.conflict_items, *self.failures],
            ["status", "reason", "error", "before", "found"],
        )

    def check(self) -> VerifyReport:
        """Raise VerificationError if a patched item differs from its target or approved work is left."""
        from ..errors import VerificationError

        if self.mismatched or self.pending or self.failed or self.ambiguous:
            raise VerificationError(self.summary())
        return self


@dataclass
class UndoReport:
    """What undo put back. ``print(report)`` gives the summary; ``ok`` is False if anything was left."""

    incident_id: str
    table_name: str
    patch_id: str | None
    executor: str
    to_undo: int = 0
    already_done: int = 0
    undone: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    ambiguous: int = 0
    elapsed_seconds: float = 0.0
    write_capacity_units: float = 0.0
    write_mode: str = "auto"
    writes_by_path: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    transactions_cancelled: int = 0
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    ambiguous_items: list[dict[str, Any]] = field(default_factory=list)
    #: ambiguous keys the engineer kept as found (patch.resolve_ambiguous): not undone, not a problem
    resolved_items: list[dict[str, Any]] = field(default_factory=list)
    schema: KeySchema | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.conflicts == 0 and self.failed == 0 and self.ambiguous == 0

    def summary(self) -> str:
        lines = [
            (
                f"undo of patch {self.patch_id} on {self.table_name} (incident {self.incident_id}) as "
                f"{self.executor}"
            ),
            (
                f"  put back: {self.undone}; already as before the patch: {self.unchanged}; conflicts (changed "
                f"since the patch, not overwritten): {self.conflicts}; failed: {self.failed}; done by an "
                f"earlier run: {self.already_done}"
            ),
            f"  {_paths(self)}; write capacity units: {self.write_capacity_units:g}",
        ]
        if self.conflicts:
            lines.append(
                "  conflicts: these items were written after the patch; their backups stay in "
                "backup.jsonl for a decision by hand"
            )
        if self.ambiguous:
            lines.append(
                f"  AMBIGUOUS: {self.ambiguous} keys were left as found: the patch (or this undo) cannot tell "
                "whether it wrote them. Each row of to_frame() holds the item before the write (before) and "
                "the item now (found); put the backup back by hand only if the change was the runbook's "
                "(docs/steps/05_patch-safety.md)"
            )
        if self.resolved_items:
            lines.append(
                f"  {len(self.resolved_items)} ambiguous keys the engineer kept as found were left alone"
            )
        if self.failed:
            lines.append("  failures: run undo again to retry them")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        return _items_frame(
            self.schema,
            [*self.ambiguous_items, *self.resolved_items, *self.conflict_items, *self.failures],
            ["status", "reason", "error", "before", "found"],
        )
