"""Hypothesis strategies for DynamoDB items of every type, odd attribute names and every key shape.

Numbers span DynamoDB's whole range (1 to 38 significant digits, magnitudes 1E-130 to 9.99E+125) and come
written in every notation DynamoDB accepts (plain, exponent with e/E and a sign, leading and trailing zeros),
so that every layer has to compare and store them by value.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from recovery_helpers.items import KeySchema

RESERVED = [
    "name",
    "status",
    "size",
    "data",
    "value",
    "key",
    "order",
    "timestamp",
    "user",
    "year",
    "TTL",
    "AND",
    "IN",
    "BETWEEN",
    "SET",
    "REMOVE",
]
ODD = [
    "a.b",
    "#x",
    ":v",
    "a b",
    "tenant id",
    "doc.no",
    "Ünïcode",
    "名前",
    "emoji 🙂",
    "-",
    "_",
    "B",
    "S",
    "N",
    "M",
    "L",
    "BS",
    "NULL",
]
names = st.one_of(st.sampled_from(RESERVED + ODD), st.text(min_size=1, max_size=8))


@st.composite
def decimals(draw: Any) -> Decimal:
    """A number DynamoDB can store: up to 38 significant digits, magnitude 1E-130 .. 9.99E+125, or zero."""
    if draw(st.integers(0, 30)) == 0:
        return Decimal(0)
    digits = draw(st.integers(1, 38))
    coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
    adjusted = draw(st.one_of(st.integers(-130, 125), st.sampled_from([-130, 125, -1, 0, 37, 38])))
    exponent = adjusted - (digits - 1)
    sign = draw(st.sampled_from([0, 1]))
    return Decimal((sign, tuple(int(c) for c in str(coefficient)), exponent))


@st.composite
def number_texts(draw: Any, json_number: bool = False) -> str:
    """A number as a user or an SDK might write it; ``json_number``: only notations valid as a JSON number."""
    d = draw(decimals())
    plain = format(d, "f")
    notations = [plain, str(d), f"{d:e}", f"{d:E}"]
    if "." in plain:
        notations.append(plain + "0" * draw(st.integers(1, 3)))
    if not json_number:
        notations.append(("-" if d < 0 else "") + "00" + plain.lstrip("-"))
    return draw(st.sampled_from(notations))


strings = st.text(max_size=12)
blobs = st.binary(max_size=12)
scalars = st.one_of(
    strings.map(lambda s: {"S": s}),
    number_texts().map(lambda n: {"N": n}),
    blobs.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=4).map(lambda s: {"SS": sorted(s)}),
    st.sets(decimals(), min_size=1, max_size=4).map(lambda s: {"NS": [format(d, "f") for d in s]}),
    st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=4).map(lambda s: {"BS": sorted(s)}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(names, inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=8,
)


def _distinct_ns(value: dict[str, Any]) -> bool:
    """NS elements must differ by value (0 and -0, or 1E+2 and 100, are the same number)."""
    return len({Decimal(x) for x in value["NS"]}) == len(value["NS"])


def _nested_ok(value: dict[str, Any]) -> bool:
    ((tag, inner),) = value.items()
    if tag == "NS":
        return _distinct_ns(value)
    if tag == "L":
        return all(_nested_ok(v) for v in inner)
    if tag == "M":
        return all(_nested_ok(v) for v in inner.values())
    return True


values = values.filter(_nested_ok)

KEY_TYPES = ["S", "N", "B"]
KEY_NAMES = ["pk", "tenant id", "doc.no", "#k", ":id", "名前"]


@st.composite
def schemas(draw: Any) -> KeySchema:
    """Every key shape: S/N/B hash, with or without an S/N/B range, odd key attribute names."""
    hash_name = draw(st.sampled_from(KEY_NAMES))
    hash_type = draw(st.sampled_from(KEY_TYPES))
    if draw(st.booleans()):
        return KeySchema(hash_name, hash_type)
    range_name = draw(st.sampled_from([n for n in KEY_NAMES + ["sk", "sort key"] if n != hash_name]))
    return KeySchema(hash_name, hash_type, range_name, draw(st.sampled_from(KEY_TYPES)))


def key_value(type_: str) -> st.SearchStrategy[dict[str, Any]]:
    if type_ == "S":
        return st.text(min_size=1, max_size=12).map(lambda s: {"S": s})
    if type_ == "N":
        return number_texts().map(lambda n: {"N": n})
    return st.binary(min_size=1, max_size=12).map(lambda b: {"B": b})


@st.composite
def keys(draw: Any, schema: KeySchema) -> dict[str, Any]:
    return {name: draw(key_value(type_)) for name, type_ in schema.types().items()}


@st.composite
def items(draw: Any, schema: KeySchema) -> dict[str, Any]:
    """An item of the table: its key plus up to six attributes of any type."""
    attributes = draw(st.dictionaries(names.filter(lambda n: n not in schema.names), values, max_size=6))
    return {**draw(keys(schema)), **attributes}


@dataclass(frozen=True)
class KeyLine:
    """A keys-file line as a user writes it (numbers as JSON numbers in any notation) and the key it means."""

    text: str
    key: dict[str, Any]


@st.composite
def key_lines(draw: Any, schema: KeySchema) -> KeyLine:
    parts, key = [], {}
    for name, type_ in schema.types().items():
        if type_ == "N":
            text = draw(number_texts(json_number=True))
            parts.append(f"{json.dumps(name)}: {text}")
            key[name] = {"N": text}
        elif type_ == "S":
            value = draw(st.text(min_size=1, max_size=12))
            parts.append(f"{json.dumps(name)}: {json.dumps(value)}")
            key[name] = {"S": value}
        else:
            value = draw(st.binary(min_size=1, max_size=12))
            parts.append(f"{json.dumps(name)}: {json.dumps(base64.b64encode(value).decode())}")
            key[name] = {"B": value}
    return KeyLine("{" + ", ".join(parts) + "}", key)
