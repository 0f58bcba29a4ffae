"""DynamoDB's limits on expression strings: 4 KB each, 300 operators or functions each.

moto parsed expressions of any length and any number of operators; DynamoDB refuses them (Developer Guide,
"Service, account, and table quotas" > "Expression parameters": "The maximum length of any expression string is
4 KB", "The maximum number of operators or functions allowed in an UpdateExpression is 300" - and, as measured
against DynamoDB, in every other expression too). The size is the raw string's UTF-8 bytes as sent (placeholders
not substituted); 4,096 bytes pass, 4,097 are refused. Messages as DynamoDB words them:
``Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: 4109`` and
``Invalid ConditionExpression: The expression contains too many operators; operator count: 301``.

What counts as an operator: comparisons (= <> < <= > >=), AND, OR, NOT, BETWEEN (its AND is part of it), IN,
and each function call; in an UpdateExpression ``+``, ``-`` and function calls (``SET a = :v`` has none, as in
the guide's example ``SET a = :val1 + :val2 + :val3``: two).
"""

from __future__ import annotations

import re
from typing import Any

from .validation import VALIDATION, Refusal

MAX_EXPRESSION_BYTES = 4096
MAX_OPERATORS = 300
EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
#: placeholders and plain names (skipped), then what counts
_TOKEN = re.compile(r"[#:][0-9A-Za-z_]+|([A-Za-z_][0-9A-Za-z_]*)(\s*\()?|(<>|<=|>=|<|>|=|\+|-)")
_WORDS = {"and", "or", "not", "between", "in"}


def operator_count(expression: str, *, update: bool) -> int:
    """Operators and functions in ``expression`` as DynamoDB counts them toward its 300."""
    count = betweens = 0
    for match in _TOKEN.finditer(expression):
        word, call, symbol = match.group(1), match.group(2), match.group(3)
        if call:
            count += 1
        elif word and not update and word.lower() in _WORDS:
            count += 1
            betweens += word.lower() == "between"
        elif symbol and (symbol in "+-" if update else symbol not in "+-"):
            count += 1
    return count - betweens  # BETWEEN's AND is not an operator of its own


def check(body: dict[str, Any]) -> None:
    """Raise Refusal when an expression of this request (or of one of its transaction items) is over a limit."""
    _check_request(body)
    for item in body.get("TransactItems") or []:
        for request in item.values() if isinstance(item, dict) else ():
            if isinstance(request, dict):
                _check_request(request)
    for request in (body.get("RequestItems") or {}).values():
        if isinstance(request, dict):
            _check_request(request)


def _check_request(body: dict[str, Any]) -> None:
    for name in EXPRESSIONS:
        expression = body.get(name)
        if not isinstance(expression, str):
            continue
        size = len(expression.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:
            raise Refusal(
                VALIDATION,
                f"Invalid {name}: Expression size has exceeded the maximum allowed size; expression size: {size}",
            )
        if len(expression) <= MAX_OPERATORS:
            continue  # too short to hold 301 operators: the usual request is not scanned at all
        count = operator_count(expression, update=name == "UpdateExpression")
        if count > MAX_OPERATORS:
            raise Refusal(
                VALIDATION,
                f"Invalid {name}: The expression contains too many operators; operator count: {count}",
            )
