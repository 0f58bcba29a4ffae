"""Review tables (pandas Styler) and the approval buttons (ipywidgets) for 04_diff.

The engine (``recovery_helpers.diff``) returns data; this module only shows it. The ``views`` package is the
one place importing ipywidgets, so the engine also runs headless (papermill, command line) without widgets.
"""

from __future__ import annotations

import html
import itertools
import os
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from ..context import Context
from ..diff import DiffResult, key_text
from ..errors import ApprovalError
from ..items import KeySchema
from ..plan import ACTION_OF, CLASSIFICATIONS, Approvals, PlanEntry, iter_plan, load_approvals, save_approvals

OLD_COLOUR = "background-color: #e6f4ea"  # restored: what the patch writes back
NEW_COLOUR = "background-color: #fce8e6"  # live now: what the patch replaces
REVIEW_CLASSES = [c for c in CLASSIFICATIONS if ACTION_OF[c] != "none"]


def _styled(df: pd.DataFrame, caption: str) -> Styler:
    return df.style.hide(axis="index").format(escape="html", na_rep="").set_caption(html.escape(caption))


def summary_table(result: DiffResult) -> Styler:
    """Counts per classification and what the patch will do with each."""
    return _styled(
        result.summary,
        f"Plan {result.digest[:12]}…: {result.total} impacted items, {result.proposed} proposed changes",
    )


def sources_table(result: DiffResult) -> Styler:
    """Per source: keys found, keys only this source found, lines read / malformed / skipped."""
    return _styled(result.sources, "Where the impacted keys came from")


def items_table(result: DiffResult) -> Styler:
    """The proposed changes (first ``result.shown``), one row per item."""
    return _styled(result.items.drop(columns=["key_id"]), _shown_caption(result, "Proposed changes"))


def diff_table(result: DiffResult | pd.DataFrame, key: str | None = None) -> Styler:
    """Attribute differences: ``old`` is the restored value the patch writes back, ``new`` the live one."""
    rows = result.diffs if isinstance(result, DiffResult) else result
    if key is not None:
        rows = rows[rows["key"] == key]
    caption = (
        _shown_caption(result, "Differences") if isinstance(result, DiffResult) else "Differences"
    ) + " (old = restored, written back by the patch; new = live now)"
    return (
        _styled(rows, caption)
        .map(lambda _: OLD_COLOUR, subset=["old"])
        .map(lambda _: NEW_COLOUR, subset=["new"])
    )


def _shown_caption(result: DiffResult, what: str) -> str:
    if result.truncated:
        return f"{what}: the first {result.shown} of {result.proposed} (the full plan is {result.plan_path})"
    return what


def show_plan(result: DiffResult) -> None:
    """Display the summary, the sources report, the proposed items and their differences."""
    from IPython.display import Markdown, display

    display(summary_table(result))
    if len(result.sources):
        display(sources_table(result))
    if result.proposed == 0:
        display(Markdown("**Nothing to patch**: every impacted item equals its restored version."))
        return
    display(items_table(result))
    display(diff_table(result))
    if result.truncated:
        display(
            Markdown(
                f"Showing the first {result.shown} of {result.proposed} proposed changes; the rest are "
                f"in `{result.plan_path}` (approve them by class or with the digest)."
            )
        )


def approvals_text(ctx: Context, approvals: Approvals | None = None) -> str:
    """One line: how many proposed changes are approved, per classification."""
    from ..plan import approval_counts

    approvals = approvals or load_approvals(ctx.incident)
    counts = approval_counts(ctx.incident, approvals)
    total = sum(c["proposed"] for c in counts.values())
    ok = sum(c["approved"] for c in counts.values())
    parts = ", ".join(f"{c} {v['approved']}/{v['proposed']}" for c, v in counts.items() if v["proposed"])
    return (
        f"approved {ok} of {total} proposed changes"
        + (f" ({parts})" if parts else "")
        + f" for plan {approvals.digest}"
    )


