"""The audit_table source: Streams records -> handler -> audit table -> the keys changed in the window."""

from __future__ import annotations

import datetime as dt

import pytest

from recovery_helpers.appkit.streams_handler import handler
from recovery_helpers.errors import InputError
from recovery_helpers.sources import audit_table
from tests.conftest import create_table
from tests.sources_support import by_key, request


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


def _time(record):
    return record["dynamodb"]["ApproximateCreationDateTime"]


def test_streams_handler_fills_the_audit_table_and_the_audit_source_finds_the_keys(
    aws, sandbox, unique_name, tmp_path, monkeypatch
):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    audit = f"{unique_name}-audit"
    setup = audit_table.ensure_audit_table(aws, audit)
    assert setup.changes == [f"created audit table {audit}", f"enabled TTL on {audit}.expires_at"]
    assert audit_table.ensure_audit_table(aws, audit).changes == []  # idempotent
    ttl = ddb.describe_time_to_live(TableName=audit)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    stream = audit_table.enable_stream(aws, table)
    assert stream.changes and stream.arn
    assert audit_table.enable_stream(aws, table).changes == []

    def put(pk, sk, v):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": str(v)}})

    put("t1#x", "before", 1)  # before the window
    put("t1#x", "changed", 1)
    put("t2#y", "expired", 1)  # deleted inside the window by TTL only (below)
    sandbox.advance(5)
    put("t1#x", "changed", 2)  # inside: update
    put("t2#y", "created", 1)  # inside: create
    ddb.delete_item(TableName=table, Key={"pk": {"S": "t1#x"}, "sk": {"S": "before"}})  # inside: delete
    ddb.delete_item(TableName=table, Key={"pk": {"S": "t2#y"}, "sk": {"S": "expired"}})
    sandbox.advance(5)
    put("t3#z", "after", 1)  # after the window

    records = _stream_records(aws, table)
    assert [r["eventName"] for r in records] == ["INSERT"] * 3 + [
        "MODIFY",
        "INSERT",
        "REMOVE",
        "REMOVE",
        "INSERT",
    ]
    # the last delete is made to look like one by DynamoDB's TTL, as AWS marks them
    records[6]["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    monkeypatch.setenv("AUDIT_TABLE", audit)
    monkeypatch.setenv("TENANT_ATTRIBUTE", "pk:^([^#]+)#")
    monkeypatch.setattr("recovery_helpers.appkit.streams_handler._writer", None)
    assert handler({"Records": records[:4]}, None) == {"written": 4, "skipped": 0}
    assert handler({"Records": records[4:]}, None) == {"written": 4, "skipped": 0}
    # a redelivered batch (Lambda retries) overwrites its own audit items: no duplicates
    assert handler({"Records": records[4:]}, None) == {"written": 4, "skipped": 0}
    audit_items = [i for p in ddb.get_paginator("scan").paginate(TableName=audit) for i in p["Items"]]
    assert len(audit_items) == 8
    assert sorted(i["action"]["S"] for i in audit_items).count("ttl-delete") == 1
    sample = next(i for i in audit_items if i["key"]["M"]["sk"]["S"] == "created")
    assert sample["tenant"]["S"] == "t2" and sample["table"]["S"] == table
    change_time = dt.datetime.fromisoformat(sample["time"]["S"].replace("Z", "+00:00"))
    assert int(sample["expires_at"]["N"]) == int(change_time.timestamp() + 35 * 86400)

    start, end = _time(records[3]), _time(records[7])  # [first change inside, first change after)
    for tenants, expected in [
        (["all"], {("t1#x", "changed"), ("t2#y", "created"), ("t1#x", "before")}),
        (["t2"], {("t2#y", "created")}),
        (["t1", "t3"], {("t1#x", "changed"), ("t1#x", "before")}),
    ]:
        req = request(
            aws, table, start, end, tmp_path, audit_table_name=audit, tenancy="pk:^([^#]+)#", tenants=tenants
        )
        found = by_key(req.key_schema, list(audit_table.find(req)))
        assert set(found) == expected, tenants
    req = request(aws, table, start, end, tmp_path, audit_table_name=audit)
    found = by_key(req.key_schema, list(audit_table.find(req)))
    assert {k: f.action for k, f in found.items()} == {
        ("t1#x", "changed"): "update",
        ("t2#y", "created"): "create",
        ("t1#x", "before"): "delete",
    }
    assert found[("t1#x", "changed")].first_change == _time(records[3])
    assert req.stats.counters["ttl_deletes_ignored"] == 1


def test_audit_table_name_of_another_table_is_refused(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(InputError, match="not an audit table"):
        audit_table.ensure_audit_table(aws, table)
    req = request(aws, table, now - dt.timedelta(hours=1), now, tmp_path, audit_table_name=table)
    with pytest.raises(InputError, match="not an audit table"):
        list(audit_table.find(req))
