"""Headless approval: nothing approved by default, approve=True approves all, a token approves one plan."""

from __future__ import annotations

import json

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import ApprovalError
from recovery_helpers.plan import iter_plan, load_approvals
from tests.diff_support import END, START, context, twin_tables, write_lines


@pytest.fixture
def planned(aws, unique_name, tmp_path):
    restored = [{"pk": "p", "sk": s, "v": 1} for s in "abc"]
    live = [{"pk": "p", "sk": "a", "v": 2}, {"pk": "p", "sk": "c", "v": 1}, {"pk": "p", "sk": "d", "v": 1}]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "p", "sk": s} for s in "abcd"])
    result = diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=keys,
        incident_start=START,
        incident_end=END,
        progress=False,
    )
    return ctx, result


def approved(ctx) -> set[str]:
    approvals = load_approvals(ctx.incident)
    return {
        e.key["sk"]["S"] for e in iter_plan(ctx.incident) if e.action != "none" and approvals.is_approved(e)
    }


def test_nothing_is_approved_by_default(planned):
    ctx, result = planned
    assert result.proposed == 3
    diff.approve(ctx)
    assert approved(ctx) == set()
    assert not (ctx.incident.path / "approvals.json").exists()


def test_approve_true_approves_every_proposed_change_and_records_who(planned):
    ctx, result = planned
    approvals = diff.approve(ctx, approve=True, approver="alice@example.com")
    assert approved(ctx) == {"a", "b", "d"}
    saved = json.loads((ctx.incident.path / "approvals.json").read_text())
    assert (saved["digest"], saved["approved_by"], saved["method"]) == (
        result.digest,
        "alice@example.com",
        "approve=True",
    )
    assert saved["approved_at"] == approvals.approved_at
    event = ctx.incident.timeline[-1]
    assert (event["action"], event["digest"], event["approver"]) == (
        "approve plan",
        result.digest,
        "alice@example.com",
    )
    assert event["who"].startswith("arn:aws:iam::")


def test_the_token_of_this_plan_approves_it_under_the_callers_arn(planned):
    ctx, result = planned
    approvals = diff.approve(ctx, approval_token=result.digest)
    assert approved(ctx) == {"a", "b", "d"}
    assert approvals.method == "approval_token" and approvals.approved_by.startswith("arn:aws:iam::")


def test_a_token_for_another_plan_is_refused_with_the_current_digest(planned):
    ctx, result = planned
    with pytest.raises(ApprovalError, match=rf"current plan, {result.digest}.*Re-run the review \(04_diff\)"):
        diff.approve(ctx, approval_token="0" * 64)
    assert approved(ctx) == set()
    assert ctx.incident.timeline[-1]["result"] == "refused"


def test_an_approval_does_not_survive_a_rebuilt_plan_that_differs(planned, aws, tmp_path):
    ctx, result = planned
    diff.approve(ctx, approve=True)
    aws.dynamodb.put_item(
        TableName=ctx.table_name, Item={"pk": {"S": "p"}, "sk": {"S": "c"}, "v": {"N": "5"}}
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
    assert approved(ctx) == set()
    with pytest.raises(ApprovalError):
        diff.approve(ctx, approval_token=result.digest)