class ApprovalPanel:
    """Approve/Reject per item (a page at a time) and per classification; every click saves approvals.json.

    ``toggles`` (key_id -> ToggleButtons of the current page), ``class_buttons`` ((class, "approve"|"reject")
    -> Button), ``summary``, ``next_button`` and ``previous_button`` are exposed for tests and scripting.
    """

    def __init__(self, ctx: Context, result: DiffResult, page_size: int = 25) -> None:
        import ipywidgets as w

        self._w = w
        self.ctx = ctx
        self.result = result
        self.page_size = max(1, page_size)
        self.page = 0
        self.schema = KeySchema(**result.meta["key_schema"])
        self.counts = {c: result.counts.get(c, 0) for c in REVIEW_CLASSES}
        self.proposed = sum(self.counts.values())
        self.pages = max(1, -(-self.proposed // self.page_size))
        self._updating = False
        approvals = load_approvals(ctx.incident)
        # classification of each key with a recorded decision (counts approvals without re-reading the plan)
        self._class_of: dict[str, str] = {}
        if approvals.decisions:
            self._class_of = {
                e.key_id: e.classification for e in iter_plan(ctx.incident) if e.key_id in approvals.decisions
            }
        self.summary = w.HTML()
        self.class_buttons: dict[tuple[str, str], Any] = {}
        group_rows = []
        for cls in REVIEW_CLASSES:
            if not self.counts[cls]:
                continue
            yes = w.Button(
                description=f"approve all {cls}", button_style="success", layout=w.Layout(width="auto")
            )
            no = w.Button(
                description=f"reject all {cls}", button_style="danger", layout=w.Layout(width="auto")
            )
            yes.on_click(lambda _b, c=cls: self.decide_class(c, True))
            no.on_click(lambda _b, c=cls: self.decide_class(c, False))
            self.class_buttons[(cls, "approve")] = yes
            self.class_buttons[(cls, "reject")] = no
            group_rows.append(
                w.HBox([w.Label(f"{cls} ({self.counts[cls]})", layout=w.Layout(width="160px")), yes, no])
            )
        self.previous_button = w.Button(description="◀ previous", layout=w.Layout(width="auto"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="auto"))
        self.previous_button.on_click(lambda _b: self.show_page(self.page - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.page + 1))
        self.page_label = w.Label()
        self.items_box = w.VBox()
        self.toggles: dict[str, Any] = {}
        self.widget = w.VBox(
            [
                w.HTML(
                    f"<b>Approve the plan {result.digest[:12]}…</b> (each click is saved to approvals.json)"
                ),
                *group_rows,
                self.items_box,
                w.HBox([self.previous_button, self.page_label, self.next_button]),
                self.summary,
            ]
        )
        self.show_page(0)
        self._refresh_summary(approvals)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- pages ---------------------------------------------------------------------------------------------
    def _page_entries(self, page: int) -> list[PlanEntry]:
        reviewable = (e for e in iter_plan(self.ctx.incident) if e.action != "none")
        return list(itertools.islice(reviewable, page * self.page_size, (page + 1) * self.page_size))

    def show_page(self, page: int) -> None:
        """Build the toggles of one page (never more than ``page_size`` item widgets at once)."""
        w = self._w
        self.page = min(max(0, page), self.pages - 1)
        approvals = load_approvals(self.ctx.incident)
        rows, self.toggles = [], {}
        mask = self.result.mask_attributes
        for entry in self._page_entries(self.page):
            self._class_of.setdefault(entry.key_id, entry.classification)
            toggle = w.ToggleButtons(
                options=["Approve", "Reject"],
                value=self._state(approvals, entry),
                style={"button_width": "80px"},
            )
            toggle.observe(lambda change, e=entry: self._on_toggle(e, change), names="value")
            self.toggles[entry.key_id] = toggle
            label = w.HTML(
                f"<code>{html.escape(key_text(self.schema, entry.key, mask))}</code> "
                f"<i>{entry.classification}</i> → {entry.action}",
                layout=w.Layout(width="60%"),
            )
            rows.append(w.HBox([label, toggle]))
        self.items_box.children = rows
        first = self.page * self.page_size + 1 if self.proposed else 0
        last = min(self.proposed, (self.page + 1) * self.page_size)
        self.page_label.value = f"items {first}–{last} of {self.proposed} (page {self.page + 1}/{self.pages})"
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1

    @staticmethod
    def _state(approvals: Approvals, entry: PlanEntry) -> str | None:
        value = approvals.decisions.get(
            entry.key_id, approvals.classes.get(entry.classification, approvals.default)
        )
        return None if value is None else ("Approve" if value else "Reject")

    # -- decisions -----------------------------------------------------------------------------------------
    def _on_toggle(self, entry: PlanEntry, change: dict[str, Any]) -> None:
        if self._updating or change["new"] is None:
            return
        self.decide_item(entry, change["new"] == "Approve")

    def decide_item(self, entry: PlanEntry, approved: bool) -> Approvals:
        """Approve or reject one item; saved at once and recorded in the timeline."""
        approvals = load_approvals(self.ctx.incident)
        approvals.decisions[entry.key_id] = approved
        self._class_of[entry.key_id] = entry.classification
        verb = "approve" if approved else "reject"
        key = key_text(self.schema, entry.key, self.result.mask_attributes)
        return self._save(
            approvals, f"{verb} item", f"{verb} {entry.classification} item {key}", key_id=entry.key_id
        )

    def decide_class(self, classification: str, approved: bool) -> Approvals:
        """Approve or reject every item of a classification (overriding earlier per-item decisions on it)."""
        approvals = load_approvals(self.ctx.incident)
        approvals.classes[classification] = approved
        for key_id in [k for k, c in self._class_of.items() if c == classification]:
            approvals.decisions.pop(key_id, None)
        verb = "approve" if approved else "reject"
        return self._save(
            approvals, f"{verb} class", f"{verb} all {classification} items", classification=classification
        )

    def _save(self, approvals: Approvals, action: str, what: str, **details: Any) -> Approvals:
        if approvals.digest != self.result.digest:
            self.summary.value = (
                f"<b style='color:#b00'>Not saved: these buttons are for plan {self.result.digest[:12]}…, "
                f"but the plan was rebuilt ({str(approvals.digest)[:12]}…). Use the buttons under the new "
                "tables.</b>"
            )
            raise ApprovalError(
                f"this approval panel is for plan {self.result.digest}, but the current plan is "
                f"{approvals.digest}: review the new plan and use its buttons."
            )
        who = self.ctx.who
        approvals.note(who, "widgets", what)
        save_approvals(self.ctx.incident, approvals)
        self.ctx.record(action, digest=approvals.digest, method="widgets", approver=who, **details)
        self._sync_toggles(approvals)
        self._refresh_summary(approvals)
        return approvals

    def _sync_toggles(self, approvals: Approvals) -> None:
        self._updating = True
        try:
            for key_id, toggle in self.toggles.items():
                cls = self._class_of[key_id]
                value = approvals.decisions.get(key_id, approvals.classes.get(cls, approvals.default))
                toggle.value = None if value is None else ("Approve" if value else "Reject")
        finally:
            self._updating = False

    def approved_counts(self, approvals: Approvals) -> dict[str, int]:
        """Approved items per classification, from class decisions plus per-item exceptions."""
        out = {}
        for cls, n in self.counts.items():
            base = approvals.classes.get(cls, approvals.default) is True
            count = n if base else 0
            for key_id, value in approvals.decisions.items():
                if self._class_of.get(key_id) == cls and value is not base:
                    count += 1 if value is True else -1
            out[cls] = count
        return out

    def _refresh_summary(self, approvals: Approvals) -> None:
        counts = self.approved_counts(approvals)
        parts = ", ".join(f"{c} {counts[c]}/{n}" for c, n in self.counts.items() if n)
        by = (
            f" — last change by {html.escape(approvals.approved_by)} at {approvals.approved_at}"
            if approvals.approved_by
            else ""
        )
        self.summary.value = (
            f"<b>approved {sum(counts.values())} of {self.proposed} proposed changes</b> ({parts}){by}"
        )


def interactive() -> bool:
    """Is someone there to click? False outside a Jupyter kernel, or when ``RECOVERY_HEADLESS=1`` is set
    (``recovery run`` and other headless runners set it so executed notebooks carry no dead buttons)."""
    if os.environ.get("RECOVERY_HEADLESS", "").lower() in ("1", "true", "yes"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def approval_widget(ctx: Context, result: DiffResult, page_size: int = 25) -> ApprovalPanel:
    """The interactive approval panel for a plan (display it in a notebook)."""
    return ApprovalPanel(ctx, result, page_size=page_size)
