"""What the reviewer sees and clicks: masked tables and approval buttons that save at once."""

from __future__ import annotations

import json

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import ApprovalError
from recovery_helpers.plan import iter_plan, load_approvals
from recovery_helpers.views import diff as display
from tests.diff_support import END, START, context, twin_tables, write_lines


def build(aws, name, tmp_path, restored, live, keys, **kw):
    live_name, restored_name = twin_tables(aws, name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    keys_file = write_lines(tmp_path / "keys.jsonl", keys)
    result = diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=keys_file,
        incident_start=START,
        incident_end=END,
        progress=False,
        **kw,
    )
    return ctx, result


def test_masked_attributes_never_reach_the_html_but_still_count_as_differences(aws, unique_name, tmp_path):
    restored = [
        {
            "pk": "p",
            "sk": "1",
            "email": "old-secret@example.com",
            "profile": {"ssn": "111-22-3333", "note": "x"},
            "v": 1,
        }
    ]
    live = [
        {
            "pk": "p",
            "sk": "1",
            "email": "new-secret@example.com",
            "profile": {"ssn": "999-88-7777", "note": "x"},
            "v": 1,
        }
    ]
    ctx, result = build(
        aws,
        unique_name,
        tmp_path,
        restored,
        live,
        [{"pk": "p", "sk": "1"}],
        mask_attributes=["email", "profile"],
    )
    assert result.counts["changed"] == 1
    html = "".join(
        t.to_html()
        for t in (
            display.diff_table(result),
            display.items_table(result),
            display.summary_table(result),
            display.sources_table(result),
        )
    )
    for secret in ("old-secret", "new-secret", "111-22-3333", "999-88-7777"):
        assert secret not in html
    assert html.count(diff.MASK) >= 4
    rows = {r["path"]: r for r in result.diffs.to_dict("records")}
    assert set(rows) == {"email", "profile.ssn"}
    # the plan itself keeps the real values: the patch must write them back
    (entry,) = iter_plan(ctx.incident)
    assert entry.restored["email"] == {"S": "old-secret@example.com"}


def test_diff_table_colours_old_and_new_and_escapes_values(aws, unique_name, tmp_path):
    restored = [{"pk": "p", "sk": "1", "v": "<script>alert(1)</script>"}]
    live = [{"pk": "p", "sk": "1", "v": "plain"}]
    _, result = build(aws, unique_name, tmp_path, restored, live, [{"pk": "p", "sk": "1"}])
    html = display.diff_table(result).to_html()
    assert display.OLD_COLOUR.split(": ")[1] in html and display.NEW_COLOUR.split(": ")[1] in html
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.fixture
def panel_setup(aws, unique_name, tmp_path):
    restored = [{"pk": "p", "sk": f"{i:02d}", "v": 1} for i in range(8)]
    live = [{"pk": "p", "sk": f"{i:02d}", "v": 2} for i in range(6)] + [{"pk": "p", "sk": "99", "v": 1}]
    keys = [{"pk": "p", "sk": f"{i:02d}"} for i in range(8)] + [{"pk": "p", "sk": "99"}]
    ctx, result = build(aws, unique_name, tmp_path, restored, live, keys)
    assert result.counts == {"changed": 6, "deleted": 2, "created": 1, "unchanged": 0}
    return ctx, result


def approvals_file(ctx) -> dict:
    return json.loads((ctx.incident.path / "approvals.json").read_text())


def approved_keys(ctx) -> set[str]:
    approvals = load_approvals(ctx.incident)
    return {e.key["sk"]["S"] for e in iter_plan(ctx.incident) if approvals.is_approved(e)}


def test_clicking_buttons_saves_approvals_at_once(panel_setup):
    ctx, result = panel_setup
    panel = display.approval_widget(ctx, result, page_size=4)
    assert len(panel.toggles) == 4 and "items 1–4 of 9" in panel.page_label.value
    assert all(t.value is None for t in panel.toggles.values()) and "approved 0 of 9" in panel.summary.value

    panel.class_buttons[("changed", "approve")].click()
    saved = approvals_file(ctx)
    assert saved["classes"] == {"changed": True} and saved["method"] == "widgets"
    assert saved["digest"] == result.digest and saved["approved_by"].startswith("arn:aws:iam::")
    assert approved_keys(ctx) == {f"{i:02d}" for i in range(6)}
    assert all(t.value == "Approve" for t in panel.toggles.values())
    assert "approved 6 of 9" in panel.summary.value

    first = next(iter(panel.toggles))
    panel.toggles[first].value = "Reject"
    assert approvals_file(ctx)["decisions"] == {first: False}
    assert (
        approved_keys(ctx) == {f"{i:02d}" for i in range(1, 6)} and "approved 5 of 9" in panel.summary.value
    )

    panel.next_button.click()
    panel.next_button.click()
    assert "items 9–9 of 9" in panel.page_label.value and panel.next_button.disabled
    (created_key,) = panel.toggles
    panel.toggles[created_key].value = "Approve"
    panel.class_buttons[("deleted", "reject")].click()
    assert approved_keys(ctx) == {f"{i:02d}" for i in range(1, 6)} | {"99"}
    assert approvals_file(ctx)["classes"] == {"changed": True, "deleted": False}

    panel.class_buttons[("changed", "approve")].click()  # approving a class again overrides item rejections
    assert approved_keys(ctx) == {f"{i:02d}" for i in range(6)} | {"99"}
    assert "approved 7 of 9" in panel.summary.value
    actions = [e["action"] for e in ctx.incident.timeline if e.get("method") == "widgets"]
    assert actions == ["approve class", "reject item", "approve item", "reject class", "approve class"]


def test_a_new_panel_shows_decisions_already_saved(panel_setup):
    ctx, result = panel_setup
    diff.approve(ctx, approve=True)
    panel = display.approval_widget(ctx, result, page_size=50)
    assert len(panel.toggles) == 9 and all(t.value == "Approve" for t in panel.toggles.values())
    assert "approved 9 of 9" in panel.summary.value


def test_buttons_of_an_older_plan_cannot_approve_a_rebuilt_one(panel_setup, aws, tmp_path):
    ctx, result = panel_setup
    old_panel = display.approval_widget(ctx, result)
    aws.dynamodb.put_item(
        TableName=ctx.table_name, Item={"pk": {"S": "p"}, "sk": {"S": "00"}, "v": {"N": "7"}}
    )
    rebuilt = diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=str(tmp_path / "keys.jsonl"),
        incident_start=START,
        incident_end=END,
        progress=False,
    )
    assert rebuilt.digest != result.digest
    old_panel.class_buttons[("changed", "approve")].click()  # ipywidgets shows the error under the cell
    assert "Not saved" in old_panel.summary.value
    assert approved_keys(ctx) == set()
    with pytest.raises(ApprovalError, match="this approval panel is for plan"):
        old_panel.decide_class("changed", True)
