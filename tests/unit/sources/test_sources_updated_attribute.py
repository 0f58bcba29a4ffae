"""The updated_attribute source finds items stamped inside the window, whatever the stamp's format."""

from __future__ import annotations

import datetime as dt

from recovery_helpers.sources import updated_attribute
from tests.conftest import create_table
from tests.sources_support import by_key, request

START = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
END = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _stamps(when: dt.datetime) -> dict[str, dict]:
    """The same instant in every format the source accepts."""
    return {
        "iso_z": {"S": when.isoformat().replace("+00:00", "Z")},
        "iso_offset": {"S": when.astimezone(dt.timezone(dt.timedelta(hours=-7))).isoformat()},
        "seconds": {"N": str(int(when.timestamp()))},
        "millis": {"N": str(int(when.timestamp() * 1000))},
        "digits": {"S": str(int(when.timestamp() * 1000))},
    }


def test_finds_items_updated_in_window_in_every_format(aws, unique_name, tmp_path):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("id", "N"), range_key=("kind", "S"), pitr=False)
    cases = {
        "before": START - dt.timedelta(seconds=1),
        "start": START,  # inclusive
        "inside": START + dt.timedelta(minutes=30),
        "last": END - dt.timedelta(seconds=1),
        "end": END,  # exclusive
        "after": END + dt.timedelta(hours=3),
    }
    n = 0
    expected = set()
    for label, when in cases.items():
        for fmt, value in _stamps(when).items():
            n += 1
            ddb.put_item(
                TableName=table,
                Item={
                    "id": {"N": str(n)},
                    "kind": {"S": f"{label}/{fmt}"},
                    "updatedAt": value,
                    "tenant": {"S": f"t{n % 2}"},
                },
            )
            if label in ("start", "inside", "last"):
                expected.add((n, f"{label}/{fmt}"))
    ddb.put_item(TableName=table, Item={"id": {"N": "900"}, "kind": {"S": "no-stamp"}})
    ddb.put_item(
        TableName=table,
        Item={"id": {"N": "901"}, "kind": {"S": "garbage"}, "updatedAt": {"S": "2024-05-01 around noon"}},
    )

    req = request(
        aws,
        table,
        START,
        END,
        tmp_path,
        updated_attribute="updatedAt",
        options={"total_segments": 3, "max_workers": 2},
    )
    found = by_key(req.key_schema, list(updated_attribute.find(req)))
    assert set(found) == expected
    assert (
        found[(next(i for i, k in expected if k == "inside/millis"), "inside/millis")].first_change
        == cases["inside"]
    )
    assert all(f.action == "unknown" and f.source == "updated_attribute" for f in found.values())
    assert req.stats.malformed == 1
    assert any("deletes are invisible" in p for p in req.stats.problems)

    # a tenant in a non-key attribute does not filter here: only the live item is read, and the incident may
    # have moved an item out of t1 (04_diff selects on both versions, restored and live)
    req = request(
        aws, table, START, END, tmp_path, updated_attribute="updatedAt", tenancy="tenant", tenants=["t1"]
    )
    found = by_key(req.key_schema, list(updated_attribute.find(req)))
    assert set(found) == expected
    # a tenant in the key never moves: it filters at the source
    req = request(
        aws,
        table,
        START,
        END,
        tmp_path,
        updated_attribute="updatedAt",
        tenancy="id:^(\\d*[13579])$",
        tenants=[str(k[0]) for k in expected if k[0] % 2 == 1],
    )
    found = by_key(req.key_schema, list(updated_attribute.find(req)))
    assert set(found) == {k for k in expected if k[0] % 2 == 1}


def test_uses_a_tenant_gsi_when_there_is_one(aws, sandbox, unique_name, tmp_path):
    ddb = aws.dynamodb
    ddb.create_table(
        TableName=unique_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": t}
            for a, t in [("pk", "B"), ("tenantId", "S"), ("updatedAt", "N")]
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-tenant-updated",
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "KeySchema": [
                    {"AttributeName": "tenantId", "KeyType": "HASH"},
                    {"AttributeName": "updatedAt", "KeyType": "RANGE"},
                ],
            }
        ],
    )
    minute = dt.timedelta(minutes=1)
    stamps = {
        b"\x01": ("t1", START + 5 * minute),
        b"\x02": ("t1", START - 5 * minute),
        b"\x03": ("t2", START + 5 * minute),
        b"\x04": ("t3", END - dt.timedelta(seconds=1)),
    }
    for pk, (tenant, when) in stamps.items():
        ddb.put_item(
            TableName=unique_name,
            Item={
                "pk": {"B": pk},
                "tenantId": {"S": tenant},
                "updatedAt": {"N": str(int(when.timestamp() * 1000))},
            },
        )
    sandbox.reset_counters()
    req = request(
        aws,
        unique_name,
        START,
        END,
        tmp_path,
        updated_attribute="updatedAt",
        tenancy="tenantId",
        tenants=["t1", "t3"],
    )
    found = list(updated_attribute.find(req))
    assert sorted(f.key["pk"]["B"] for f in found) == [b"\x01", b"\x04"]
    assert any("moved out of t1, t3" in p for p in req.stats.problems)  # the index knows live tenants only
    assert sandbox.calls.get("Query") == 2 and sandbox.calls.get("Scan", 0) <= 1  # at most a one-item probe
