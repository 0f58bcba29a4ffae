"""Key attributes in projections and filters, checked as DynamoDB checks them.

moto accepted a Query filter on the partition or sort key being read (DynamoDB: "can only contain non-primary key
attributes"; a key belongs in the key condition) and a nested path into a key attribute (``a.b``, ``a[0]``: key
attributes are scalars) in a projection or a filter. Rules and wording ported from dynalite's ``actions/query.js``,
``scan.js`` and ``getItem.js`` (architect/dynalite, Apache-2.0), whose tests run against real DynamoDB too.
"""

from __future__ import annotations

import re
from typing import Any

_PATH_HEAD = re.compile(r"(?<![:#.0-9A-Za-z_])(#?[A-Za-z_][0-9A-Za-z_]*)\s*([(.\[])?")
_WORDS = {"and", "or", "not", "between", "in"}


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


def path_heads(expression: str | None, names: dict[str, str]) -> dict[str, bool]:
    """{attribute at the head of a path: whether some path goes into it (``.`` or ``[``)} in ``expression``."""
    heads: dict[str, bool] = {}
    for match in _PATH_HEAD.finditer(expression or ""):
        word, after = match.group(1), match.group(2)
        if after == "(" or (not word.startswith("#") and word.lower() in _WORDS):
            continue  # a function, or a keyword
        name = names.get(word, word)
        heads[name] = heads.get(name, False) or after in (".", "[")
    return heads


def _nested_into_keys(table: Any, heads: dict[str, bool]) -> None:
    from .item_rules import _key_schema

    for name, _, _ in _key_schema(table):
        if heads.get(name):
            raise _invalid(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: "
                f"Key: {name}"
            )
    for index in list(table.indexes) + list(table.global_indexes):
        for part in index.schema:
            if heads.get(part["AttributeName"]):
                raise _invalid(
                    "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: "
                    f"IndexKey: {part['AttributeName']}"
                )


def check(table: Any, body: dict[str, Any], operation: str) -> None:
    """Raise ValidationException for key attributes misused in this GetItem/Query/Scan's projection or filter."""
    names = body.get("ExpressionAttributeNames") or {}
    if body.get("IndexName"):
        from .start_keys import _schemas

        if not _schemas(table, body["IndexName"])[1]:
            return  # no such index: moto answers that first
    _nested_into_keys(table, path_heads(body.get("ProjectionExpression"), names))
    filter_heads = path_heads(body.get("FilterExpression"), names)
    if operation == "query":
        from .start_keys import _schemas

        _, schema, _ = _schemas(table, body.get("IndexName"))
        legacy = body.get("QueryFilter")
        heads = dict.fromkeys(legacy, False) if legacy else filter_heads
        for name, _, _ in schema:
            if name in heads:
                label = "QueryFilter" if legacy else "Filter Expression"
                raise _invalid(
                    f"{label} can only contain non-primary key attributes: Primary key attribute: {name}"
                )
    if operation != "get_item":
        _nested_into_keys(table, filter_heads)
