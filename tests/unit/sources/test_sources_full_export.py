"""The full_export source: two FULL exports (restore time, now) compared on an engine; no restored table."""

from __future__ import annotations

import datetime as dt

import pytest

from recovery_helpers.errors import InputError
from recovery_helpers.sources import full_export
from tests.conftest import create_table
from tests.sources_support import by_key, request


def _boundary(sandbox) -> dt.datetime:
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


@pytest.fixture
def incident(aws, sandbox, unique_name):
    """A table with writes before, during and after a window; several export data files per export."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("pk", "B"), range_key=("sk", "N"))
    bucket = unique_name.lower()[:50]
    aws.s3.create_bucket(Bucket=bucket)
    sandbox.configure(export_items_per_file=3)

    def put(pk: bytes, sk: str, **attrs):
        ddb.put_item(TableName=table, Item={"pk": {"B": pk}, "sk": {"N": sk}, **attrs})

    for i in range(8):
        put(
            b"\x00t1",
            str(i),
            v={"N": "1.5"},
            s={"SS": ["a", "b"]},
            m={"M": {"x": {"N": "1"}, "y": {"S": "z"}}},
        )
    put(b"\x00t2", "1", v={"N": "1"})
    t0 = _boundary(sandbox)
    put(
        b"\x00t1",
        "1",
        v={"N": "1.5000000000000000000000000000000000001"},
        s={"SS": ["a", "b"]},
        m={"M": {"x": {"N": "1"}, "y": {"S": "z"}}},
    )  # changed (38th digit)
    ddb.delete_item(TableName=table, Key={"pk": {"B": b"\x00t1"}, "sk": {"N": "2"}})  # deleted
    put(b"\x00t2", "9", v={"N": "9"}, tenant={"S": "t2"})  # created
    put(b"\x00t1", "3", m={"M": {"y": {"S": "z"}, "x": {"N": "1.0"}}}, s={"SS": ["b", "a"]}, v={"N": "15E-1"})
    t1 = _boundary(sandbox)  # ^ the same item rewritten in another order and notation: not a finding
    return {"table": table, "bucket": bucket, "t0": t0, "t1": t1}


def _request(aws, tmp_path, world, **options):
    return request(
        aws,
        world["table"],
        world["t0"],
        world["t1"],
        tmp_path,
        options={"export_bucket": world["bucket"], **options},
    )


def test_finds_what_differs_between_the_two_exports_with_both_images(aws, incident, tmp_path):
    records = []
    req = _request(
        aws, tmp_path, incident, record=lambda action, result, **details: records.append((action, details))
    )
    found = by_key(req.key_schema, list(full_export.find(req)))
    assert set(found) == {("AHQx", 1), ("AHQx", 2), ("AHQy", 9)}
    changed = found[("AHQx", 1)]
    assert changed.action == "update" and changed.has_images and changed.first_change is None
    assert changed.before["v"] == {"N": "1.5"}
    assert changed.after["v"] == {"N": "1.5000000000000000000000000000000000001"}
    assert changed.before["pk"] == {"B": b"\x00t1"}  # binary back as bytes, as every source gives it
    assert found[("AHQx", 2)].action == "delete" and found[("AHQx", 2)].after is None
    assert found[("AHQy", 9)].action == "create" and found[("AHQy", 9)].before is None
    assert req.stats.read == 9 and req.stats.counters["equal_but_rewritten"] == 1
    assert [a for a, _ in records] == ["start full export", "start full export"]
    assert records[0][1]["export_time"] == incident["t0"].isoformat()
    assert not list(tmp_path.glob("full-export-work*")), "downloads are cleaned up"

    # a re-run reuses the "before" export (same ClientToken); given both exports, it starts none
    again = _request(
        aws, tmp_path, incident, record=lambda action, result, **details: records.append((action, details))
    )
    assert len(list(full_export.find(again))) == 3
    assert records[2][1]["export_arn"] == records[0][1]["export_arn"]
    arns = [records[0][1]["export_arn"], records[1][1]["export_arn"]]
    reused = request(
        aws, incident["table"], incident["t0"], incident["t1"], tmp_path, options={"export_arns": arns[::-1]}
    )  # in any order, and no bucket needed
    assert len(list(full_export.find(reused))) == 3
    assert reused.stats.counters["exports_started"] == 0

    # tenants: filtered on the images
    req = request(
        aws,
        incident["table"],
        incident["t0"],
        incident["t1"],
        tmp_path,
        tenancy="tenant",
        tenants=["t2"],
        options={"export_arns": arns},
    )
    assert set(by_key(req.key_schema, list(full_export.find(req)))) == {("AHQy", 9)}


def test_bad_input_is_refused_before_any_export(aws, incident, tmp_path, sandbox):
    calls = sandbox.calls.get("ExportTableToPointInTime", 0)
    late = (incident["t0"] + dt.timedelta(seconds=1)).isoformat()
    with pytest.raises(InputError, match="after incident_start"):
        list(full_export.find(_request(aws, tmp_path, incident, restore_time=late)))
    with pytest.raises(InputError, match="WITH an offset"):
        list(full_export.find(_request(aws, tmp_path, incident, restore_time="2025-01-01T00:00:00")))
    with pytest.raises(InputError, match="compare_engine"):
        list(full_export.find(_request(aws, tmp_path, incident, compare_engine="pandas")))
    with pytest.raises(InputError, match="export_bucket"):
        list(full_export.find(request(aws, incident["table"], incident["t0"], incident["t1"], tmp_path)))
    assert sandbox.calls.get("ExportTableToPointInTime", 0) == calls
