"""04_diff's review panel: each item beside its decision, drawn with ipywidgets over ``review.ReviewState``.

Layout, top to bottom: the counts (approved / rejected / undecided), group actions per classification and per
tenant (each showing its state), filters, one page of item rows, the pager. An item row holds its ``Approve``
and ``Reject`` buttons, a badge saying the decision in a word and a colour (green APPROVED, red REJECTED, grey
undecided), the key, tenant, classification and the changes in one line; ``diff`` expands the full diff.
The widgets of one page are made once and re-filled, so paging through thousands of items stays light for the
browser. All logic (what is decided, shown, counted) is in ``ReviewState``; this module only draws it.
"""

from __future__ import annotations

import html
from typing import Any

from ..context import Context
from ..diff import DiffResult
from ..errors import RecoveryError
from ..items import KeySchema
from ..review import APPROVED, REJECTED, UNDECIDED, Counts, ReviewRow, ReviewState, word

COLOURS = {
    APPROVED: "#137333",
    REJECTED: "#b3261e",
    UNDECIDED: "#5f6368",
    "mixed": "#8a5a00",
    "empty": "#5f6368",
}
STYLE = """<style>
/* the counts stay in view while the rows scroll under them: no ancestor of the panel may clip (sticky) */
.jp-Cell:has(.rv-panel), .jp-Cell-outputWrapper:has(.rv-panel), .jp-Cell-outputArea:has(.rv-panel),
.jp-OutputArea:has(.rv-panel), .jp-OutputArea-child:has(.rv-panel), .jp-OutputArea-output:has(.rv-panel),
.rv-panel {overflow: visible !important; contain: none !important;}
.rv-counts {position: sticky !important; top: 0; z-index: 5; background: var(--jp-layout-color0, white);
  padding: 4px 0; border-bottom: 1px solid #ddd;}
.rv-badge {display: inline-block; min-width: 88px; text-align: center; color: white; font-weight: bold;
  border-radius: 3px; padding: 1px 6px; font-size: 12px;}
.rv-line {font-size: 12px; line-height: 1.3; white-space: normal;}
.rv-line code {font-size: 12px;}
</style>"""
_PANELS: dict[str, ReviewPanel] = {}


def badge(state: str, text: str | None = None) -> str:
    """A coloured word: APPROVED (green), REJECTED (red), undecided (grey), mixed (amber)."""
    label = text or (state.upper() if state in (APPROVED, REJECTED) else state)
    return f"<span class='rv-badge' style='background:{COLOURS[state]}'>{html.escape(label)}</span>"


def counts_html(counts: Counts, digest: str) -> str:
    parts = " &nbsp; ".join(
        f"{badge(name, f'{getattr(counts, name)} {name}')}" for name in (APPROVED, REJECTED, UNDECIDED)
    )
    return f"<div><b>Plan {digest[:12]}…, {counts.total} proposed changes:</b> &nbsp; {parts}</div>"


