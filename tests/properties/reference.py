"""An equality of DynamoDB items written for the tests alone, straight from DynamoDB's rules.

Numbers equal by exact value (Decimal comparison never rounds), sets unordered, maps by name, lists in order,
binary by bytes, and a value of one type never equals a value of another.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def reference_equal(a: Any, b: Any) -> bool:
    """Two items (or None for absent), compared by DynamoDB's rules, independent of the runbook's code."""
    if a is None or b is None:
        return a is b
    return set(a) == set(b) and all(value_equal(a[k], b[k]) for k in a)


def value_equal(a: Any, b: Any) -> bool:
    """Two DynamoDB JSON attribute values."""
    if set(a) != set(b):
        return False
    ((tag, x),) = a.items()
    y = b[tag]
    if tag == "N":
        return Decimal(x) == Decimal(y)
    if tag == "NS":
        return {Decimal(v) for v in x} == {Decimal(v) for v in y}
    if tag in ("SS", "BS"):
        return set(map(bytes, x) if tag == "BS" else x) == set(map(bytes, y) if tag == "BS" else y)
    if tag == "B":
        return bytes(x) == bytes(y)
    if tag == "L":
        return len(x) == len(y) and all(value_equal(p, q) for p, q in zip(x, y, strict=True))
    if tag == "M":
        return set(x) == set(y) and all(value_equal(x[k], y[k]) for k in x)
    return x == y
