"""DynamoDB's legacy conditional parameters (Expected, QueryFilter, ScanFilter), as expressions moto evaluates well.

moto ignored ``Expected`` on DeleteItem (the item was deleted), answered HTTP 500 on a QueryFilter over an item
missing the attribute, and returned an item twice when a QueryFilter met a range condition. DynamoDB defines each
legacy operator by an expression (Developer Guide, "Legacy conditional parameters"), so the sandbox checks the
legacy parameters as DynamoDB does, then rewrites them into ConditionExpression / FilterExpression.
"""

from __future__ import annotations

from typing import Any

from .conditions import greater
from .validation import VALIDATION, Refusal, check_attribute_value

_ARGUMENTS = {
    "NULL": (0, 0),
    "NOT_NULL": (0, 0),
    "EQ": (1, 1),
    "NE": (1, 1),
    "LE": (1, 1),
    "LT": (1, 1),
    "GE": (1, 1),
    "GT": (1, 1),
    "CONTAINS": (1, 1),
    "NOT_CONTAINS": (1, 1),
    "BEGINS_WITH": (1, 1),
    "IN": (1, 10**6),
    "BETWEEN": (2, 2),
}
_TYPES = {
    "EQ": "S N B SS NS BS",
    "NE": "S N B SS NS BS",
    "LE": "S N B",
    "LT": "S N B",
    "GE": "S N B",
    "GT": "S N B",
    "CONTAINS": "S N B",
    "NOT_CONTAINS": "S N B",
    "BEGINS_WITH": "S B",
    "IN": "S N B",
    "BETWEEN": "S N B",
}
_PREFIX = "One or more parameter values were invalid: "


def _invalid(message: str) -> Refusal:
    return Refusal(VALIDATION, message)


