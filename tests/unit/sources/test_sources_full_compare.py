"""The full_compare source reports every difference between the restored and the live table, any key shape."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary

from recovery_helpers.errors import InputError
from recovery_helpers.items import from_python, iter_chunks
from recovery_helpers.sources import full_compare
from tests.conftest import create_table
from tests.sources_support import request

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)

SHAPES = {
    "string-hash": (("id", "S"), None),
    "number-hash-string-range": (("id", "N"), ("sort", "S")),
    "binary-hash-number-range": (("id", "B"), ("sort", "N")),
    "string-hash-binary-range": (("id", "S"), ("sort", "B")),
}


def _key(shape: str, i: int) -> dict:
    (h, ht), rng = SHAPES[shape]
    value = {"S": f"k{i}", "N": Decimal(i), "B": Binary(bytes([i, 0, 255]))}
    key = {h: value[ht]}
    if rng:
        ranges = {"S": f"s{i % 3}", "N": Decimal(i % 3) + Decimal("0.5"), "B": Binary(bytes([i % 3]))}
        key[rng[0]] = ranges[rng[1]]
    return key


def _item(shape: str, i: int, **changes) -> dict:
    item = {
        **_key(shape, i),
        "s": f"text {i}",
        "n": Decimal("1.50"),
        "b": Binary(b"\x00\x01"),
        "t": True,
        "z": None,
        "m": {"nested": {"deep": [1, "two", {Decimal(3)}]}},
        "l": [1, "x", Binary(b"\x02")],
        "ss": {"a", "b", "c"},
        "ns": {Decimal(1), Decimal("2.5")},
        "bs": {Binary(b"\x01"), Binary(b"\x02")},
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not ...}


def _write(aws, table, items):
    for chunk in iter_chunks(items, 25):
        aws.dynamodb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": from_python(i)}} for i in chunk]}
        )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_reports_exactly_the_differences(aws, unique_name, tmp_path, shape):
    hash_key, range_key = SHAPES[shape]
    live = create_table(aws.dynamodb, unique_name, hash_key=hash_key, range_key=range_key, pitr=False)
    restored = create_table(
        aws.dynamodb, f"{unique_name}-r", hash_key=hash_key, range_key=range_key, pitr=False
    )
    n = 60
    _write(aws, restored, [_item(shape, i) for i in range(n)])
    live_items = []
    for i in range(n):
        if i == 3:
            continue  # deleted by the incident
        if i == 5:
            live_items.append(_item(shape, i, n=Decimal(2)))  # changed: number value
        elif i == 7:
            # a change deep inside a map
            live_items.append(_item(shape, i, m={"nested": {"deep": [1, "two", {Decimal(4)}]}}))
        elif i == 9:
            live_items.append(_item(shape, i, ss=...))  # attribute removed
        elif i == 11:
            # the same item, written differently: number trailing zero, set order; equal by value
            live_items.append(_item(shape, i, n=Decimal("1.5"), ss={"c", "b", "a"}))
        else:
            live_items.append(_item(shape, i))
    live_items.append(_item(shape, 200))  # created by the incident
    _write(aws, live, live_items)

    req = request(
        aws,
        live,
        NOW,
        NOW,
        tmp_path,
        restored_table_name=restored,
        options={"total_segments": 4, "max_workers": 2},
    )
    found = list(full_compare.find(req))
    schema = req.key_schema
    by_id = {schema.key_id(f.key): f for f in found}
    expected = {
        schema.key_id(from_python(_key(shape, i))): a
        for i, a in [(3, "delete"), (5, "update"), (7, "update"), (9, "update"), (200, "create")]
    }
    assert {k: f.action for k, f in by_id.items()} == expected
    assert len(found) == len(expected), "each difference once"
    assert all(f.has_images and f.source == "full_compare" for f in found)
    deleted = by_id[schema.key_id(from_python(_key(shape, 3)))]
    assert deleted.after is None and deleted.before["s"] == {"S": "text 3"}
    created = by_id[schema.key_id(from_python(_key(shape, 200)))]
    assert created.before is None and created.after["s"] == {"S": "text 200"}
    changed = by_id[schema.key_id(from_python(_key(shape, 5)))]
    assert changed.before["n"] == {"N": "1.50"} or changed.before["n"] == {"N": "1.5"}
    assert changed.after["n"] == {"N": "2"}
    assert req.stats.read == n and req.stats.counters["live_keys"] == n


def test_tenants_filter_on_item_attributes(aws, unique_name, tmp_path):
    live = create_table(aws.dynamodb, unique_name, pitr=False)
    restored = create_table(aws.dynamodb, f"{unique_name}-r", pitr=False)
    _write(aws, restored, [{"pk": f"p{i}", "sk": "x", "tenant": f"t{i % 3}", "v": 1} for i in range(9)])
    _write(aws, live, [{"pk": f"p{i}", "sk": "x", "tenant": f"t{i % 3}", "v": 2} for i in range(9)])
    req = request(
        aws, live, NOW, NOW, tmp_path, restored_table_name=restored, tenancy="tenant", tenants=["t1", "t2"]
    )
    found = list(full_compare.find(req))
    assert sorted(f.key["pk"]["S"] for f in found) == ["p1", "p2", "p4", "p5", "p7", "p8"]
    assert req.stats.counters["filtered_tenant"] == 3


def test_needs_a_restored_table_with_the_same_key(aws, unique_name, tmp_path):
    live = create_table(aws.dynamodb, unique_name, pitr=False)
    other = create_table(aws.dynamodb, f"{unique_name}-o", range_key=None, pitr=False)
    with pytest.raises(InputError, match="03_restore"):
        list(full_compare.find(request(aws, live, NOW, NOW, tmp_path)))
    with pytest.raises(InputError, match="not the same table"):
        list(full_compare.find(request(aws, live, NOW, NOW, tmp_path, restored_table_name=other)))
