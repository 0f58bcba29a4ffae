"""UpdateItem's ReturnValues UPDATED_OLD / UPDATED_NEW as DynamoDB answers them.

DynamoDB returns every attribute (or nested path) the update named, changed or not; moto returned only those
whose value changed, so a runbook that reads back what it wrote saw an empty answer when the value was already
right.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_PIECE = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (if_not_exists(a, :v), list_append(...))."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [p.strip() for p in out if p.strip()]


def _path(text: str, names: dict[str, str]) -> list[str]:
    path = []
    for piece in text.strip().split("."):
        m = _PIECE.match(piece.strip())
        name, indexes = (m.group(1).strip(), m.group(2)) if m else (piece.strip(), "")
        path.append(names.get(name, name) + indexes)
    return path


def named_paths(
    update_expression: str | None, attribute_updates: dict[str, Any] | None, names: dict[str, str] | None
) -> list[list[str]]:
    """The document paths an update writes, in moto's projection form (["a", "b[1]"])."""
    names = names or {}
    if not update_expression:
        return [[name] for name in attribute_updates or {}]
    paths: list[list[str]] = []
    pieces = _CLAUSE.split(update_expression)
    for keyword, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for action in _split_top(body):
            if keyword.upper() == "SET":
                target = action.split("=", 1)[0]
            elif keyword.upper() == "REMOVE":
                target = action
            else:  # ADD / DELETE: "path value"
                target = action.split()[0]
            path = _path(target, names)
            if path not in paths:
                paths.append(path)
    return paths


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.update_item

    @functools.wraps(original)
    def update_item(self: Any) -> Any:
        wanted = self.body.get("ReturnValues")
        if wanted not in ("UPDATED_OLD", "UPDATED_NEW"):
            return original(self)
        backend, body = self.dynamodb_backend, self.body
        old = None
        table = backend.tables.get(body.get("TableName"))
        if table is not None:
            try:
                old = copy.deepcopy(backend.get_item(body["TableName"], body["Key"]))
            except Exception:  # noqa: BLE001 - a bad key: the update answers it
                old = None
        body["ReturnValues"] = "ALL_NEW"
        result = original(self)
        paths = named_paths(
            body.get("UpdateExpression"), body.get("AttributeUpdates"), body.get("ExpressionAttributeNames")
        )
        source = old if wanted == "UPDATED_OLD" else backend.get_item(body["TableName"], body["Key"])
        attributes = source.project(paths).to_json()["Attributes"] if source is not None and paths else {}
        answer = getattr(result, "result", None)
        if isinstance(answer, dict):
            answer.pop("Attributes", None)
            if attributes:
                answer["Attributes"] = attributes
        return result

    DynamoHandler.update_item = update_item
