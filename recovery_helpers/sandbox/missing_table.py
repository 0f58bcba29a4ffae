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

    try:
        _parse(body)
    except MockValidationException:
        raise
    except DynamodbException as exc:
        if exc.error_type.endswith("ValidationException"):
            raise
    except ValueError as exc:  # moto's condition parser words some syntax errors as ValueError
        raise MockValidationException(f"Invalid expression: {exc}") from None


def _parse(body: dict[str, Any]) -> None:
    from moto.dynamodb.comparisons import create_condition_expression_parser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.responses import ProjectionExpressionParser

    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    if body.get("ProjectionExpression"):
        ProjectionExpressionParser(body["ProjectionExpression"], names).parse()
    for name in ("ConditionExpression", "FilterExpression"):
        if body.get(name):
            create_condition_expression_parser(body[name], names, values).parse()
    if body.get("UpdateExpression"):
        UpdateExpressionParser.make(body["UpdateExpression"])
