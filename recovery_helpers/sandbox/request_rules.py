"""Per-operation rules DynamoDB checks before it looks at the table (after types and the model's constraints).

moto let several of these through: ExpressionAttributeValues or ExpressionAttributeNames that no expression uses,
legacy and expression parameters mixed in one request, a Segment without TotalSegments, a PutItem asking for
UPDATED_NEW. A rehearsal that sends one of them passes on the sandbox and fails on AWS. Rules and wording as
DynamoDB answers them (recorded by dynalite's tests, which also run against DynamoDB).
"""

from __future__ import annotations

import re
from typing import Any

from . import condition_rules, expression_limits, projections, update_syntax
from .validation import VALIDATION, Refusal, check_attribute_value

#: operation -> (expression parameters, the legacy parameters they replace)
EXPRESSION_PARAMETERS: dict[str, tuple[list[str], list[str]]] = {
    "GetItem": (["ProjectionExpression"], ["AttributesToGet"]),
    "PutItem": (["ConditionExpression"], ["Expected"]),
    "DeleteItem": (["ConditionExpression"], ["Expected"]),
    "UpdateItem": (["UpdateExpression", "ConditionExpression"], ["AttributeUpdates", "Expected"]),
    "Query": (
        ["ProjectionExpression", "FilterExpression", "KeyConditionExpression"],
        ["AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"],
    ),
    "Scan": (
        ["ProjectionExpression", "FilterExpression"],
        ["AttributesToGet", "ScanFilter", "ConditionalOperator"],
    ),
}
EXPRESSIONS = expression_limits.EXPRESSIONS  # every expression parameter, in the order DynamoDB reports them
_NAME_KEY = re.compile(r"^#[0-9a-zA-Z_]+$")
_VALUE_KEY = re.compile(r"^:[0-9a-zA-Z_]+$")
_NAME_USE = re.compile(r"#[0-9a-zA-Z_]+")
_VALUE_USE = re.compile(r":[0-9a-zA-Z_]+")
_NO_PREFIX = re.compile(
    r"contains duplicates|number set|numeric value|significant digits|number with magnitude"
)


def _invalid(message: str) -> Refusal:
    return Refusal(VALIDATION, message)


def check(operation: str, body: dict[str, Any]) -> None:
    """Raise Refusal for what DynamoDB refuses in ``operation`` before it reads the table."""
    expression_limits.check(body)
    if operation == "CreateTable":
        from .table_rules import check_create_table

        check_create_table(body)
        return
    if operation == "BatchGetItem":
        for request in (body.get("RequestItems") or {}).values():
            _expression_parameters(request, ["ProjectionExpression"], ["AttributesToGet"])
            _duplicate_names(request)
            _expressions(request)
        return
    if operation not in EXPRESSION_PARAMETERS:
        return
    expressions, legacy = EXPRESSION_PARAMETERS[operation]
    _expression_parameters(body, expressions, list(legacy))
    for name in ("Item", "Key"):
        for value in (body.get(name) or {}).values():
            check_attribute_value(value)
    if operation in ("PutItem", "DeleteItem") and body.get("ReturnValues") not in (None, "ALL_OLD", "NONE"):
        raise _invalid("ReturnValues can only be ALL_OLD or NONE")
    _duplicate_names(body)
    if operation in ("Query", "Scan"):
        _start_key(body)
    if operation == "Scan":
        _segments(body)
    if (
        operation == "Query"
        and body.get("KeyConditions") is None
        and body.get("KeyConditionExpression") is None
    ):
        raise _invalid(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
        )
    _expressions(body)


def _expression_parameters(body: dict[str, Any], expressions: list[str], legacy: list[str]) -> None:
    used = [e for e in expressions if body.get(e) is not None]
    if used:
        if body.get("KeyConditions") is not None and body.get("KeyConditionExpression") is None:
            legacy = [p for p in legacy if p != "KeyConditions"]
        mixed = [p for p in legacy if body.get(p) is not None]
        if mixed:
            raise _invalid(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(mixed)}}} "
                f"Expression parameters: {{{', '.join(used)}}}"
            )
    if body.get("ExpressionAttributeNames") is not None and not used:
        raise _invalid("ExpressionAttributeNames can only be specified when using expressions")
    value_expressions = [e for e in expressions if e != "ProjectionExpression"]
    if (
        value_expressions
        and body.get("ExpressionAttributeValues") is not None
        and all(body.get(e) is None for e in value_expressions)
    ):
        verb = "are" if len(value_expressions) > 1 else "is"
        raise _invalid(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(value_expressions)} {verb} null"
        )


def _duplicate_names(body: dict[str, Any]) -> None:
    seen: set[str] = set()
    for name in body.get("AttributesToGet") or []:
        if name in seen:
            raise _invalid(
                f"One or more parameter values were invalid: Duplicate value in attribute name: {name}"
            )
        seen.add(name)


def _start_key(body: dict[str, Any]) -> None:
    for value in (body.get("ExclusiveStartKey") or {}).values():
        try:
            check_attribute_value(value)
        except Refusal as refusal:
            prefix = "" if _NO_PREFIX.search(refusal.message) else "The provided starting key is invalid: "
            raise _invalid(prefix + refusal.message) from None


def _segments(body: dict[str, Any]) -> None:
    segment, total = body.get("Segment"), body.get("TotalSegments")
    if segment and total is None:
        raise _invalid(
            "The TotalSegments parameter is required but was not present in the request when Segment "
            "parameter is present"
        )
    if total:
        if segment is None:
            raise _invalid(
                "The Segment parameter is required but was not present in the request when parameter "
                "TotalSegments is present"
            )
        if segment >= total:
            raise _invalid(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                f"Segment: {segment} is not less than TotalSegments: {total}"
            )


def _expressions(body: dict[str, Any]) -> None:
    """The placeholders: well formed, valid values, and each one used by some expression."""
    names, values = body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    text = " ".join(body[e] for e in EXPRESSIONS if isinstance(body.get(e), str))
    if names is not None:
        if not names:
            raise _invalid("ExpressionAttributeNames must not be empty")
        for key in names:
            if not _NAME_KEY.match(key):
                raise _invalid(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"')
    if values is not None:
        if not values:
            raise _invalid("ExpressionAttributeValues must not be empty")
        for key in values:
            if not _VALUE_KEY.match(key):
                raise _invalid(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')
        for key, value in values.items():
            try:
                check_attribute_value(value)
            except Refusal as refusal:
                raise _invalid(
                    f"ExpressionAttributeValues contains invalid value: {refusal.message} for key {key}"
                ) from None
    for expression in EXPRESSIONS:
        if body.get(expression) == "":
            raise _invalid(f"Invalid {expression}: The expression can not be empty;")
    update_syntax.check(body)
    condition_rules.check(body)
    if isinstance(body.get("ProjectionExpression"), str):
        projections.check(body["ProjectionExpression"], names)
    unused_names = [k for k in names or {} if k not in set(_NAME_USE.findall(text))]
    if unused_names:
        raise _invalid(
            "Value provided in ExpressionAttributeNames unused in expressions: "
            f"keys: {{{', '.join(unused_names)}}}"
        )
    unused_values = [k for k in values or {} if k not in set(_VALUE_USE.findall(text))]
    if unused_values:
        raise _invalid(
            "Value provided in ExpressionAttributeValues unused in expressions: "
            f"keys: {{{', '.join(unused_values)}}}"
        )
