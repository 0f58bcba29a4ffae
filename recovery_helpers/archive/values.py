"""DynamoDB values as text a reader checks against the table: numbers as DynamoDB stores them, no type wrappers.

``{"N": "12.5"}`` reads ``12.5``, ``{"S": "EUR"}`` reads ``EUR``, binary ``base64:...``, sets and lists in
brackets, maps in braces; nested strings keep their quotes so ``"12"`` (text) and ``12`` (number) differ.
Times are shown to the millisecond (``2025-01-31T10:00:00.123Z``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any


def _b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    raw = getattr(value, "value", None)  # boto3's Binary
    if isinstance(raw, (bytes, bytearray)):
        return base64.b64encode(bytes(raw)).decode()
    return str(value)  # already base64 text (json-safe files)


def _number_key(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def value_text(av: Mapping[str, Any], *, nested: bool = False) -> str:
    """One attribute value (DynamoDB JSON) as text; ``nested`` quotes strings (inside lists and maps)."""
    if not isinstance(av, Mapping) or len(av) != 1:
        return json.dumps(av, default=str, ensure_ascii=False)
    ((kind, v),) = av.items()
    if kind == "S":
        return json.dumps(v, ensure_ascii=False) if nested else str(v)
    if kind == "N":
        return str(v)
    if kind == "B":
        return "base64:" + _b64(v)
    if kind == "BOOL":
        return "true" if v else "false"
    if kind == "NULL":
        return "null"
    if kind == "SS":
        return "[" + ", ".join(json.dumps(s, ensure_ascii=False) for s in sorted(v)) + "]"
    if kind == "NS":
        return "[" + ", ".join(sorted((str(n) for n in v), key=_number_key)) + "]"
    if kind == "BS":
        return "[" + ", ".join(sorted("base64:" + _b64(b) for b in v)) + "]"
    if kind == "L":
        return "[" + ", ".join(value_text(x, nested=True) for x in v) + "]"
    if kind == "M":
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)}: {value_text(x, nested=True)}"
                for k, x in sorted(v.items())
            )
            + "}"
        )
    return json.dumps(av, default=str, ensure_ascii=False)


def item_text(item: Mapping[str, Any] | None) -> str:
    """A whole item as ``{attr: value, ...}`` with plain values (``(absent)`` for no item)."""
    if item is None:
        return "(absent)"
    return "{" + ", ".join(f"{k}: {value_text(v, nested=True)}" for k, v in sorted(item.items())) + "}"


def changed_attributes(
    restored: Mapping[str, Any] | None, live: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """Top-level attributes that differ: ``(name, restored text, live text)``; numbers by value, sets unordered."""
    from ..items import items_equal

    old, new = restored or {}, live or {}
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is not None and (a == b or (b is not None and items_equal({name: a}, {name: b}))):
            continue
        out.append(
            (name, "(absent)" if a is None else value_text(a), "(absent)" if b is None else value_text(b))
        )
    return out


def time_text(value: Any) -> str:
    """An ISO 8601 time (or datetime) in UTC to the millisecond: ``2025-01-31T10:00:00.123Z``; '' for None."""
    if value in (None, ""):
        return ""
    when = value if isinstance(value, dt.datetime) else parse_iso(str(value))
    if when is None:
        return str(value)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime | None:
    """``2025-01-31T10:00:00Z`` / ``...+00:00`` as an aware datetime (naive ones taken as UTC); None if not a time."""
    try:
        when = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
