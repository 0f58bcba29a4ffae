"""04_diff's review (issue 13): ReviewState's decisions, filters, pages and counts, and the panel's widgets.

Plans are built by diff.build_plan from real tables in the sandbox; clicks are ipywidgets' own .click().
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import ApprovalError
from recovery_helpers.items import KeySchema
from recovery_helpers.plan import iter_plan, load_approvals
from recovery_helpers.review import ReviewState
from recovery_helpers.views.review_panel import review_panel
from tests.diff_support import END, START, context, twin_tables, write_lines


@pytest.fixture
def plan(aws, unique_name, tmp_path):
    """Two tenants; t1: 4 changed (status, one also total), 1 deleted; t2: 2 changed (total), 1 created."""
    restored = [{"pk": "t1", "sk": f"o{i}", "status": "paid", "total": Decimal("12.50")} for i in range(5)]
    restored += [{"pk": "t2", "sk": f"o{i}", "status": "open", "total": Decimal(7)} for i in range(2)]
    live = [{"pk": "t1", "sk": f"o{i}", "status": "refunded", "total": Decimal("12.50")} for i in range(3)]
    live += [{"pk": "t1", "sk": "o3", "status": "refunded", "total": Decimal(1250)}]
    live += [{"pk": "t2", "sk": f"o{i}", "status": "open", "total": Decimal(700)} for i in range(2)]
    live += [{"pk": "t2", "sk": "dup", "status": "duplicate"}]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in restored] + [{"pk": "t2", "sk": "dup"}]
    result = diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=write_lines(tmp_path / "keys.jsonl", keys),
        incident_start=START,
        incident_end=END,
        tenant_attribute="pk",
        progress=False,
    )
    assert result.counts == {"changed": 6, "deleted": 1, "created": 1, "unchanged": 0}
    return ctx, result


def state_of(ctx, result, **kw) -> ReviewState:
    return ReviewState(
        ctx.incident,
        digest=result.digest,
        key_schema=KeySchema(**result.meta["key_schema"]),
        who="tester",
        record=ctx.record,
        **kw,
    )


def approved_keys(ctx) -> set[str]:
    approvals = load_approvals(ctx.incident)
    return {
        f"{e.key['pk']['S']}/{e.key['sk']['S']}" for e in iter_plan(ctx.incident) if approvals.is_approved(e)
    }


def test_rows_say_what_changed_in_one_line_with_numbers_as_stored(plan):
    ctx, result = plan
    state = state_of(ctx, result)
    rows = {r.key: r for r in state.rows}
    assert len(rows) == 8
    o3 = rows["pk=t1, sk=o3"]
    assert (o3.tenant, o3.classification, o3.attributes) == ("t1", "changed", ("status", "total"))
    assert state.change_line(o3) == "status: paid -> refunded; total: 12.5 -> 1250"
    assert state.change_line(rows["pk=t1, sk=o4"]).startswith("deleted by the incident: the patch puts")
    assert state.change_line(rows["pk=t2, sk=dup"]).startswith("created by the incident: the patch deletes")
    full = state.diff(o3)
    assert [(d["path"], d["old"], d["new"]) for d in full] == [
        ("status", "paid", "refunded"),
        ("total", "12.5", "1250"),
    ]


def test_filters_pages_and_counts(plan):
    ctx, result = plan
    state = state_of(ctx, result, page_size=3)
    assert state.pages == 3 and len(state.page_rows()) == 3 and "items 1–3 of 8" in state.page_text()
    state.set_page(2)
    assert len(state.page_rows()) == 2
    state.set_filter("attribute", "total")
    assert {r.key for r in state.visible()} == {
        "pk=t1, sk=o3",
        "pk=t1, sk=o4",
        "pk=t2, sk=o0",
        "pk=t2, sk=o1",
    }, "the duplicate has no total"
    assert state.page == 0, "a new filter starts at the first page"
    state.set_filter("tenant", "t2")
    state.set_filter("classification", "changed")
    assert {r.key for r in state.visible()} == {"pk=t2, sk=o0", "pk=t2, sk=o1"}
    assert "(2 match the filters, of 8)" in state.page_text()
    assert state.options("tenant") == ["t1", "t2"] and state.options("attribute") == [
        "pk",
        "sk",
        "status",
        "total",
    ]
    counts = state.counts()
    assert (counts.approved, counts.rejected, counts.undecided, counts.state) == (0, 0, 8, "undecided")


def test_every_decision_is_saved_at_once_and_groups_show_their_state(plan):
    ctx, result = plan
    state = state_of(ctx, result)
    rows = {r.key: r for r in state.rows}
    state.decide_item(rows["pk=t1, sk=o0"].key_id, True)
    state.decide_item(rows["pk=t1, sk=o1"].key_id, False)
    assert approved_keys(ctx) == {"t1/o0"}, "saved to approvals.json at the click"
    state.decide_classification("changed", True)
    assert approved_keys(ctx) == {"t1/o0", "t1/o1", "t1/o2", "t1/o3", "t2/o0", "t2/o1"}
    assert state.group_counts("classification", "changed").state == "approved"
    state.decide_tenant("t2", False)
    assert approved_keys(ctx) == {"t1/o0", "t1/o1", "t1/o2", "t1/o3"}
    assert state.group_counts("tenant", "t2").state == "rejected"
    mixed = state.group_counts("classification", "changed")
    assert (mixed.state, mixed.approved, mixed.rejected) == ("mixed", 4, 2)
    assert (state.counts().approved, state.counts().rejected, state.counts().undecided) == (4, 3, 1)
    state.set_filter("decision", "undecided")
    assert [r.key for r in state.visible()] == ["pk=t1, sk=o4"]
    actions = [e["action"] for e in ctx.incident.timeline if e.get("method") == "widgets"]
    assert actions == ["approve item", "reject item", "approve class", "reject tenant"]
    saved = json.loads((ctx.incident.path / "approvals.json").read_text())
    assert saved["digest"] == result.digest and saved["approved_by"] == "tester"


def test_a_review_of_a_rebuilt_plan_refuses_to_save(plan, tmp_path):
    ctx, result = plan
    state = state_of(ctx, result)
    ctx.incident.path.joinpath("plan.json").write_text(
        json.dumps({**json.loads(ctx.incident.path.joinpath("plan.json").read_text()), "digest": "0" * 64})
    )
    with pytest.raises(ApprovalError, match="it was rebuilt since"):
        state.decide_item(state.rows[0].key_id, True)


def test_the_panel_shows_each_decision_in_colour_and_word_and_saves_each_click(plan):
    ctx, result = plan
    panel = review_panel(ctx, result, page_size=4)
    visible = [s for s in panel.slots if s.row is not None]
    assert len(visible) == 4 and all(s.approve.description == "Approve" for s in visible)
    assert all(s.reject.description == "Reject" for s in visible) and "undecided" in visible[0].badge.value
    assert "0 approved" in panel.counts.value and "8 undecided" in panel.counts.value

    first, second = visible[0], visible[1]
    first.approve.click()
    second.reject.click()
    assert (first.approve.button_style, first.reject.button_style) == ("success", "")
    assert (second.approve.button_style, second.reject.button_style) == ("", "danger")
    assert "APPROVED" in first.badge.value and "#137333" in first.badge.value
    assert "REJECTED" in second.badge.value and "#b3261e" in second.badge.value
    assert "1 approved" in panel.counts.value and "1 rejected" in panel.counts.value
    assert len(approved_keys(ctx)) == 1

    panel.group_buttons[("tenant", "t2", "approve")].click()
    assert "all approved" in panel.group_badges[("tenant", "t2")].value
    assert panel.group_buttons[("tenant", "t2", "approve")].button_style == "success"
    assert "mixed" in panel.group_badges[("classification", "changed")].value
    assert {k for k in approved_keys(ctx) if k.startswith("t2/")} == {"t2/o0", "t2/o1", "t2/dup"}

    first.more.value = True
    assert "paid" in first.detail.value and first.detail.layout.display == ""
    panel.filters["tenant"].value = "t2"
    assert [s.row.key for s in panel.slots if s.row is not None] == [
        "pk=t2, sk=dup",
        "pk=t2, sk=o0",
        "pk=t2, sk=o1",
    ]
    assert panel.slots[3].box.layout.display == "none", "rows beyond the filter are hidden, not rebuilt"
    assert "Approved now: 4 of 8" in panel.status.value


def test_thousands_of_items_page_a_few_widgets_at_a_time(tmp_path):
    """3000 proposed changes: the panel's state reads them once; a page is 25 rows, whatever the plan's size."""
    from recovery_helpers.incident import Incident
    from recovery_helpers.items import item_digest
    from recovery_helpers.plan import PlanEntry, write_plan
    from recovery_helpers.review import ReviewState

    incident = Incident("big", tmp_path / "runs")
    schema = KeySchema("pk", "S", "sk", "S")
    entries = []
    for i in range(3000):
        key = {"pk": {"S": f"t{i % 2}"}, "sk": {"S": f"o{i:05d}"}}
        restored, live = {**key, "v": {"N": "1"}}, {**key, "v": {"N": str(i + 2)}}
        entries.append(
            PlanEntry(
                schema.key_id(key),
                key,
                "changed",
                "put",
                restored,
                live,
                item_digest(restored),
                item_digest(live),
                tenant=f"t{i % 2}",
            )
        )
    digest = write_plan(incident, entries, {})
    state = ReviewState(incident, digest=digest, key_schema=schema, page_size=25, who="tester")
    assert len(state.rows) == 3000 and state.pages == 120 and len(state.page_rows()) == 25
    state.set_page(119)
    last = state.page_rows()
    assert len(last) == 25 and state.change_line(last[-1]) == "v: 1 -> 3001"
    state.decide_tenant("t1", True)
    counts = state.counts()
    assert (counts.approved, counts.undecided) == (1500, 1500)
    assert len(load_approvals(incident).decisions) == 1500
