"""A ProjectionExpression read by DynamoDB's grammar: comma-separated document paths, nothing else.

moto's parser accepted what DynamoDB refuses as a syntax error - a function call (``whatever(stuff)``), a value
placeholder (``:a``), parentheses (``(a)``), an empty step (``a..b``), a name as list index (``a[b]``), an
operator (``a-b``) - and reserved words as attribute names (``a.abORt``). A path is a name (plain, not a reserved
word, or a ``#placeholder`` that is defined) followed by ``.name`` or ``[index]`` steps. Messages as DynamoDB
words them ("Invalid ProjectionExpression: Syntax error; token: ...", "... Attribute name is a reserved keyword;
reserved keyword: ...", "... An expression attribute name used in the document path is not defined; ...").
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .validation import VALIDATION, Refusal

_NAME = r"(?:#[0-9A-Za-z_]+|[A-Za-z_][0-9A-Za-z_]*)"
_PATH = re.compile(rf"\s*{_NAME}(?:\s*(?:\.\s*{_NAME}|\[\s*[0-9]+\s*\]))*\s*")
_PLAIN = re.compile(r"(?<![#0-9A-Za-z_])[A-Za-z_][0-9A-Za-z_]*")
_PLACEHOLDER = re.compile(r"#[0-9A-Za-z_]+")


@functools.cache
def _reserved() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


def _refuse(message: str) -> Refusal:
    return Refusal(VALIDATION, f"Invalid ProjectionExpression: {message}")


def check(expression: str, names: dict[str, Any] | None) -> None:
    """Raise Refusal (ValidationException) for a ProjectionExpression DynamoDB refuses."""
    _check(expression, tuple(sorted(names or {})))


@functools.lru_cache(maxsize=256)  # a job sends one projection many times: an accepted one is read once
def _check(expression: str, names: tuple[str, ...]) -> None:
    paths = expression.split(",")
    for path in paths:
        if not _PATH.fullmatch(path):
            token = _first_bad_token(path)
            raise _refuse(f'Syntax error; token: "{token}", near: "{path.strip() or ","}"')
    for path in paths:
        for word in _PLAIN.findall(path):
            if word.upper() in _reserved():
                raise _refuse(f"Attribute name is a reserved keyword; reserved keyword: {word}")
    for placeholder in _PLACEHOLDER.findall(expression):
        if placeholder not in names:
            raise _refuse(
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {placeholder}"
            )


def _first_bad_token(path: str) -> str:
    """The token DynamoDB names in its syntax error: the first character no path may have there."""
    match = re.match(rf"\s*{_NAME}(?:\s*(?:\.\s*{_NAME}|\[\s*[0-9]+\s*\]))*\s*", path)
    rest = path[match.end() :] if match else path.lstrip()
    return rest[:1] or "<EOF>"
