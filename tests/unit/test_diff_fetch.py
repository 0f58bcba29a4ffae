"""Fetching both versions as AWS answers: partial batches, throttling, and sources that carry images."""

from __future__ import annotations

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import RecoveryError
from recovery_helpers.items import KeySchema
from recovery_helpers.plan import iter_plan
from recovery_helpers.scan import batch_get
from tests.conftest import create_table
from tests.diff_support import END, START, context, put_items, twin_tables, write_lines


def build(ctx, tmp_path, n):
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "p", "sk": f"{i:03d}"} for i in range(n)])
    return diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=keys,
        incident_start=START,
        incident_end=END,
        progress=False,
        segments=2,
        max_workers=2,
    )


@pytest.fixture
def tables(aws, unique_name):
    restored = [{"pk": "p", "sk": f"{i:03d}", "v": i} for i in range(250)]
    live = [{"pk": "p", "sk": f"{i:03d}", "v": i + (i % 5 == 0)} for i in range(250)]
    return twin_tables(aws, unique_name, restored=restored, live=live)


def test_unprocessed_keys_are_retried_until_every_item_is_read(aws, tables, tmp_path):
    """AWS may answer a BatchGetItem with only part of the items (16 MB, capacity): the rest must be
    asked again. A botocore after-call hook makes the sandbox's answers partial, as AWS's are under load."""
    calls = {"partial": 0, "total": 0}

    def partial_answer(http_response, parsed, model, **_):
        calls["total"] += 1
        for table, items in parsed.get("Responses", {}).items():
            if len(items) > 1:
                keep, give_back = items[: max(1, len(items) // 3)], items[max(1, len(items) // 3) :]
                parsed["Responses"][table] = keep
                parsed.setdefault("UnprocessedKeys", {}).setdefault(table, {"Keys": []})["Keys"].extend(
                    {k: i[k] for k in ("pk", "sk")} for i in give_back
                )
                calls["partial"] += 1

    aws.dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", partial_answer)
    try:
        result = build(context(aws, tmp_path, *tables), tmp_path, 250)
    finally:
        aws.dynamodb.meta.events.unregister("after-call.dynamodb.BatchGetItem", partial_answer)
    assert calls["partial"] > 0 and calls["total"] > 6  # 3 batches per table, more with the retries
    assert result.counts == {"changed": 50, "deleted": 0, "created": 0, "unchanged": 200}


def test_throttled_reads_are_retried(sandbox, aws, tables, tmp_path):
    sandbox.configure(throttle_rate=0.25, fault_operations=["BatchGetItem"], fault_seed=3)
    sandbox.reset_counters()
    result = build(context(aws, tmp_path, *tables), tmp_path, 150)
    assert sandbox.faults.get("throttle", 0) > 0
    assert result.counts["changed"] == 30 and result.counts["unchanged"] == 120


def test_incremental_export_needs_no_restored_table(sandbox, aws, unique_name, tmp_path):
    live = create_table(aws.dynamodb, unique_name)
    bucket = unique_name.lower()[:60]
    aws.s3.create_bucket(Bucket=bucket)
    put_items(aws, live, [{"pk": "p", "sk": s, "v": 1} for s in "abc"])
    sandbox.advance(1.0)
    start = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    aws.dynamodb.put_item(TableName=live, Item={"pk": {"S": "p"}, "sk": {"S": "a"}, "v": {"N": "2"}})
    aws.dynamodb.delete_item(TableName=live, Key={"pk": {"S": "p"}, "sk": {"S": "b"}})
    aws.dynamodb.put_item(TableName=live, Item={"pk": {"S": "p"}, "sk": {"S": "new"}})
    sandbox.advance(1.0)
    end = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    ctx = context(aws, tmp_path, live)  # no restored_table_name in the incident state
    result = diff.build_plan(
        ctx,
        impacted_source="incremental_export",
        incident_start=start,
        incident_end=end,
        source_options={"export_bucket": bucket, "export_min_window_seconds": 1},
        progress=False,
    )
    assert result.counts == {"changed": 1, "deleted": 1, "created": 1, "unchanged": 0}
    restored = {e.key["sk"]["S"]: e.restored for e in iter_plan(ctx.incident)}
    assert restored["a"]["v"] == {"N": "1"} and restored["new"] is None
    assert any(ev["action"] == "start incremental export" for ev in ctx.incident.timeline)


def test_reads_that_never_progress_stop_with_advice(aws, tables):
    def nothing_processed(http_response, parsed, model, **_):
        for table, items in parsed.get("Responses", {}).items():
            parsed.setdefault("UnprocessedKeys", {})[table] = {
                "Keys": [{k: i[k] for k in ("pk", "sk")} for i in items]
            }
            parsed["Responses"][table] = []

    schema = KeySchema.of_table(aws.dynamodb, tables[0])
    aws.dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", nothing_processed)
    waits: list[float] = []
    try:
        with pytest.raises(RecoveryError, match="unprocessed 4 times in a row.*fewer max_workers"):
            batch_get(
                aws.dynamodb,
                tables[0],
                [{"pk": {"S": "p"}, "sk": {"S": "001"}}],
                schema,
                consistent_read=True,
                sleep=waits.append,
                max_stalls=4,
            )
    finally:
        aws.dynamodb.meta.events.unregister("after-call.dynamodb.BatchGetItem", nothing_processed)
    assert len(waits) == 3 and waits[0] < waits[-1]
