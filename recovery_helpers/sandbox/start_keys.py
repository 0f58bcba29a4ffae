"""Scan/Query ExclusiveStartKey checked against the table's (and index's) key schema, as DynamoDB does.

moto took any map as a starting key: one missing a key attribute, of the wrong type, with an extra attribute, for
another index, or (Query) for another partition than the one queried; the page then started somewhere or nowhere.
DynamoDB refuses each with a ValidationException. Rules, order and wording as DynamoDB answers them: ported from
dynalite's ``actions/scan.js`` and ``actions/query.js`` (architect/dynalite, Apache-2.0), whose tests run against
real DynamoDB too. Runs only when a request carries an ExclusiveStartKey (pages after the first).
"""

from __future__ import annotations

import re
from typing import Any

INVALID = "The provided starting key is invalid"
NO_MATCH = "The provided key element does not match the schema"


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


def _schemas(
    table: Any, index_name: str | None
) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str, bool]], Any]:
    """(the table's key schema, the schema pages are read by - the index's if one is named -, the index)."""
    from .item_rules import _key_schema

    table_schema = _key_schema(table)
    if not index_name:
        return table_schema, table_schema, None
    types = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    for index in list(table.indexes) + list(table.global_indexes):
        if index.name == index_name:
            parts = [
                (p["AttributeName"], types.get(p["AttributeName"], "S"), p["KeyType"] == "HASH")
                for p in index.schema
            ]
            return table_schema, parts, index
    return table_schema, [], None  # no such index: moto answers that


def _condition_names(body: dict[str, Any]) -> set[str]:
    """The attributes a Query's key condition names (legacy KeyConditions or KeyConditionExpression)."""
    if body.get("KeyConditions"):
        return set(body["KeyConditions"])
    names = body.get("ExpressionAttributeNames") or {}
    words = re.findall(r"(?<![:\w])#?[A-Za-z_][0-9A-Za-z_]*", body.get("KeyConditionExpression") or "")
    return {names.get(w, w) for w in words}


def check(table: Any, body: dict[str, Any], *, query: bool) -> None:
    """Raise ValidationException for an ExclusiveStartKey DynamoDB refuses for this Scan (query=False) or Query."""
    from .item_rules import _check_key_piece

    start = body.get("ExclusiveStartKey")
    if start is None:
        return
    index_name = body.get("IndexName")
    table_schema, read_schema, index = _schemas(table, index_name)
    if (index_name and not read_schema) or (query and read_schema[0][0] not in _condition_names(body)):
        return  # moto answers these (no such index; "Query condition missed key schema element")
    names = [n for n, _, _ in table_schema]
    names += [n for n, _, _ in read_schema if n not in names]
    if len(start) != len(names):
        raise _invalid(INVALID if query or index_name else f"{INVALID}: {NO_MATCH}")
    if query or index_name:
        for name, kind, is_hash in read_schema:
            if name not in start:
                raise _invalid(INVALID)
            if kind not in start[name]:
                raise _invalid(NO_MATCH)
            _check_key_piece(name, kind, start[name][kind], is_hash)
    if (
        index in list(table.global_indexes)
        and body.get("Select") == "ALL_ATTRIBUTES"
        and (index.projection or {}).get("ProjectionType") != "ALL"
    ):
        raise _invalid(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for "
            f"global secondary index {index_name} because its projection type is not ALL"
        )
    for name, kind, is_hash in table_schema:
        if name not in start or kind not in start[name]:
            raise _invalid(f"{INVALID}: {NO_MATCH}")
        try:
            _check_key_piece(name, kind, start[name][kind], is_hash)
        except Exception as exc:  # noqa: BLE001 - moto's validation exception: the same words, prefixed
            raise _invalid(f"{INVALID}: {getattr(exc, 'message', exc)}") from None
    if query:
        from .query_keys import check_start

        check_start(body, start, read_schema)
    elif not index_name:
        _check_segment(body, start, table_schema[0])


def _check_segment(body: dict[str, Any], start: dict[str, Any], hash_key: tuple[str, str, bool]) -> None:
    """A segmented Scan's start key must lie in the segment asked for (DynamoDB refuses one from another)."""
    segment, total = body.get("Segment"), body.get("TotalSegments")
    if segment is None or not total or total < 2:
        return
    from .patches import segment_of

    name, kind, _ = hash_key
    value = start[name][kind]
    if segment_of(value if kind != "B" else _b64(value), kind, total) != segment:
        raise _invalid(
            f"{INVALID}: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. "
            f"TotalSegments: {total} Segment: {segment}"
        )


def _b64(value: Any) -> bytes:
    import base64

    return value if isinstance(value, (bytes, bytearray)) else base64.b64decode(value)
