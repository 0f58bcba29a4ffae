"""Items the incident moved between tenants (a non-key tenant attribute rewritten) are found and put back.

Issue 12, defect 5: full_compare and incremental_export looked only at the live item's tenant, so an item
moved OUT of a selected tenant was dropped (run exit 0, item left in the wrong tenant); the Streams handler
filed an audit item under the new tenant only. Each test here failed before.
"""

from __future__ import annotations

import datetime as dt

from recovery_helpers import diff
from recovery_helpers.appkit.streams_handler import AuditWriter
from recovery_helpers.sources import audit_table, full_compare, incremental_export
from recovery_helpers.tenancy import Tenancy
from tests.conftest import create_table
from tests.diff_support import START, context
from tests.sources_support import by_key, request

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _put(aws, table, *items):
    for item in items:
        aws.dynamodb.put_item(TableName=table, Item=item)


def _doc(pk, tenant, v):
    return {"pk": {"S": pk}, "sk": {"S": "x"}, "tenant": {"S": tenant}, "v": {"N": str(v)}}


def test_full_compare_selects_an_item_when_either_version_is_in_a_selected_tenant(aws, unique_name, tmp_path):
    live = create_table(aws.dynamodb, unique_name, pitr=False)
    restored = create_table(aws.dynamodb, f"{unique_name}-r", pitr=False)
    _put(
        aws,
        restored,
        _doc("moved-out", "t1", 1),
        _doc("moved-in", "t2", 1),
        _doc("other", "t2", 1),
        _doc("stayed", "t1", 1),
    )
    _put(
        aws,
        live,
        _doc("moved-out", "t2", 1),
        _doc("moved-in", "t1", 1),
        _doc("other", "t2", 2),
        _doc("stayed", "t1", 2),
    )
    req = request(
        aws, live, NOW, NOW, tmp_path, restored_table_name=restored, tenancy="tenant", tenants=["t1"]
    )
    found = by_key(req.key_schema, list(full_compare.find(req)))
    assert set(found) == {("moved-out", "x"), ("moved-in", "x"), ("stayed", "x")}
    assert found[("moved-out", "x")].before["tenant"] == {"S": "t1"}
    assert req.stats.counters["filtered_tenant"] == 1

    # and 04_diff keeps it in the plan: the patch will put the restored (t1) version back
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx,
        impacted_source="full_compare",
        incident_start=START,
        tenant_attribute="tenant",
        tenants=["t1"],
        progress=False,
    )
    assert result.counts["changed"] == 3
    moved = result.diffs[result.diffs["key"] == "pk=moved-out, sk=x"].to_dict("records")
    assert [(r["path"], r["old"], r["new"]) for r in moved] == [("tenant", "t1", "t2")]


def test_incremental_export_selects_an_item_moved_out_of_a_selected_tenant(
    aws, sandbox, unique_name, tmp_path
):
    table = create_table(aws.dynamodb, unique_name)
    bucket = unique_name.lower()[:50]
    aws.s3.create_bucket(Bucket=bucket)
    _put(aws, table, _doc("moved-out", "t1", 1), _doc("other", "t2", 1))
    sandbox.advance(1.0)
    t0 = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    _put(aws, table, _doc("moved-out", "t2", 1), _doc("other", "t2", 2))
    sandbox.advance(1.0)
    t1 = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    req = request(
        aws,
        table,
        t0,
        t1,
        tmp_path,
        tenancy="tenant",
        tenants=["t1"],
        options={"export_bucket": bucket, "export_min_window_seconds": 1},
    )
    found = by_key(req.key_schema, list(incremental_export.find(req)))
    assert set(found) == {("moved-out", "x")}
    assert found[("moved-out", "x")].before["tenant"] == {"S": "t1"}


def _stream_records(aws, table):
    """Every record of the table's stream so far, shaped as Lambda delivers them (with eventSourceARN)."""
    streams = aws.client("dynamodbstreams")
    arn = aws.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it)
            records.extend({**r, "eventSourceARN": arn} for r in page["Records"])
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return records


def test_the_audit_table_files_a_moved_item_under_both_tenants(aws, sandbox, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    audit = f"{unique_name}-audit"
    audit_table.ensure_audit_table(aws, audit)
    audit_table.enable_stream(aws, table)
    _put(aws, table, _doc("moved-out", "t1", 1))
    sandbox.advance(5)
    start = sandbox.now()
    _put(aws, table, _doc("moved-out", "t2", 1))  # the incident rewrites the tenant attribute
    sandbox.advance(5)
    writer = AuditWriter(audit, tenancy=Tenancy.parse("tenant"), dynamodb=aws.dynamodb)
    assert writer.handle(_stream_records(aws, table)) == {"written": 3, "skipped": 0}
    req = request(
        aws, table, start, sandbox.now(), tmp_path, tenancy="tenant", tenants=["t1"], audit_table_name=audit
    )
    found = by_key(req.key_schema, list(audit_table.find(req)))
    assert set(found) == {("moved-out", "x")} and found[("moved-out", "x")].action == "update"