class _RowSlot:
    """The widgets of one row of the page; re-filled when the page or the filters change."""

    def __init__(self, panel: ReviewPanel) -> None:
        w = panel._w
        self.panel = panel
        self.row: ReviewRow | None = None
        fixed = {"flex": "0 0 auto"}  # a long change line must never squeeze the buttons
        self.approve = w.Button(
            description="Approve",
            tooltip="approve this item",
            layout=w.Layout(width="80px", min_width="80px", **fixed),
        )
        self.reject = w.Button(
            description="Reject",
            tooltip="reject this item",
            layout=w.Layout(width="80px", min_width="80px", **fixed),
        )
        self.badge = w.HTML(layout=w.Layout(width="104px", min_width="104px", **fixed))
        self.line = w.HTML(layout=w.Layout(flex="1 1 auto", width="auto"))
        self.more = w.ToggleButton(
            description="diff",
            value=False,
            tooltip="show the full diff of this item",
            layout=w.Layout(width="56px", min_width="56px", **fixed),
        )
        self.detail = w.HTML(layout=w.Layout(display="none"))
        self.approve.on_click(lambda _b: self._decide(True))
        self.reject.on_click(lambda _b: self._decide(False))
        self.more.observe(lambda _c: self._show_detail(), names="value")
        self.box = w.VBox(
            [w.HBox([self.approve, self.reject, self.badge, self.more, self.line]), self.detail]
        )
        self.box.add_class("rv-row")

    def fill(self, row: ReviewRow | None) -> None:
        self.row = row
        self.box.layout.display = "none" if row is None else ""
        if row is None:
            return
        state = self.panel.state
        tenant = f" · tenant <b>{html.escape(row.tenant)}</b>" if row.tenant is not None else ""
        self.line.value = (
            f"<div class='rv-line'><code>{html.escape(row.key)}</code>{tenant} · <i>{row.classification}</i> → "
            f"{row.action}<br>{html.escape(state.change_line(row))}</div>"
        )
        self.more.value = False
        self.detail.layout.display = "none"
        self.refresh()

    def refresh(self) -> None:
        if self.row is None:
            return
        decision = self.panel.state.decision(self.row)
        self.approve.button_style = "success" if decision is True else ""
        self.reject.button_style = "danger" if decision is False else ""
        self.badge.value = badge(word(decision))

    def _decide(self, approved: bool) -> None:
        if self.row is not None:
            self.panel.act(lambda: self.panel.state.decide_item(self.row.key_id, approved))

    def _show_detail(self) -> None:
        if self.row is None or not self.more.value:
            self.detail.layout.display = "none"
            return
        rows = self.panel.state.diff(self.row)
        body = "".join(
            f"<tr><td><code>{html.escape(d['path'])}</code></td><td>{html.escape(d['change'])}</td>"
            f"<td style='background:#e6f4ea'>{html.escape(d['old'])}</td>"
            f"<td style='background:#fce8e6'>{html.escape(d['new'])}</td></tr>"
            for d in rows
        )
        self.detail.value = (
            "<table class='rv-diff' style='font-size:12px;margin-left:170px'><tr><th>attribute</th><th>change</th>"
            "<th>old (restored: written back)</th><th>new (live now)</th></tr>" + body + "</table>"
        )
        self.detail.layout.display = ""


class ReviewPanel:
    """The review panel of one plan. ``state`` is the :class:`ReviewState`; ``widget`` the whole panel.

    Exposed for tests and scripting: ``slots`` (the page's rows), ``group_buttons`` ((kind, value, "approve" |
    "reject") -> Button), ``group_badges``, ``filters`` (name -> Dropdown), ``counts``, ``message``.
    """

    def __init__(self, ctx: Context, result: DiffResult, page_size: int = 25) -> None:
        import ipywidgets as w

        self._w = w
        self.ctx = ctx
        self.result = result
        self.state = ReviewState(
            ctx.incident,
            digest=result.digest,
            key_schema=KeySchema(**result.meta["key_schema"]),
            mask=result.mask_attributes,
            page_size=page_size,
            who=ctx.who,
            record=ctx.record,
        )
        self.counts = w.HTML()
        self.counts.add_class("rv-counts")  # sticky: see STYLE
        self.status = w.HTML()  # a second view of the counts, for 04_diff's last cell
        self.message = w.HTML()
        self.group_buttons: dict[tuple[str, str, str], Any] = {}
        self.group_badges: dict[tuple[str, str], Any] = {}
        groups = [self._group_row("classification", c) for c in self.state.options("classification")]
        tenants = [self._group_row("tenant", t) for t in self.state.options("tenant")]
        self.filters = {
            name: w.Dropdown(
                options=[("all", "")] + [(o, o) for o in self.state.options(name)],
                value="",
                description=name,
                layout=w.Layout(width="260px"),
                style={"description_width": "100px"},
            )
            for name in ("classification", "tenant", "attribute", "decision")
        }
        for name, dropdown in self.filters.items():
            dropdown.observe(lambda change, n=name: self._filter(n, change["new"]), names="value")
        self.previous_button = w.Button(description="◀ previous", layout=w.Layout(width="auto"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="auto"))
        self.previous_button.on_click(lambda _b: self.show_page(self.state.page - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.state.page + 1))
        self.page_label = w.Label()
        self.slots = [_RowSlot(self) for _ in range(self.state.page_size)]
        sections: list[Any] = [
            self.counts,  # first: also what the panel's plain-text form (an executed notebook) starts with
            self.message,
            w.HTML(
                "<b>Group actions</b> (a class decision replaces its items' own; a tenant "
                "decision is recorded on each of its items)"
            ),
            *groups,
        ]
        if tenants:
            sections += tenants
        sections += [
            w.HBox(list(self.filters.values()), layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.previous_button, self.page_label, self.next_button]),
            *[s.box for s in self.slots],
            w.HTML(STYLE),
        ]
        self.widget = w.VBox(sections)
        self.widget.add_class("rv-panel")
        self.show_page(0)
        self.refresh()
        _PANELS[result.digest] = self

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _group_row(self, kind: str, value: str) -> Any:
        w = self._w
        n = len(self.state.group(kind, value))
        yes = w.Button(description=f"Approve all {value}", layout=w.Layout(width="auto"))
        no = w.Button(description=f"Reject all {value}", layout=w.Layout(width="auto"))
        decide = self.state.decide_classification if kind == "classification" else self.state.decide_tenant
        yes.on_click(lambda _b: self.act(lambda: decide(value, True)))
        no.on_click(lambda _b: self.act(lambda: decide(value, False)))
        self.group_buttons[(kind, value, "approve")] = yes
        self.group_buttons[(kind, value, "reject")] = no
        state = w.HTML()
        self.group_badges[(kind, value)] = state
        label = w.HTML(f"{kind} <b>{html.escape(value)}</b> ({n})", layout=w.Layout(width="220px"))
        return w.HBox([label, yes, no, state])

    # -- actions -----------------------------------------------------------------------------------------
    def act(self, decide: Any) -> None:
        """Run one decision; a refusal (plan rebuilt...) is shown in the panel instead of being lost."""
        try:
            decide()
            self.message.value = ""
        except RecoveryError as exc:
            self.message.value = f"<b style='color:#b3261e'>Not saved: {html.escape(str(exc))}</b>"
        if self.state.filters["decision"] is not None:
            self.show_page(self.state.page)
        self.refresh()

    def _filter(self, name: str, value: str) -> None:
        self.state.set_filter(name, value or None)
        self.show_page(0)

    def show_page(self, page: int) -> None:
        self.state.set_page(page)
        rows = self.state.page_rows()
        for i, slot in enumerate(self.slots):
            slot.fill(rows[i] if i < len(rows) else None)
        self.page_label.value = self.state.page_text()
        self.previous_button.disabled = self.state.page == 0
        self.next_button.disabled = self.state.page >= self.state.pages - 1

    def refresh(self) -> None:
        """Redraw what a decision changes: the counts, the group states, the page's rows."""
        counts = self.state.counts()
        self.counts.value = counts_html(counts, self.result.digest)
        self.status.value = status_html(counts, self.result.digest)
        for (kind, value), shown in self.group_badges.items():
            group = self.state.group_counts(kind, value)
            text = {"approved": "all approved", "rejected": "all rejected", "undecided": "undecided"}.get(
                group.state, f"mixed: {group.text()}"
            )
            shown.value = badge(group.state, text)
            self.group_buttons[(kind, value, "approve")].button_style = (
                "success" if group.state == APPROVED else ""
            )
            self.group_buttons[(kind, value, "reject")].button_style = (
                "danger" if group.state == REJECTED else ""
            )
        for slot in self.slots:
            slot.refresh()


