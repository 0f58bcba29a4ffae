"""A request on a table that does not exist: its expressions are parsed first, as DynamoDB parses them.

DynamoDB reads a request's expressions before it looks the table up: a malformed ProjectionExpression,
ConditionExpression, FilterExpression or UpdateExpression is a ValidationException even when the table is
missing. moto looked the table up first and answered ResourceNotFoundException, another code than DynamoDB's
(a client that branches on it takes a syntax error for a missing table). Here, only on that failing path (so the
usual request pays nothing), the expressions go through moto's own parsers before the lookup.
"""

from __future__ import annotations

from typing import Any

#: moto's handler names whose request is parsed when its table is missing
OPERATIONS = {"get_item", "put_item", "delete_item", "update_item", "query", "scan"}


def check(backend: Any, operation: str, body: dict[str, Any]) -> None:
    """Raise moto's ValidationException for a malformed expression of a request whose table does not exist."""
    if operation not in OPERATIONS or body.get("TableName") in backend.tables:
        return
    from moto.dynamodb.exceptions import DynamodbException, MockValidationException

    for name, parse in _parsers(body):
        try:
            parse()
        except DynamodbException as exc:
            if exc.error_type.endswith("ValidationException"):
                raise
        except Exception:  # noqa: BLE001 - moto's parsers fail on some malformed input (IndexError, ...)
            raise MockValidationException(
                f"Invalid {name}: Syntax error; the expression is malformed"
            ) from None


def _parsers(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(expression parameter, a call parsing it with moto's parser) for each expression the request has."""
    from moto.dynamodb.comparisons import create_condition_expression_parser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.responses import ProjectionExpressionParser

    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    out: list[tuple[str, Any]] = []
    if body.get("ProjectionExpression"):
        out.append(
            ("ProjectionExpression", ProjectionExpressionParser(body["ProjectionExpression"], names).parse)
        )
    for name in ("ConditionExpression", "FilterExpression"):
        if body.get(name):
            out.append((name, create_condition_expression_parser(body[name], names, values).parse))
    if body.get("UpdateExpression"):
        expression = body["UpdateExpression"]
        out.append(("UpdateExpression", lambda: UpdateExpressionParser.make(expression)))
    return out
