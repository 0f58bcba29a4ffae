"""What DynamoDB refuses in a parsed condition: function operands, and what a KeyConditionExpression may hold.

``conditions`` reads the grammar; here are the checks dynalite's ``conditionParser.pegjs`` (``checkFunction``) and
``validations/index.js`` (``convertKeyCondition``) make on its tree, and the per-request entry point
(``check``) that runs before the table is looked up, as DynamoDB does (a fault is a ValidationException even on a
missing table). A KeyConditionExpression may only be ``key = value`` optionally ``AND`` one more condition
(``= < <= > >=``, ``BETWEEN``, ``begins_with``) on top-level attributes, one condition a key.
"""

from __future__ import annotations

from typing import Any

from .conditions import (
    _ARITY,
    Node,
    Path,
    SyntaxFailure,
    Value,
    _type,
    greater,
    immediate_type,
    parse,
)
from .validation import VALIDATION, Refusal

_VALID_TYPES = ("S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M")
_NOT_IN_KEY_CONDITIONS = ("attribute_exists", "attribute_not_exists", "attribute_type", "contains")
_MIRRORED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LEGACY = {
    "=": "EQ",
    "<": "LT",
    "<=": "LE",
    ">": "GT",
    ">=": "GE",
    "between": "BETWEEN",
    "function": "BEGINS_WITH",
}
#: the expressions DynamoDB reads with its condition grammar, in the order it reads them
CONDITION_EXPRESSIONS = ("ConditionExpression", "KeyConditionExpression", "FilterExpression")


def _operand_type(parser: Any, name: str, kind: str | None) -> None:
    parser.error(
        "function",
        f"Incorrect operand type for operator or function; operator or function: {name}, operand type: {kind}",
    )


def check_function(parser: Any, name: str, args: list[Any]) -> str | None:
    """dynalite's checkFunction: the type a function call yields, recording the first fault in ``parser``."""
    if "unknownFunction" in parser.errors:
        return None
    if name not in _ARITY:
        parser.error("unknownFunction", f"Invalid function name; function: {name}")
        return None
    if "operand" in parser.errors:
        return None
    if _ARITY[name] != len(args):
        parser.error(
            "operand",
            "Incorrect number of operands for operator or function; "
            f"operator or function: {name}, number of operands: {len(args)}",
        )
        return None
    parser.distinct(name, args)
    if "function" in parser.errors:
        return None
    if name in ("attribute_exists", "attribute_not_exists"):
        if not isinstance(args[0], Path):
            parser.error(
                "function", f"Operator or function requires a document path; operator or function: {name}"
            )
        return None
    if name == "begins_with":
        for arg in args:
            kind = _type(arg)
            if kind and kind not in ("S", "B"):
                _operand_type(parser, name, kind)
                return None
        return "BOOL"
    if name == "attribute_type":
        kind = _type(args[1])
        if kind != "S":
            _operand_type(parser, name, kind or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")
            return None
        parser.reads_values = True
        if args[1].av["S"] not in _VALID_TYPES:
            parser.error(
                "function",
                f"Invalid attribute type name found; type: {args[1].av['S']}, valid types: "
                "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
            )
            return None
        return "BOOL"
    if name == "size":
        kind = _type(args[0])
        if kind in ("N", "BOOL", "NULL"):
            _operand_type(parser, name, kind)
            return None
        return "N"
    return "BOOL"  # contains


def _shown(value: Value, kind: str) -> str:
    raw = value.av[kind]  # type: ignore[index]
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, list):
        return ",".join(str(x) for x in raw)
    return str(raw)


def path_text(path: Path) -> str:
    return "[" + ", ".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path) + "]"


def check_distinct(parser: Any, name: str, args: list[Any]) -> None:
    x, y = (args + [None, None])[:2]
    if len(args) == 2 and isinstance(x, Path) and isinstance(y, Path) and list(x) == list(y):
        parser.error(
            "distinct",
            "The first operand must be distinct from the remaining operands for this operator or function; "
            f"operator: {name}, first operand: {path_text(x)}",
        )