def status_html(counts: Counts, digest: str) -> str:
    """What is approved now, in words (04_diff's last cell shows this live)."""
    return (
        f"<b>Approved now: {counts.approved} of {counts.total} proposed changes</b> ({counts.text()}) "
        f"for plan {digest[:12]}…: 05_patch writes exactly the approved ones."
    )


def review_panel(ctx: Context, result: DiffResult, page_size: int = 25) -> ReviewPanel:
    """The interactive review panel of a plan (display it in a notebook)."""
    return ReviewPanel(ctx, result, page_size=page_size)


def approval_step(
    ctx: Context,
    result: DiffResult,
    *,
    approve: bool = False,
    approval_token: str | None = None,
    approver: str | None = None,
    interactive: bool | None = None,
) -> None:
    """04_diff's last cell. Interactive (a person at the panel, no approve/token): show, live, what is
    approved now. Headless: ``diff.approve`` as before (approve=True, or the digest as approval_token)."""
    from IPython.display import display

    from .. import diff
    from .diff import approvals_text
    from .diff import interactive as is_interactive

    if result.proposed == 0:
        print(
            "Nothing to patch: every impacted item already matches its restored version. Skip 05_patch; go on "
            "with 06_lift."
        )
        return
    live = interactive if interactive is not None else is_interactive()
    panel = _PANELS.get(result.digest)
    if live and not (approve or approval_token) and panel is not None:
        display(panel.status)
        print(
            f"Decisions are saved as you click (approvals.json). To approve this exact plan headless instead: "
            f'approval_token="{result.digest}"'
        )
        return
    approvals = diff.approve(ctx, approve=approve, approval_token=approval_token, approver=approver)
    print(approvals_text(ctx, approvals))
    if not (approve or approval_token):
        print(f'to approve this exact plan headless, run 04_diff again with approval_token="{result.digest}"')
