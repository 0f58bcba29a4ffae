"""Items put into the sandbox over HTTP come back equal by value, with numbers as DynamoDB returns them.

One table per key shape (created on first use); every read is a real GetItem through boto3.
"""

from __future__ import annotations

import itertools
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery_helpers.items import KeySchema, items_equal, normalize_number
from tests.properties.reference import reference_equal
from tests.properties.strategies import items, schemas

_tables: dict[KeySchema, str] = {}
_counter = itertools.count()


@pytest.fixture(scope="module")
def ddb(sandbox: Any) -> Any:
    return boto3.client(
        "dynamodb",
        region_name=sandbox.region,
        endpoint_url=sandbox.endpoint_url,
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
    )


def _table(ddb: Any, schema: KeySchema) -> str:
    if schema not in _tables:
        name = f"prop-roundtrip-{next(_counter)}"
        key = [{"AttributeName": schema.hash_name, "KeyType": "HASH"}]
        if schema.range_name:
            key.append({"AttributeName": schema.range_name, "KeyType": "RANGE"})
        ddb.create_table(
            TableName=name,
            KeySchema=key,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": t} for n, t in schema.types().items()
            ],
        )
        _tables[schema] = name
    return _tables[schema]


def _numbers(value: Any) -> list[str]:
    ((tag, inner),) = value.items()
    if tag == "N":
        return [inner]
    if tag == "NS":
        return list(inner)
    if tag == "L":
        return [n for v in inner for n in _numbers(v)]
    if tag == "M":
        return [n for v in inner.values() for n in _numbers(v)]
    return []


@given(data=st.data())
def test_put_then_get_gives_back_the_item(ddb, data):
    schema = data.draw(schemas())
    item = data.draw(items(schema))
    table = _table(ddb, schema)
    ddb.put_item(TableName=table, Item=item)
    got = ddb.get_item(TableName=table, Key=schema.key_of(item), ConsistentRead=True)["Item"]
    assert reference_equal(got, item) and items_equal(got, item)
    returned = [n for v in got.values() for n in _numbers(v)]
    assert returned == [normalize_number(n) for n in returned]  # trimmed and plain, as AWS returns them


def test_a_projected_scan_reads_items_holding_numbers_beyond_1e38(ddb):
    schema = KeySchema("pk", "S")
    table = _table(ddb, schema)
    ddb.put_item(TableName=table, Item={"pk": {"S": "huge"}, "n": {"N": "1.5E+40"}, "s": {"S": "x"}})
    pages = ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, n")
    found = [i for p in pages for i in p["Items"] if i["pk"] == {"S": "huge"}]
    assert found == [{"pk": {"S": "huge"}, "n": {"N": "15" + "0" * 39}}]
