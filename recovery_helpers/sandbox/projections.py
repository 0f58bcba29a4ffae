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
_STEP = re.compile(r"(#?[0-9A-Za-z_]+)|\[\s*([0-9]+)\s*\]")
_ONE_OF = "must remove or rewrite one of these paths; path one: "


@functools.cache
def _reserved() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


def _refuse(message: str) -> Refusal:
    return Refusal(VALIDATION, f"Invalid ProjectionExpression: {message}")


def check(expression: str, names: dict[str, Any] | None) -> None:
    """Raise Refusal (ValidationException) for a ProjectionExpression DynamoDB refuses."""
    _check(expression, tuple(sorted((names or {}).items())))


@functools.lru_cache(maxsize=256)  # a job sends one projection many times: an accepted one is read once
def _check(expression: str, named: tuple[tuple[str, str], ...]) -> None:
    names = dict(named)
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
    _overlaps([_pieces(path, names) for path in paths])


def _pieces(path: str, names: dict[str, str]) -> list[str | int]:
    """A path's steps: attribute names (placeholders resolved) and list indexes (int)."""
    return [int(index) if index else names.get(name, name) for name, index in _STEP.findall(path)]


def _text(path: list[str | int]) -> str:
    return "[" + ", ".join(f"[{p}]" if isinstance(p, int) else p for p in path) + "]"


def _overlaps(paths: list[list[str | int]]) -> None:
    """DynamoDB's rule: no path may be a prefix of another (overlap), nor differ from it first in the kind of a
    step, a name against an index (conflict). An overlap is named first; of conflicts, the last one found."""
    conflict = None
    for i, later in enumerate(paths):
        for earlier in paths[:i]:
            for a, b in zip(earlier, later, strict=False):
                if isinstance(a, int) != isinstance(b, int):
                    conflict = f"Two document paths conflict with each other; {_ONE_OF}{_text(earlier)}, "
                    conflict += f"path two: {_text(later)}"
                    break
                if a != b:
                    break
            else:
                raise _refuse(
                    f"Two document paths overlap with each other; {_ONE_OF}{_text(earlier)}, path two: "
                    f"{_text(later)}"
                )
    if conflict:
        raise _refuse(conflict)


def _first_bad_token(path: str) -> str:
    """The token DynamoDB names in its syntax error: the first character no path may have there."""
    match = re.match(rf"\s*{_NAME}(?:\s*(?:\.\s*{_NAME}|\[\s*[0-9]+\s*\]))*\s*", path)
    rest = path[match.end() :] if match else path.lstrip()
    return rest[:1] or "<EOF>"
