"""04_diff refuses, by name and before anything is written, items the patch's condition cannot cover.

Each patch write is conditioned on every non-key attribute of the reviewed item (two operators each); DynamoDB
allows 300 operators and 4 KB per expression. Before issue 12 such an item went into the plan and only failed
at patch time. The refusal test failed before (the plan was written); the 149-attribute item shows the limit
is not stricter than it must be: it is patched through the sandbox.
"""

from __future__ import annotations

import json

import pytest

from recovery_helpers import diff, patch
from recovery_helpers.errors import InputError
from recovery_helpers.patch.requests import MAX_OPERATORS
from tests.conftest import create_table
from tests.diff_support import START, context


def _wide(pk: str, attributes: int, value: str) -> dict:
    return {"pk": {"S": pk}, **{f"a{i}": {"S": value} for i in range(attributes)}}


def _tables(aws, name, restored_items, live_items):
    live = create_table(aws.dynamodb, name, range_key=None, pitr=False)
    restored = create_table(aws.dynamodb, name + "-restored", range_key=None, pitr=False)
    for table, items in ((restored, restored_items), (live, live_items)):
        for item in items:
            aws.dynamodb.put_item(TableName=table, Item=item)
    return live, restored


def test_an_item_too_wide_for_one_condition_is_refused_by_name_and_no_plan_is_written(
    aws, unique_name, tmp_path
):
    too_wide = MAX_OPERATORS // 2  # 150 attributes: 1 + 2 * 150 = 301 operators
    live, restored = _tables(
        aws,
        unique_name,
        [_wide("wide", too_wide, "good"), {"pk": {"S": "narrow"}, "v": {"S": "good"}}],
        [
            _wide("wide", too_wide, "bad"),
            {"pk": {"S": "narrow"}, "v": {"S": "bad"}},
            _wide("created", too_wide, "new"),
        ],
    )
    keys = tmp_path / "keys.jsonl"
    keys.write_text("".join(json.dumps({"pk": k}) + "\n" for k in ("wide", "narrow", "created")))
    ctx = context(aws, tmp_path, live, restored)
    with pytest.raises(
        InputError,
        match=r"refuses the plan: 2 item\(s\).*pk=created \(created\).*301 operators.*"
        r"pk=wide \(changed\)",
    ):
        diff.build_plan(
            ctx, impacted_source="keys_file", keys_file=str(keys), incident_start=START, progress=False
        )
    run = ctx.incident.path
    assert not (run / "plan.jsonl").exists() and not (run / "plan.json").exists()
    refused = [json.loads(line) for line in (run / "refused.jsonl").read_text().splitlines()]
    assert [(r["key"], r["classification"]) for r in refused] == [
        ({"pk": {"S": "created"}}, "created"),
        ({"pk": {"S": "wide"}}, "changed"),
    ]
    assert any(e["action"] == "build plan" and e["result"] == "refused" for e in ctx.incident.timeline)


def test_an_item_at_the_limit_is_planned_and_patched(aws, unique_name, tmp_path):
    at_limit = (MAX_OPERATORS - 1) // 2  # 149 attributes: 299 operators
    live, restored = _tables(
        aws, unique_name, [_wide("wide", at_limit, "good")], [_wide("wide", at_limit, "bad")]
    )
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"pk": "wide"}\n')
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx, impacted_source="keys_file", keys_file=str(keys), incident_start=START, progress=False
    )
    assert result.counts["changed"] == 1 and not (ctx.incident.path / "refused.jsonl").exists()
    diff.approve(ctx, approve=True)
    patch.apply_plan(ctx, dry_run=False, progress=False)
    item = aws.dynamodb.get_item(TableName=live, Key={"pk": {"S": "wide"}}, ConsistentRead=True)["Item"]
    assert item == _wide("wide", at_limit, "good")
