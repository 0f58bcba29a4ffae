"""The incremental_export source: every item changed in the window, both versions, no restored table."""

from __future__ import annotations

import datetime as dt

import pytest

from recovery_helpers.errors import InputError, NotReadyError
from recovery_helpers.sources import incremental_export
from tests.conftest import create_table
from tests.sources_support import by_key, request


def _boundary(sandbox) -> dt.datetime:
    """A whole-second instant strictly between the writes before and after it."""
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


def _put(ddb, table, pk, sk, **attrs):
    item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: v for k, v in attrs.items()}}
    ddb.put_item(TableName=table, Item=item)


@pytest.fixture
def setup(aws, unique_name):
    table = create_table(aws.dynamodb, unique_name)
    bucket = unique_name.lower()[:50]
    aws.s3.create_bucket(Bucket=bucket)
    return table, bucket


def test_finds_the_window_with_before_and_after_images(aws, sandbox, setup, tmp_path):
    ddb = aws.dynamodb
    table, bucket = setup
    _put(ddb, table, "t1#a", "1", v={"N": "1"}, bin={"B": b"\x00\x01"})
    _put(ddb, table, "t1#a", "2", v={"N": "1"})
    _put(ddb, table, "t2#b", "1", v={"N": "1"})
    _put(ddb, table, "t2#b", "untouched", v={"N": "1"})
    t0 = _boundary(sandbox)
    _put(ddb, table, "t1#a", "1", v={"N": "2"}, bin={"B": b"\x00\x02"})  # changed
    ddb.delete_item(TableName=table, Key={"pk": {"S": "t1#a"}, "sk": {"S": "2"}})  # deleted
    _put(ddb, table, "t2#b", "new", v={"N": "9"})  # created
    _put(ddb, table, "t2#b", "1", v={"N": "5"})  # changed twice
    _put(ddb, table, "t2#b", "1", v={"N": "6"})
    t1 = _boundary(sandbox)
    _put(ddb, table, "t2#b", "untouched", v={"N": "2"})  # after the window
    _boundary(sandbox)

    records = []
    req = request(
        aws,
        table,
        t0,
        t1,
        tmp_path,
        options={
            "export_bucket": bucket,
            "export_min_window_seconds": 1,
            "record": lambda action, result, **details: records.append((action, details)),
        },
    )
    found = by_key(req.key_schema, list(incremental_export.find(req)))
    assert set(found) == {("t1#a", "1"), ("t1#a", "2"), ("t2#b", "new"), ("t2#b", "1")}
    changed = found[("t1#a", "1")]
    assert changed.action == "update" and changed.has_images
    assert changed.before["v"] == {"N": "1"} and changed.before["bin"] == {"B": b"\x00\x01"}
    assert changed.after["v"] == {"N": "2"} and changed.after["bin"] == {"B": b"\x00\x02"}
    assert found[("t1#a", "2")].action == "delete" and found[("t1#a", "2")].after is None
    assert found[("t2#b", "new")].action == "create" and found[("t2#b", "new")].before is None
    twice = found[("t2#b", "1")]
    assert twice.before["v"] == {"N": "1"} and twice.after["v"] == {"N": "6"}
    assert all(t0 <= f.first_change < t1 for f in found.values())
    assert [a for a, _ in records] == ["start incremental export"]
    assert req.stats.read == 4 and req.stats.counters["exports"] == 1
    # a re-run over the same window picks up the same export instead of starting another
    again = request(
        aws,
        table,
        t0,
        t1,
        tmp_path,
        options={
            "export_bucket": bucket,
            "export_min_window_seconds": 1,
            "record": lambda action, result, **details: records.append((action, details)),
        },
    )
    assert len(list(incremental_export.find(again))) == 4
    assert records[0][1]["export_arn"] == records[1][1]["export_arn"]

    # tenants: filtered on the images' key attribute
    req = request(
        aws,
        table,
        t0,
        t1,
        tmp_path,
        tenancy="pk:^([^#]+)#",
        tenants=["t2"],
        options={"export_bucket": bucket, "export_min_window_seconds": 1},
    )
    assert set(by_key(req.key_schema, list(incremental_export.find(req)))) == {("t2#b", "new"), ("t2#b", "1")}


