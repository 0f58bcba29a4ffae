"""Attribute-level differences between the two versions of an item, as rows for the review tables.

Pure functions over DynamoDB JSON (deepdiff underneath): ``diff_rows`` for one plan entry, ``key_text`` and
``show_value`` for readable cells. No widgets, no AWS: ``diff`` builds the review tables from these and
``views.diff`` shows them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary
from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from .items import KeySchema, normalize_number, to_python
from .plan import PlanEntry

MASK = "••••"
ABSENT = "(absent)"


def key_text(key_schema: KeySchema, key: Mapping[str, Any], mask: Iterable[str] = ()) -> str:
    """A key as ``pk=tenant-1, sk=doc-7`` for tables (masked attributes as ••••)."""
    plain = key_schema.key_to_plain(key)
    return ", ".join(f"{n}={MASK if n in mask else plain[n]}" for n in key_schema.names)


class Base64Text(str):
    """Binary shown as base64 text; its own type so that a B attribute never equals an S attribute."""


def _plain(item: Mapping[str, Any] | None) -> dict[str, Any]:
    """Python values for deepdiff: Decimals, sets, binary as Base64Text (deepdiff cannot hash raw bytes)."""
    if item is None:
        return {}
    return {k: _unbinary(v) for k, v in to_python(item).items()}


def _unbinary(value: Any) -> Any:
    if isinstance(value, Binary):
        return Base64Text(base64.b64encode(bytes(value.value)).decode())
    if isinstance(value, dict):
        return {k: _unbinary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unbinary(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {_unbinary(v) for v in value}
    return value


def show_value(value: Any) -> str:
    """A readable text of a Python attribute value (numbers trimmed, binary as base64, sets sorted)."""
    if value is notpresent:
        return ABSENT
    return (
        json.dumps(_jsonable(value), ensure_ascii=False)
        if isinstance(value, (dict, list, set, frozenset))
        else _scalar(value)
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return normalize_number(str(value))
    if isinstance(value, Base64Text):
        return "base64:" + value
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=lambda v: (str(type(v)), str(v)))
    if isinstance(value, Base64Text):
        return _scalar(value)
    if isinstance(value, (str, bool)) or value is None:
        return value
    return _scalar(value)


def _path_text(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_CHANGE_WORDS = {
    "values_changed": "changed",
    "type_changes": "type changed",
    "dictionary_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_added": "list item added",
    "iterable_item_removed": "list item removed",
    "set_item_added": "set changed",
    "set_item_removed": "set changed",
}


def diff_rows(entry: PlanEntry, key_schema: KeySchema, mask: Iterable[str] = ()) -> list[dict[str, str]]:
    """Attribute-level differences of one entry: path, old (restored: what the patch writes back), new (live).

    Values of masked attributes (at any depth under them) show as ••••; the comparison used the real values.
    """
    mask = set(mask)
    old, new = _plain(entry.restored), _plain(entry.live)
    # threshold 0: always report attribute by attribute, never "the whole item changed"
    tree = DeepDiff(old, new, view="tree", threshold_to_diff_deeper=0)
    rows: dict[str, dict[str, str]] = {}
    for change_type, levels in tree.items():
        for level in levels:
            if change_type in ("set_item_added", "set_item_removed"):
                level = level.up  # one row per set, showing the whole set before and after
            path = [p for p in level.path(output_format="list") if p is not None]
            text = _path_text(path)
            if text in rows:
                continue
            masked = bool(path) and path[0] in mask
            rows[text] = {
                "key": key_text(key_schema, entry.key, mask),
                "classification": entry.classification,
                "path": text,
                "change": _CHANGE_WORDS.get(change_type, change_type.replace("_", " ")),
                "old": _masked(level.t1, masked),
                "new": _masked(level.t2, masked),
            }
    return [rows[k] for k in sorted(rows)]


def _masked(value: Any, masked: bool) -> str:
    if value is notpresent:
        return ABSENT
    return MASK if masked else show_value(value)
