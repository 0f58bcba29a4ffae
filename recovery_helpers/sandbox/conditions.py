"""Condition, filter and key condition expressions read by DynamoDB's grammar, to refuse what DynamoDB refuses.

moto's condition parser evaluates expressions but lets through what DynamoDB refuses after parsing: ``BETWEEN``
bounds in the wrong order or of different types, ``attribute_type`` with a type name that does not exist,
functions on operands of the wrong type, ``a = a`` (operands that are not distinct), a misused function. This is a
port of dynalite's ``db/conditionParser.pegjs`` (a PEG, tried in the same order; results memoised per rule and
position) that only checks: the expression is still evaluated by moto. A text this grammar cannot read is left
to moto's parser (which answers its own syntax error), so a gap in this port can never refuse a valid request.
Messages and their precedence as DynamoDB words them (recorded by dynalite's tests, which also run on AWS).
"""

from __future__ import annotations

import base64
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .validation import VALIDATION, Refusal

_WS = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PART = re.compile(r"[a-zA-Z0-9_]*")
_INDEX = re.compile(r"[0-9]+")
_ATTRIBUTE_PART = re.compile(r"[a-zA-Z0-9_#:]")
_TOKENS = ("BETWEEN", "IN", "AND", "OR", "NOT")
_COMPARATORS = (">=", "<=", "<>", "=", "<", ">")
_ARITY = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
}
_ARITY["size"] = 1
_TYPES = ("S", "N", "B", "NULL", "BOOL", "SS", "NS", "BS", "L", "M")
_ERROR_ORDER = ("parens", "unknownFunction", "misusedFunction", "reserved", "condition")
_CONDITION_ORDER = ("attrNameVal", "operand", "distinct", "function")


class Path(list):
    """A document path: names (str) and list indexes (int)."""


class Value:
    """An ExpressionAttributeValue (``av`` is None when the placeholder is not defined)."""

    def __init__(self, av: dict[str, Any] | None) -> None:
        self.av = av


class Node:
    """An operation: a comparator, ``between``, ``in``, ``and``/``or``/``not`` or a ``function`` call."""

    def __init__(self, kind: str, args: list[Any], name: str = "", attr_type: str | None = None) -> None:
        self.kind, self.args, self.name, self.attr_type = kind, args, name, attr_type


class _AttrName(str):
    """A ``#name`` placeholder in a path, resolved by the operand that holds it."""


class SyntaxFailure(Exception):
    """The text is not in the grammar (left to moto's parser)."""


@functools.cache
def _reserved() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


def immediate_type(value: Any) -> str | None:
    if not isinstance(value, Value) or not value.av:
        return None
    return next((t for t in _TYPES if value.av.get(t) is not None), None)


def _type(value: Any) -> str | None:
    if isinstance(value, Node):
        return value.attr_type
    return immediate_type(value)


def greater(kind: str, x: Any, y: Any) -> bool:
    """DynamoDB's order of two values of one scalar type (S by code point, N numerically, B by bytes)."""
    try:
        if kind == "N":
            return Decimal(x) > Decimal(y)
        if kind == "B":
            return base64.b64decode(x) > base64.b64decode(y)
    except (InvalidOperation, ValueError):
        return False
    return kind == "S" and x > y