def test_a_short_window_is_widened_backwards(aws, sandbox, setup, tmp_path):
    ddb = aws.dynamodb
    table, bucket = setup
    sandbox.advance(120)  # PITR history long enough to widen into
    _put(ddb, table, "p", "earlier", v={"N": "1"})
    sandbox.advance(10)
    t0 = _boundary(sandbox)
    _put(ddb, table, "p", "inside", v={"N": "1"})
    t1 = _boundary(sandbox)
    req = request(
        aws, table, t0, t1, tmp_path, options={"export_bucket": bucket, "export_min_window_seconds": 60}
    )
    found = by_key(req.key_schema, list(incremental_export.find(req)))
    # the widened window also holds the earlier (legitimate) change: the diff shows it as it is
    assert set(found) == {("p", "inside"), ("p", "earlier")}
    assert any("widened backwards" in p for p in req.stats.problems)


def test_a_window_over_24_hours_is_a_chain(aws, sandbox, setup, tmp_path):
    ddb = aws.dynamodb
    table, bucket = setup
    _put(ddb, table, "p", "a", v={"N": "0"})
    _put(ddb, table, "p", "c", v={"N": "0"})
    _put(ddb, table, "p", "d", v={"N": "0"})
    t0 = _boundary(sandbox)
    _put(ddb, table, "p", "a", v={"N": "1"})  # first part of the window
    _put(ddb, table, "p", "b", v={"N": "1"})  # created in the first part...
    _put(ddb, table, "p", "d", v={"N": "1"})
    sandbox.advance(14 * 3600)
    _put(ddb, table, "p", "a", v={"N": "2"})  # ...changed again in the second part
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "b"}})  # ...and deleted
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "c"}})
    sandbox.advance(14 * 3600)
    t1 = _boundary(sandbox)
    req = request(
        aws, table, t0, t1, tmp_path, options={"export_bucket": bucket, "export_min_window_seconds": 1}
    )
    found = by_key(req.key_schema, list(incremental_export.find(req)))
    assert req.stats.counters["exports"] == 2
    assert set(found) == {("p", "a"), ("p", "b"), ("p", "c"), ("p", "d")}
    a = found[("p", "a")]
    assert (a.before["v"], a.after["v"], a.action) == ({"N": "0"}, {"N": "2"}, "update")
    b = found[("p", "b")]
    assert b.before is None and b.after is None and b.has_images  # created and gone again: absent both times
    assert found[("p", "c")].action == "delete" and found[("p", "c")].before["v"] == {"N": "0"}
    assert found[("p", "d")].after["v"] == {"N": "1"}
    assert not list(tmp_path.glob("*.sqlite")), "the merge file is cleaned up"


def test_needs_a_bucket_and_pitr(aws, sandbox, unique_name, tmp_path):
    now = sandbox.now()
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    req = request(aws, table, now - dt.timedelta(hours=1), now, tmp_path, options={})
    with pytest.raises(InputError, match="export_bucket"):
        list(incremental_export.find(req))
    req = request(aws, table, now - dt.timedelta(hours=1), now, tmp_path, options={"export_bucket": "b-x-y"})
    with pytest.raises(InputError, match="point-in-time recovery is not enabled"):
        list(incremental_export.find(req))
    aws.dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    req = request(
        aws,
        table,
        sandbox.now() - dt.timedelta(minutes=5),
        sandbox.now(),
        tmp_path,
        options={"export_bucket": "b-x-y"},
    )
    with pytest.raises(NotReadyError, match="another impacted_source"):
        list(incremental_export.find(req))