def check_expected(expected: dict[str, Any]) -> None:
    """Expected: DynamoDB's rules for Value / Exists / ComparisonOperator / AttributeValueList."""
    for name, condition in expected.items():
        has_list, has_value = "AttributeValueList" in condition, "Value" in condition
        if has_list and has_value:
            raise _invalid(
                f"{_PREFIX}Value and AttributeValueList cannot be used together for Attribute: {name}"
            )
        if "ComparisonOperator" in condition:
            op = condition["ComparisonOperator"]
            if "Exists" in condition:
                raise _invalid(
                    f"{_PREFIX}Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )
            if op not in ("NULL", "NOT_NULL") and not has_list and not has_value:
                raise _invalid(
                    f"{_PREFIX}Value or AttributeValueList must be used with ComparisonOperator: {op} "
                    f"for Attribute: {name}"
                )
            _check_arguments(
                op, condition.get("AttributeValueList") or ([condition["Value"]] if has_value else [])
            )
        elif has_list:
            raise _invalid(
                f"{_PREFIX}AttributeValueList can only be used with a ComparisonOperator for Attribute: "
                f"{name}"
            )
        else:
            exists = condition.get("Exists", True)
            if exists and not has_value:
                shown = "null" if "Exists" not in condition else str(exists).lower()
                raise _invalid(
                    f"{_PREFIX}Value must be provided when Exists is {shown} for Attribute: {name}"
                )
            if not exists and has_value:
                raise _invalid(f"{_PREFIX}Value cannot be used when Exists is false for Attribute: {name}")
            if has_value:
                check_attribute_value(condition["Value"])


def check_conditions(conditions: dict[str, Any]) -> None:
    """QueryFilter / ScanFilter / KeyConditions: argument counts and types per operator."""
    for condition in conditions.values():
        _check_arguments(condition["ComparisonOperator"], condition.get("AttributeValueList") or [])


def _check_arguments(op: str, values: list[dict[str, Any]]) -> None:
    for value in values:
        check_attribute_value(value)
    low, high = _ARGUMENTS.get(op, (0, 10**6))
    if not low <= len(values) <= high:
        raise _invalid(f"{_PREFIX}Invalid number of argument(s) for the {op} ComparisonOperator")
    kinds = [next(iter(v)) for v in values]
    if len(set(kinds)) > 1:
        raise _invalid(f"{_PREFIX}AttributeValues inside AttributeValueList must be of same type")
    for kind in kinds:
        if op in _TYPES and kind not in _TYPES[op].split():
            raise _invalid(f"{_PREFIX}ComparisonOperator {op} is not valid for {kind} AttributeValue type")
    if op == "BETWEEN" and greater(kinds[0], values[0][kinds[0]], values[1][kinds[0]]):
        raise _invalid(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        )


class _Builder:
    """Builds an expression with its own placeholders (#lgN, :lgN): a request never mixes legacy parameters and
    expressions, so they cannot collide with the caller's."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.names: dict[str, str] = dict(body.get("ExpressionAttributeNames") or {})
        self.values: dict[str, Any] = dict(body.get("ExpressionAttributeValues") or {})

    def name(self, attribute: str) -> str:
        key = f"#lg{len(self.names)}"
        self.names[key] = attribute
        return key

    def value(self, value: dict[str, Any]) -> str:
        key = f":lg{len(self.values)}"
        self.values[key] = value
        return key

    def comparison(self, attribute: str, op: str, values: list[dict[str, Any]]) -> str:
        path = self.name(attribute)
        refs = [self.value(v) for v in values]
        simple = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
        if op in simple:
            return f"{path} {simple[op]} {refs[0]}"
        first = refs[0] if refs else ""
        if op == "NULL":
            return f"attribute_not_exists({path})"
        if op == "NOT_NULL":
            return f"attribute_exists({path})"
        if op == "CONTAINS":
            return f"contains({path}, {first})"
        if op == "NOT_CONTAINS":
            return f"NOT contains({path}, {first})"
        if op == "BEGINS_WITH":
            return f"begins_with({path}, {first})"
        if op == "IN":
            return f"{path} IN ({', '.join(refs)})"
        return f"{path} BETWEEN {first} AND {refs[-1]}"

    def apply(self, body: dict[str, Any], target: str, parts: list[str], joiner: str) -> None:
        if not parts:
            return
        body[target] = f" {joiner} ".join(f"({p})" for p in parts)
        body["ExpressionAttributeNames"] = self.names
        if self.values:
            body["ExpressionAttributeValues"] = self.values


def rewrite(operation: str, body: dict[str, Any]) -> None:
    """Check the legacy conditional parameters and turn them into the equivalent expression (in place)."""
    if "Expected" in body:
        check_expected(body["Expected"])
    for key in ("QueryFilter", "ScanFilter", "KeyConditions"):
        if key in body:
            check_conditions(body[key])
    joiner = body.get("ConditionalOperator", "AND")
    if body.get("Expected") and "ConditionExpression" not in body:
        builder = _Builder(body)
        parts = []
        for name, condition in body.pop("Expected").items():
            if "ComparisonOperator" in condition:
                values = condition.get("AttributeValueList") or (
                    [condition["Value"]] if "Value" in condition else []
                )
                parts.append(builder.comparison(name, condition["ComparisonOperator"], values))
            elif condition.get("Exists", True):
                parts.append(builder.comparison(name, "EQ", [condition["Value"]]))
            else:
                parts.append(builder.comparison(name, "NULL", []))
        builder.apply(body, "ConditionExpression", parts, joiner)
        body.pop("ConditionalOperator", None)
    for key in ("QueryFilter", "ScanFilter"):
        if body.get(key) and "FilterExpression" not in body:
            builder = _Builder(body)
            parts = [
                builder.comparison(name, c["ComparisonOperator"], c.get("AttributeValueList") or [])
                for name, c in body.pop(key).items()
            ]
            builder.apply(body, "FilterExpression", parts, joiner)
            body.pop("ConditionalOperator", None)