class _Parser:
    def __init__(self, text: str, names: dict[str, Any], values: dict[str, Any]) -> None:
        self.text, self.names, self.values = text, names, values
        self.errors: dict[str, str] = {}
        self.reads_values = False  # whether a verdict depended on a value's content (not only its type)
        self.memo: dict[tuple[str, int], Any] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def lit(self, pos: int, literal: str) -> int | None:
        return pos + len(literal) if self.text.startswith(literal, pos) else None

    def token(self, pos: int, word: str) -> int | None:
        end = pos + len(word)
        if self.text[pos:end].upper() != word:
            return None
        if _ATTRIBUTE_PART.match(self.text, end):
            return None
        return end

    def reserved_word(self, pos: int) -> bool:
        return any(self.token(pos, word) is not None for word in _TOKENS)

    def error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, message)

    def memoised(self, rule: str, pos: int) -> Any:
        key = (rule, pos)
        if key not in self.memo:
            self.memo[key] = getattr(self, rule)(pos)
        return self.memo[key]

    def seq(self, pos: int, *steps: Any) -> tuple[list[Any], int] | None:
        """Match steps in order (a literal, a token ``("T", word)`` or a rule name), whitespace between."""
        out = []
        for i, step in enumerate(steps):
            if i:
                pos = self._(pos)
            if isinstance(step, tuple):
                end = self.token(pos, step[1])
            elif step in ("(", ")", ",", "[", "]", "."):
                end = self.lit(pos, step)
            else:
                got = self.memoised(step, pos)
                if got is None:
                    return None
                out.append(got[0])
                end = got[1]
            if end is None:
                return None
            pos = end
        return out, pos

    # -- rules (dynalite's names) ----------------------------------------------------------------------------
    def or_expr(self, pos: int) -> Any:
        got = self.seq(pos, "and_expr", ("T", "OR"), "or_expr")
        if got:
            (x, y), end = got
            for e in (x, y):
                self.misused_size(e)
            return Node("or", [x, y]), end
        return self.memoised("and_expr", pos)

    def and_expr(self, pos: int) -> Any:
        got = self.seq(pos, "not_expr", ("T", "AND"), "and_expr")
        if got:
            (x, y), end = got
            for e in (x, y):
                self.misused_size(e)
            return Node("and", [x, y]), end
        return self.memoised("not_expr", pos)

    def not_expr(self, pos: int) -> Any:
        got = self.seq(pos, ("T", "NOT"), "parens_expr")
        if got:
            (expr,), end = got
            self.misused_size(expr)
            return Node("not", [expr]), end
        return self.memoised("parens_expr", pos)

    def parens_expr(self, pos: int) -> Any:
        got = self.seq(pos, "(", "(", "or_expr", ")", ")")
        if got:
            self.error("parens", "The expression has redundant parentheses;")
            return got[0][0], got[1]
        got = self.seq(pos, "(", "(", "condition", ")", ")")
        if got:
            self.error("parens", "The expression has redundant parentheses;")
            self.condition_errors()
            return got[0][0], got[1]
        got = self.memoised("condition", pos)
        if got:
            self.condition_errors()
            return got
        got = self.seq(pos, "(", "or_expr", ")")
        return (got[0][0], got[1]) if got else None

    def condition(self, pos: int) -> Any:
        first = self.memoised("operand_parens", pos)
        if first:
            after = self._(first[1])
            for comparator in _COMPARATORS:
                if self.text.startswith(comparator, after):
                    got = self.seq(self._(after + len(comparator)), "operand_parens")
                    if got:
                        x, y = first[0], got[0][0]
                        self.misused_function([x, y])
                        self.distinct(comparator, [x, y])
                        return Node(comparator, [x, y]), got[1]
                    break
            got = self.seq(after, ("T", "BETWEEN"), "operand_parens", ("T", "AND"), "operand_parens")
            if got:
                (y, z), end = got
                self.misused_function([first[0], y, z])
                self.between(y, z)
                return Node("between", [first[0], y, z]), end
            got = self.seq(after, ("T", "IN"), "(", "arguments", ")")
            if got:
                args = [first[0], *got[0][0]]
                self.misused_function(args)
                return Node("in", args), got[1]
        return self.memoised("function", pos)

    def operand_parens(self, pos: int) -> Any:
        got = self.seq(pos, "(", "(", "operand", ")", ")")
        if got:
            self.error("parens", "The expression has redundant parentheses;")
            return got[0][0], got[1]
        got = self.seq(pos, "(", "operand", ")")
        return (got[0][0], got[1]) if got else self.memoised("operand", pos)

    def operand(self, pos: int) -> Any:
        got = self.memoised("function", pos) or self.memoised("attribute_value", pos)
        if got:
            return got
        got = self.memoised("path", pos)
        if not got:
            return None
        path = Path()
        for piece in got[0]:
            if isinstance(piece, _AttrName):
                piece = self.resolve_name(str(piece))
            elif isinstance(piece, str) and piece.upper() in _reserved():
                self.error("reserved", f"Attribute name is a reserved keyword; reserved keyword: {piece}")
            path.append(piece)
        return path, got[1]

    def function(self, pos: int) -> Any:
        if self.reserved_word(pos):
            return None
        match = _NAME.match(self.text, pos)
        got = match and self.seq(self._(match.end()), "(", "arguments", ")")
        if not got:
            return None
        args = got[0][0]
        self.misused_function(args)
        name = match.group()  # type: ignore[union-attr]
        return Node("function", args, name, self.check_function(name, args)), got[1]

    def arguments(self, pos: int) -> Any:
        got = self.memoised("operand_parens", pos)
        if not got:
            return None
        args, pos = [got[0]], got[1]
        while more := self.seq(self._(pos), ",", "operand_parens"):
            args.append(more[0][0])
            pos = more[1]
        return args, pos

    def attribute_value(self, pos: int) -> Any:
        if not self.text.startswith(":", pos):
            return None
        end = _PART.match(self.text, pos + 1).end()  # type: ignore[union-attr]
        return self.resolve_value(self.text[pos:end]), end

    def path(self, pos: int) -> Any:
        got = self.memoised("grouped_path", pos)
        if not got:
            return None
        head, pos = got
        path = list(head) if isinstance(head, list) else [head]
        while True:
            step = self._(pos)
            index = self.seq(step, "[", "index", "]")
            name = None if index else self.seq(step, ".", "identifier")
            if not (index or name):
                return path, pos
            path.append((index or name)[0][0])  # type: ignore[index]
            pos = (index or name)[1]  # type: ignore[index]

    def index(self, pos: int) -> Any:
        match = _INDEX.match(self.text, pos)
        return (int(match.group()), match.end()) if match else None

    def grouped_path(self, pos: int) -> Any:
        got = self.memoised("identifier", pos)
        if got:
            return got
        got = self.seq(pos, "(", "(", "path", ")", ")")
        if got:
            self.error("parens", "The expression has redundant parentheses;")
            return got[0][0], got[1]
        got = self.seq(pos, "(", "path", ")")
        return (got[0][0], got[1]) if got else None

    def identifier(self, pos: int) -> Any:
        if self.reserved_word(pos):
            return None
        match = _NAME.match(self.text, pos)
        if match:
            return match.group(), match.end()
        if self.text.startswith("#", pos):
            end = _PART.match(self.text, pos + 1).end()  # type: ignore[union-attr]
            return _AttrName(self.text[pos:end]), end
        return None

    # -- actions ---------------------------------------------------------------------------------------------
    def resolve_name(self, name: str) -> str | None:
        if "attrNameVal" in self.errors:
            return None
        if not self.names.get(name):
            self.error(
                "attrNameVal",
                f"An expression attribute name used in the document path is not defined; attribute name: {name}",
            )
            return None
        return self.names[name]

    def resolve_value(self, name: str) -> Value:
        if "attrNameVal" in self.errors:
            return Value(None)
        if not self.values.get(name):
            self.error(
                "attrNameVal",
                f"An expression attribute value used in expression is not defined; attribute value: {name}",
            )
            return Value(None)
        return Value(self.values[name])

    def check_function(self, name: str, args: list[Any]) -> str | None:
        from .condition_rules import check_function

        return check_function(self, name, args)

    def misused_function(self, args: list[Any]) -> None:
        for arg in args:
            if isinstance(arg, Node) and arg.kind == "function" and arg.name != "size":
                self.error(
                    "misusedFunction",
                    f"The function is not allowed to be used this way in an expression; function: {arg.name}",
                )
                return

    def misused_size(self, expr: Any) -> None:
        if isinstance(expr, Node) and expr.kind == "function" and expr.name == "size":
            self.error(
                "misusedFunction",
                "The function is not allowed to be used this way in an expression; function: size",
            )

    def distinct(self, name: str, args: list[Any]) -> None:
        from .condition_rules import check_distinct

        check_distinct(self, name, args)

    def between(self, x: Any, y: Any) -> None:
        from .condition_rules import check_between

        check_between(self, x, y)

    def condition_errors(self) -> None:
        if "condition" not in self.errors:
            for key in _CONDITION_ORDER:
                if key in self.errors:
                    self.errors["condition"] = self.errors[key]
                    return


def parse(
    text: str,
    names: dict[str, Any] | None,
    values: dict[str, Any] | None,
    report: dict[str, bool] | None = None,
) -> Any:
    """The tree; Refusal (no ``Invalid X:`` prefix) for what DynamoDB refuses; SyntaxFailure outside the grammar.
    ``report["reads_values"]``: the verdict read a value's content (BETWEEN bounds, a type name), not only types."""
    parser = _Parser(text, names or {}, values or {})
    try:
        got = parser.memoised("or_expr", parser._(0))
        if not got or parser._(got[1]) != len(text):
            raise SyntaxFailure(text)
        parser.misused_size(got[0])
        for key in _ERROR_ORDER:
            if key in parser.errors:
                raise Refusal(VALIDATION, parser.errors[key])
        return got[0]
    finally:
        if report is not None:
            report["reads_values"] = parser.reads_values
