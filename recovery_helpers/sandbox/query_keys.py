"""A Query's key conditions checked against the key schema it reads (the table's, or the index's), as DynamoDB does.

moto answered a Query whose condition no key can serve - a range condition on the partition key, a second
condition on a table without a sort key, a condition on a GSI's non-key attribute - or read it some other way.
DynamoDB refuses each ("Query key condition not supported", ...), and refuses a starting key outside the sort-key
condition ("does not match the range key predicate"). Rules and their order from dynalite's ``actions/query.js``
(architect/dynalite, whose tests run against DynamoDB too); a KeyConditionExpression is read by ``conditions``.
"""

from __future__ import annotations

import base64
from typing import Any

from .conditions import SyntaxFailure, greater, parse
from .validation import Refusal

NOT_INDEXABLE = {"NULL", "NOT_NULL", "NE", "CONTAINS", "NOT_CONTAINS", "IN"}
NOT_SUPPORTED = "Query key condition not supported"


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


def key_conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """{attribute: {ComparisonOperator, AttributeValueList}} of a Query (legacy KeyConditions, or its
    KeyConditionExpression read as DynamoDB reads it); None when it cannot be read here (moto answers)."""
    if body.get("KeyConditions"):
        return body["KeyConditions"]
    text = body.get("KeyConditionExpression")
    if not isinstance(text, str) or not text:
        return None
    from .condition_rules import key_conditions as convert

    try:
        return convert(
            parse(text, body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues"))
        )
    except (SyntaxFailure, Refusal):
        return None


def check(schema: list[tuple[str, str, bool]], keys: dict[str, dict[str, Any]]) -> None:
    """Raise ValidationException for key conditions the key schema (name, type, is_hash) cannot serve."""
    for name, kind, is_hash in schema:
        if is_hash and len(schema) == 1 and len(keys) > 1:
            raise _invalid(NOT_SUPPORTED)
        if name not in keys:
            if is_hash or len(keys) > 1:
                raise _invalid(f"Query condition missed key schema element: {name}")
            continue
        op = keys[name].get("ComparisonOperator")
        if op in NOT_INDEXABLE:
            raise _invalid("Attempted conditional constraint is not an indexable operation")
        if any(value.get(kind) is None for value in keys[name].get("AttributeValueList") or []):
            raise _invalid(
                "One or more parameter values were invalid: Condition parameter type does not match schema type"
            )
        if is_hash and op != "EQ":
            raise _invalid(NOT_SUPPORTED)


def matches(op: str, value: dict[str, Any], bounds: list[dict[str, Any]]) -> bool:
    """Whether a key value satisfies a sort-key condition (EQ LT LE GT GE BETWEEN BEGINS_WITH)."""
    kind = next(iter(value), None)
    if kind is None or any(kind not in b for b in bounds) or not bounds:
        return False
    x, first, last = value[kind], bounds[0][kind], bounds[-1][kind]
    if op == "BEGINS_WITH":
        if kind == "B":
            return base64.b64decode(x).startswith(base64.b64decode(first))
        return kind == "S" and x.startswith(first)
    above, below = greater(kind, x, first), greater(kind, first, x)
    equal = not above and not below
    return {
        "EQ": equal,
        "LT": below,
        "LE": not above,
        "GT": above,
        "GE": not below,
        "BETWEEN": not below and not greater(kind, x, last),
    }.get(op, False)


def check_start(body: dict[str, Any], start: dict[str, Any], schema: list[tuple[str, str, bool]]) -> None:
    """A Query's starting key: in the partition read, and (with a sort-key condition) satisfying it."""
    keys = key_conditions(body)
    if not keys or schema[0][0] not in keys:
        return
    hash_name = schema[0][0]
    wanted = (keys[hash_name].get("AttributeValueList") or [None])[0]
    range_name = schema[1][0] if len(schema) > 1 else None
    if range_name and range_name in keys:
        condition = keys[range_name]
        if not matches(
            condition["ComparisonOperator"], start[range_name], condition.get("AttributeValueList") or []
        ):
            raise _invalid("The provided starting key does not match the range key predicate")
        if wanted is not None and start[hash_name] != wanted:
            raise _invalid("The query can return at most one row and cannot be restarted")
    elif wanted is not None and start[hash_name] != wanted:
        raise _invalid("The provided starting key is outside query boundaries based on provided conditions")
