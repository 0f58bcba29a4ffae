"""The canonical form two exports of the same item share, exact on DynamoDB's 38-digit numbers.

Same semantics as :func:`recovery_helpers.items.items_equal`, computed here on its own (the compare engines must
not depend on how the rest of the package rounds numbers):

- numbers compare by value with every digit: ``1.50``, ``1.5`` and ``15E-1`` are one number, and two 38-digit
  numbers differing in the last digit are two. They are parsed by :class:`decimal.Decimal` (exact, whatever the
  context) and written as ``<sign><digits>E<exponent>`` with no leading or trailing zeros; never through floats;
- sets (``SS``, ``NS``, ``BS``) are unordered: their canonical elements are sorted;
- maps compare by key (sorted), lists keep their order;
- binary is base64 text (exports already hold it so; bytes from boto3 are encoded).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

#: Enough precision for any DynamoDB number (38 significant digits), with margin.
PRECISION = 50


class MalformedItemError(ValueError):
    """An exported value that is not DynamoDB JSON (the export is damaged, or not a DynamoDB export)."""


def canonical_number(text: str) -> str:
    """A number's canonical text: equal text iff equal value (``"1.50"`` and ``"15E-1"`` give ``"15E-1"``)."""
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, AttributeError) as exc:
        raise MalformedItemError(f"{text!r} is not a DynamoDB number") from exc
    if not d.is_finite():
        raise MalformedItemError(f"{text!r} is not a DynamoDB number")
    if d.is_zero():
        return "0"
    with localcontext() as ctx:
        ctx.prec = PRECISION
        sign, digits, exponent = d.normalize().as_tuple()
    return f"{'-' if sign else ''}{''.join(map(str, digits))}E{exponent}"


def _binary(value: Any) -> str:
    value = getattr(value, "value", value)  # boto3's Binary
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def canonical_value(value: Mapping[str, Any]) -> Any:
    """The canonical (JSON-serialisable) form of one DynamoDB attribute value."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise MalformedItemError(f"{value!r} is not a DynamoDB attribute value (one type tag expected)")
    ((tag, inner),) = value.items()
    if tag == "S" or tag == "BOOL" or tag == "NULL":
        return {tag: inner}
    if tag == "N":
        return {"N": canonical_number(inner)}
    if tag == "B":
        return {"B": _binary(inner)}
    if tag == "SS":
        return {"SS": sorted(set(inner))}
    if tag == "NS":
        return {"NS": sorted({canonical_number(x) for x in inner})}
    if tag == "BS":
        return {"BS": sorted({_binary(x) for x in inner})}
    if tag == "M":
        return {"M": {k: canonical_value(v) for k, v in sorted(inner.items())}}
    if tag == "L":
        return {"L": [canonical_value(v) for v in inner]}
    raise MalformedItemError(f"unknown DynamoDB type tag {tag!r}")


def canonical_item(item: Mapping[str, Any] | None) -> Any:
    """The canonical form of a whole item (None: the item does not exist)."""
    if item is None:
        return None
    return {name: canonical_value(v) for name, v in sorted(item.items())}


def canonical_text(item: Mapping[str, Any] | None) -> str:
    """Canonical JSON text of an item: equal text iff the items are equal."""
    return json.dumps(canonical_item(item), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def items_equal(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Are two items (DynamoDB JSON) the same item value? (Same answer as comparing canonical_text.)"""
    if a is None or b is None:
        return a is b
    if a.keys() != b.keys():
        return False
    # attribute by attribute: only values that differ as written are converted (most are written alike)
    return all(va == b[name] or comparable_value(va) == comparable_value(b[name]) for name, va in a.items())


def _decimal(text: Any) -> Decimal:
    try:
        d = Decimal(text)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MalformedItemError(f"{text!r} is not a DynamoDB number") from exc
    if not d.is_finite():
        raise MalformedItemError(f"{text!r} is not a DynamoDB number")
    return d


def comparable_value(value: Mapping[str, Any]) -> Any:
    """A form of one attribute value that compares (``==``) like the canonical text, but cheaper to build.

    Numbers become :class:`~decimal.Decimal` (their comparison is exact, whatever the context precision), sets
    frozensets, maps dicts (dict equality ignores key order), lists lists.
    """
    try:
        ((tag, inner),) = value.items()
    except (AttributeError, ValueError) as exc:
        raise MalformedItemError(
            f"{value!r} is not a DynamoDB attribute value (one type tag expected)"
        ) from exc
    if tag == "N":
        return ("N", _decimal(inner))
    if tag == "M":
        return ("M", {k: comparable_value(v) for k, v in inner.items()})
    if tag == "L":
        return ("L", [comparable_value(v) for v in inner])
    if tag == "SS":
        return ("SS", frozenset(inner))
    if tag == "NS":
        return ("NS", frozenset(_decimal(x) for x in inner))
    if tag == "B":
        return ("B", _binary(inner))
    if tag == "BS":
        return ("BS", frozenset(_binary(x) for x in inner))
    if tag in ("S", "BOOL", "NULL"):
        return (tag, inner)
    raise MalformedItemError(f"unknown DynamoDB type tag {tag!r}")


def comparable_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`comparable_value` of every attribute."""
    return {name: comparable_value(v) for name, v in item.items()}


def key_of(item: Mapping[str, Any], key_names: Sequence[str]) -> dict[str, Any]:
    """The key attributes of an item (MalformedItemError names the missing one)."""
    try:
        return {name: item[name] for name in key_names}
    except KeyError as exc:
        raise MalformedItemError(
            f"an exported item has no attribute {exc.args[0]!r}: is the key ({', '.join(key_names)}) right?"
        ) from exc


def key_text(key: Mapping[str, Any], key_names: Iterable[str]) -> str:
    """Canonical text of a key, the order of output lines (the same in every engine)."""
    return json.dumps(
        [canonical_value(key[name]) for name in key_names], separators=(",", ":"), ensure_ascii=False
    )
