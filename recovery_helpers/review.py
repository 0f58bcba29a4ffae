"""The review of a plan, item by item: decisions, filters, pages and counts, without any widget.

``ReviewState`` is what 04_diff's review panel shows and changes (``review_panel.py`` only draws it). It holds
one light row per proposed change (key, tenant, classification, the attributes that differ, and where the
entry sits in ``plan.jsonl``); full items are read back one entry at a time when a row is drawn or expanded,
so thousands of items cost little memory and a page costs ``page_size`` reads. Every decision is saved to
``approvals.json`` at once (re-read first, so a headless approval in between is not lost) and recorded in the
incident timeline. Decisions follow the plan's rule: an item's own decision wins over its classification's.
A tenant's group action records a decision on each of that tenant's items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .diff import diff_rows, key_text
from .errors import ApprovalError, InputError
from .incident import Incident
from .items import KeySchema, items_equal
from .plan import (
    ACTION_OF,
    PLAN_FILE,
    Approvals,
    PlanEntry,
    load_approvals,
    save_approvals,
)

APPROVED, REJECTED, UNDECIDED = "approved", "rejected", "undecided"
FILTERS = ("classification", "tenant", "attribute", "decision")
#: How much of one value a change line shows before it is cut (the expanded diff shows all of it).
VALUE_WIDTH = 40
LINE_WIDTH = 200


def word(decision: bool | None) -> str:
    """``approved`` / ``rejected`` / ``undecided``."""
    return UNDECIDED if decision is None else (APPROVED if decision else REJECTED)


@dataclass(frozen=True)
class ReviewRow:
    """One proposed change as the review lists it."""

    key_id: str
    key: str  # key_text: ``pk=tenant-1, sk=order#7``
    tenant: str | None
    classification: str
    action: str
    attributes: tuple[str, ...]  # top-level attributes that differ (all of them for deleted/created items)
    offset: int  # byte offset of the entry's line in plan.jsonl


@dataclass(frozen=True)
class Counts:
    """Approved / rejected / undecided among some rows."""

    approved: int = 0
    rejected: int = 0
    undecided: int = 0

    @property
    def total(self) -> int:
        return self.approved + self.rejected + self.undecided

    @property
    def state(self) -> str:
        """``approved``/``rejected``/``undecided`` when all rows agree, else ``mixed`` (``empty``: no rows)."""
        if not self.total:
            return "empty"
        for name in (APPROVED, REJECTED, UNDECIDED):
            if getattr(self, name) == self.total:
                return name
        return "mixed"

    def text(self) -> str:
        return f"{self.approved} approved · {self.rejected} rejected · {self.undecided} undecided"


def changed_attributes(entry: PlanEntry) -> tuple[str, ...]:
    """Top-level attribute names whose values differ between the restored and the live item."""
    restored, live = entry.restored or {}, entry.live or {}
    names = sorted(set(restored) | set(live))
    return tuple(
        n
        for n in names
        if not items_equal({n: restored[n]} if n in restored else {}, {n: live[n]} if n in live else {})
    )


def _cut(text: str, width: int = VALUE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class ReviewState:
    """Decisions, filters, paging and counts of the review of one plan (digest); no widgets."""

    def __init__(
        self,
        incident: Incident,
        *,
        digest: str,
        key_schema: KeySchema,
        mask: Iterable[str] = (),
        page_size: int = 25,
        who: str = "unknown",
        record: Callable[..., Any] | None = None,
    ) -> None:
        self.incident = incident
        self.digest = digest
        self.schema = key_schema
        self.mask = tuple(mask)
        self.page_size = max(1, int(page_size))
        self.who = who
        self._record = record
        self.rows: list[ReviewRow] = list(self._read_rows())
        self._by_id = {r.key_id: r for r in self.rows}
        self.filters: dict[str, str | None] = dict.fromkeys(FILTERS)
        self.page = 0
        self._visible: list[ReviewRow] | None = None
        self._lines: dict[str, str] = {}
        self.approvals = load_approvals(incident)

    # -- the plan ----------------------------------------------------------------------------------------
    def _read_rows(self) -> Iterable[ReviewRow]:
        path = self.incident.path / PLAN_FILE
        if not path.exists():
            raise InputError(
                f"incident {self.incident.incident_id!r} has no plan yet ({path.resolve()}): "
                "run 04_diff's first cells."
            )
        with open(path, "rb") as f:
            offset = 0
            for raw in f:
                start, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                entry = PlanEntry.from_json(json.loads(raw))
                if ACTION_OF.get(entry.classification) == "none":
                    continue
                attributes = (
                    changed_attributes(entry)
                    if entry.classification == "changed"
                    else tuple(sorted(entry.restored or entry.live or {}))
                )
                yield ReviewRow(
                    entry.key_id,
                    key_text(self.schema, entry.key, self.mask),
                    entry.tenant,
                    entry.classification,
                    entry.action,
                    attributes,
                    start,
                )

    def entry(self, row: ReviewRow) -> PlanEntry:
        """The full plan entry of a row (one read at its offset)."""
        with open(self.incident.path / PLAN_FILE, "rb") as f:
            f.seek(row.offset)
            return PlanEntry.from_json(json.loads(f.readline()))

    def diff(self, row: ReviewRow) -> list[dict[str, str]]:
        """The row's full attribute diff: path, change, old (restored, written back), new (live now)."""
        return diff_rows(self.entry(row), self.schema, self.mask)

    def change_line(self, row: ReviewRow) -> str:
        """The row's changes in one line: ``status: paid -> refunded; total: 12.5 -> 1250`` (values cut)."""
        if row.key_id not in self._lines:
            if row.classification == "deleted":
                line = (
                    f"deleted by the incident: the patch puts the restored item back ({len(row.attributes)} "
                    "attributes)"
                )
            elif row.classification == "created":
                line = f"created by the incident: the patch deletes it ({len(row.attributes)} attributes)"
            else:
                parts = [f"{d['path']}: {_cut(d['old'])} -> {_cut(d['new'])}" for d in self.diff(row)]
                line = "; ".join(parts)
                if len(line) > LINE_WIDTH:
                    shown = []
                    for part in parts:
                        if len("; ".join([*shown, part])) > LINE_WIDTH - 12:
                            break
                        shown.append(part)
                    line = "; ".join(shown) + f"; … (+{len(parts) - len(shown)} more)"
            self._lines[row.key_id] = line
        return self._lines[row.key_id]

    # -- decisions ---------------------------------------------------------------------------------------
    def decision(self, row: ReviewRow) -> bool | None:
        """True approved, False rejected, None undecided (the plan's rule: item, then class, then default)."""
        a = self.approvals
        return a.decisions.get(row.key_id, a.classes.get(row.classification, a.default))

    def counts(self, rows: Iterable[ReviewRow] | None = None) -> Counts:
        """Approved / rejected / undecided among ``rows`` (default: every proposed change)."""
        tally = {True: 0, False: 0, None: 0}
        for row in self.rows if rows is None else rows:
            tally[self.decision(row)] += 1
        return Counts(tally[True], tally[False], tally[None])

    def group(self, kind: str, value: str) -> list[ReviewRow]:
        """The rows of one classification (``kind="classification"``) or one tenant (``kind="tenant"``)."""
        if kind not in ("classification", "tenant"):
            raise ValueError(f"groups are per classification or tenant, not {kind!r}")
        return [r for r in self.rows if getattr(r, kind) == value]

    def group_counts(self, kind: str, value: str) -> Counts:
        return self.counts(self.group(kind, value))

    def decide_item(self, key_id: str, approved: bool) -> Approvals:
        """Approve or reject one item; saved at once."""
        row = self._by_id[key_id]
        verb = "approve" if approved else "reject"

        def change(a: Approvals) -> None:
            a.decisions[key_id] = approved

        return self._save(
            change, f"{verb} item", f"{verb} {row.classification} item {row.key}", key_id=key_id
        )

    def decide_classification(self, classification: str, approved: bool) -> Approvals:
        """Approve or reject every item of a classification (its items' own decisions are cleared)."""
        ids = {r.key_id for r in self.group("classification", classification)}
        verb = "approve" if approved else "reject"

        def change(a: Approvals) -> None:
            a.classes[classification] = approved
            for key_id in ids:
                a.decisions.pop(key_id, None)

        return self._save(
            change, f"{verb} class", f"{verb} all {classification} items", classification=classification
        )

    def decide_tenant(self, tenant: str, approved: bool) -> Approvals:
        """Approve or reject every item of a tenant (one decision per item)."""
        ids = [r.key_id for r in self.group("tenant", tenant)]
        verb = "approve" if approved else "reject"

        def change(a: Approvals) -> None:
            for key_id in ids:
                a.decisions[key_id] = approved

        return self._save(
            change,
            f"{verb} tenant",
            f"{verb} all {len(ids)} items of tenant {tenant}",
            tenant=tenant,
            items=len(ids),
        )

    def _save(self, change: Callable[[Approvals], None], action: str, what: str, **details: Any) -> Approvals:
        approvals = load_approvals(self.incident)  # fresh: another approval may have landed meanwhile
        if approvals.digest != self.digest:
            raise ApprovalError(
                f"this review is of plan {self.digest}, but the current plan is {approvals.digest}: "
                "it was rebuilt since. Review the new plan (run 04_diff's cells again) and decide there."
            )
        change(approvals)
        approvals.note(self.who, "widgets", what)
        save_approvals(self.incident, approvals)
        self.approvals = approvals
        if self._record is not None:
            self._record(action, digest=self.digest, method="widgets", approver=self.who, **details)
        return approvals

    # -- filters and pages -------------------------------------------------------------------------------
    def options(self, name: str) -> list[str]:
        """The values a filter can take (for its drop-down)."""
        if name == "decision":
            return [APPROVED, REJECTED, UNDECIDED]
        if name == "attribute":
            return sorted({a for r in self.rows for a in r.attributes})
        if name in ("classification", "tenant"):
            return sorted({getattr(r, name) for r in self.rows if getattr(r, name) is not None})
        raise ValueError(f"unknown filter {name!r}: {', '.join(FILTERS)}")

    def set_filter(self, name: str, value: str | None) -> None:
        """Show only the rows matching ``value`` (None: all); back to the first page."""
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}: {', '.join(FILTERS)}")
        self.filters[name] = value or None
        self._visible = None
        self.page = 0

    def _matches(self, row: ReviewRow) -> bool:
        f = self.filters
        return (
            (f["classification"] is None or row.classification == f["classification"])
            and (f["tenant"] is None or row.tenant == f["tenant"])
            and (f["attribute"] is None or f["attribute"] in row.attributes)
            and (f["decision"] is None or word(self.decision(row)) == f["decision"])
        )

    def visible(self) -> list[ReviewRow]:
        """The rows the filters let through, in plan order (the decision filter is applied afresh)."""
        if self.filters["decision"] is not None:
            return [r for r in self.rows if self._matches(r)]
        if self._visible is None:
            self._visible = [r for r in self.rows if self._matches(r)]
        return self._visible

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.visible()) // self.page_size))

    def set_page(self, page: int) -> None:
        self.page = min(max(0, page), self.pages - 1)

    def page_rows(self) -> list[ReviewRow]:
        """The rows of the current page (never more than ``page_size``)."""
        self.set_page(self.page)
        start = self.page * self.page_size
        return self.visible()[start : start + self.page_size]

    def page_text(self) -> str:
        shown = len(self.visible())
        if not shown:
            return f"no item matches the filters (of {len(self.rows)})"
        first = self.page * self.page_size + 1
        last = min(shown, first + self.page_size - 1)
        of = f" ({shown} match the filters, of {len(self.rows)})" if shown != len(self.rows) else ""
        return f"items {first}–{last} of {shown}{of} · page {self.page + 1}/{self.pages}"