def check_between(parser: Any, x: Any, y: Any) -> None:
    if "function" in parser.errors:
        return
    t1, t2 = immediate_type(x), immediate_type(y)
    if not (t1 and t2):
        return
    parser.reads_values = True
    bounds = f"lower bound operand: AttributeValue: {{{t1}:{_shown(x, t1)}}}, upper bound operand: "
    bounds += f"AttributeValue: {{{t2}:{_shown(y, t2)}}}"
    if t1 != t2:
        parser.error(
            "function",
            f"The BETWEEN operator requires same data type for lower and upper bounds; {bounds}",
        )
    elif greater(t1, x.av[t1], y.av[t2]):
        parser.error(
            "function",
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; " + bounds,
        )


def key_conditions(expr: Any, found: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """dynalite's convertKeyCondition: {attribute: {ComparisonOperator, AttributeValueList}}; Refusal for a
    condition a KeyConditionExpression may not hold."""
    found = {} if found is None else found
    if not isinstance(expr, Node):
        return found
    if expr.kind in ("or", "not", "in", "<>"):
        raise _refused(f"Invalid operator used in KeyConditionExpression: {expr.kind.upper()}")
    if expr.kind == "function" and expr.name in _NOT_IN_KEY_CONDITIONS:
        raise _refused(f"Invalid operator used in KeyConditionExpression: {expr.name}")
    if expr.kind == "function" and expr.name == "size":
        raise _refused("KeyConditionExpressions cannot contain nested operations")
    if expr.kind in ("between", "function") and not isinstance(expr.args[0], Path):
        operator = "BETWEEN" if expr.kind == "between" else expr.name
        raise _refused(
            f"Invalid condition in KeyConditionExpression: {operator} operator must have the key attribute as "
            "its first operand"
        )
    name, position = None, 0
    for i, arg in enumerate(expr.args):
        if isinstance(arg, Path):
            if name is not None:
                raise _refused(
                    "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
                )
            if len(arg) > 1:
                raise _refused("KeyConditionExpressions cannot have conditions on nested attributes")
            name, position = arg[0], i
        elif isinstance(arg, Node):
            key_conditions(arg, found)
    if expr.kind == "and":
        return found
    if name is None:
        raise _refused("Invalid condition in KeyConditionExpression: No key attribute specified")
    if name in found:
        raise _refused("KeyConditionExpressions must only contain one condition per key")
    kind = _MIRRORED[expr.kind] if position else expr.kind
    values = [arg.av for arg in expr.args if isinstance(arg, Value)]
    found[name] = {"ComparisonOperator": _LEGACY[kind], "AttributeValueList": values}
    return found


def _refused(message: str) -> Refusal:
    return Refusal(VALIDATION, message)


#: verdicts (None: accepted) by expression, names and value types, for verdicts that read no value's content:
#: a job sends one expression many times with other values, and is checked once
_VERDICTS: dict[tuple[Any, ...], str | None] = {}
_MAX_VERDICTS = 4096


def _verdict(
    parameter: str, text: str, names: dict[str, Any] | None, values: dict[str, Any] | None
) -> str | None:
    """The refusal message for one expression (None when DynamoDB reads it, or the grammar here cannot)."""
    key = (
        parameter,
        text,
        tuple(sorted((names or {}).items())),
        tuple(sorted((k, tuple(v)) for k, v in (values or {}).items() if isinstance(v, dict))),
    )
    if key in _VERDICTS:
        return _VERDICTS[key]
    report: dict[str, bool] = {}
    message = None
    try:
        tree = parse(text, names, values, report)
    except SyntaxFailure:
        tree = None
    except Refusal as refusal:
        tree, message = None, f"Invalid {parameter}: {refusal.message}"
    if tree is not None and parameter == "KeyConditionExpression":
        try:
            key_conditions(tree)  # its refusals are whole messages
        except Refusal as refusal:
            message = refusal.message
    if not report.get("reads_values"):
        if len(_VERDICTS) >= _MAX_VERDICTS:
            _VERDICTS.clear()
        _VERDICTS[key] = message
    return message


def check(body: dict[str, Any]) -> None:
    """Refuse what DynamoDB refuses in the request's condition expressions, in the order DynamoDB reads them."""
    names, values = body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    for parameter in CONDITION_EXPRESSIONS:
        text = body.get(parameter)
        if isinstance(text, str) and text:
            message = _verdict(parameter, text, names, values)
            if message:
                raise _refused(message)
