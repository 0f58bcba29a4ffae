"""Two UpdateExpression syntax errors moto's parser accepts, refused before the table lookup as DynamoDB does.

moto read ``SET a = b + c + d`` (DynamoDB's grammar allows one ``+`` or ``-`` in a SET value: operand, operator,
operand) and ``SET a = set`` (a clause keyword where an operand belongs) and went on to evaluate them; DynamoDB
answers "Invalid UpdateExpression: Syntax error; token: ..., near: ...". Every other malformed UpdateExpression
is refused by moto's parser already; this only looks at the tokens of those two shapes.
"""

from __future__ import annotations

import re
from typing import Any

from .validation import VALIDATION, Refusal

_TOKEN = re.compile(r"\s*(#[0-9A-Za-z_]+|:[0-9A-Za-z_]+|[A-Za-z_][0-9A-Za-z_]*|[0-9]+|\S)")
_CLAUSES = {"SET", "REMOVE", "ADD", "DELETE"}
_OPERAND_EXPECTED = {"=", "+", "-", "("}


def _tokens(text: str) -> list[str]:
    return [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]


def _syntax_error(tokens: list[str], i: int) -> Refusal:
    near = " ".join(tokens[max(i - 1, 0) : i + 2])
    return Refusal(
        VALIDATION, f'Invalid UpdateExpression: Syntax error; token: "{tokens[i]}", near: "{near}"'
    )


def check(body: dict[str, Any]) -> None:
    """Raise Refusal for a SET value with two arithmetic operators, or a clause keyword used as an operand."""
    text = body.get("UpdateExpression")
    if not isinstance(text, str) or not text:
        return
    tokens = _tokens(text)
    clause, depth, operators = "", 0, 0
    for i, token in enumerate(tokens):
        word = token.upper()
        if word in _CLAUSES and depth == 0:
            if i and tokens[i - 1] in _OPERAND_EXPECTED:
                raise _syntax_error(tokens, i)
            clause, operators = word, 0
        elif token in "([":
            depth += 1
        elif token in ")]":
            depth -= 1
        elif token in ("=", ",") and depth == 0:
            operators = 0
        elif token in "+-" and depth == 0 and clause == "SET":
            operators += 1
            if operators > 1:
                raise _syntax_error(tokens, i)
