"""Items and keys in DynamoDB JSON: key schemas, canonical forms, digests, and the keys-file format.

Everything here works on the low-level DynamoDB JSON shape (``{"S": "x"}``, ``{"N": "1.5"}``...), which is what
the client API, exports and streams all speak. Numbers compare by value, sets ignore order, maps ignore key
order, lists keep theirs: two exports of the same item always canonicalize to the same text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeSerializer

from .errors import InputError
from .numbers import ExactDeserializer, check_number, normalize_number

Item = dict[str, dict[str, Any]]
Key = dict[str, dict[str, Any]]

_serializer = TypeSerializer()
_deserializer = ExactDeserializer()


def canonical_value(value: Mapping[str, Any]) -> Any:
    """A canonical, JSON-serialisable form of one attribute value, equal for equal DynamoDB values."""
    ((tag, inner),) = value.items()
    if tag == "N":
        return {"N": normalize_number(inner)}
    if tag == "NS":
        return {"NS": sorted({normalize_number(x) for x in inner}, key=Decimal)}
    if tag in ("SS",):
        return {"SS": sorted(set(inner))}
    if tag == "B":
        return {"B": _b64(inner)}
    if tag == "BS":
        return {"BS": sorted({_b64(x) for x in inner})}
    if tag == "M":
        return {"M": {k: canonical_value(v) for k, v in sorted(inner.items())}}
    if tag == "L":
        return {"L": [canonical_value(v) for v in inner]}
    return {tag: inner}


def canonical_item(item: Mapping[str, Any] | None) -> Any:
    """Canonical form of a whole item (None stays None: the item does not exist)."""
    if item is None:
        return None
    return {k: canonical_value(v) for k, v in sorted(item.items())}


def canonical_json(item: Mapping[str, Any] | None) -> str:
    """Canonical text of an item: the same for two reads or exports of the same item.

    The text is ``json.dumps(canonical_item(item), sort_keys=True, separators=(",", ":"))`` (digests in older
    run folders were made that way), written directly, without building the canonical structure first.
    """
    if item is None:
        return "null"
    return "{" + ",".join(_quote(k) + ":" + _canonical_text(v) for k, v in sorted(item.items())) + "}"


_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # json.dumps's own string writer
_LITERALS = {True: "true", False: "false"}


def _canonical_text(value: Mapping[str, Any]) -> str:
    """``canonical_value(value)`` as canonical JSON text (see canonical_json)."""
    ((tag, inner),) = value.items()
    if tag == "S" and type(inner) is str:
        return '{"S":' + _quote(inner) + "}"
    if tag == "N":
        return '{"N":' + _quote(normalize_number(inner)) + "}"
    if tag == "M":
        body = ",".join(_quote(k) + ":" + _canonical_text(v) for k, v in sorted(inner.items()))
        return '{"M":{' + body + "}}"
    if tag == "L":
        return '{"L":[' + ",".join(_canonical_text(v) for v in inner) + "]}"
    if tag in ("BOOL", "NULL") and type(inner) is bool:
        return '{"' + tag + '":' + _LITERALS[inner] + "}"
    if tag == "SS" and all(type(x) is str for x in inner):
        return '{"SS":[' + ",".join(_quote(x) for x in sorted(set(inner))) + "]}"
    # the rarer types (and anything malformed): the structure, written by json.dumps
    return json.dumps(canonical_value(value), sort_keys=True, separators=(",", ":"))


def item_digest(item: Mapping[str, Any] | None) -> str:
    """A short stable digest of an item's content ("absent" for a missing item)."""
    if item is None:
        return "absent"
    return hashlib.sha256(canonical_json(item).encode()).hexdigest()[:32]


def items_equal(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return canonical_json(a) == canonical_json(b)


def _b64(value: Any) -> str:
    """Binary as base64 text, whatever form it arrived in (bytes from boto3, base64 text from JSON files)."""
    if isinstance(value, Binary):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def to_python(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON to plain Python values (Decimal, set, Binary...); numbers exact, whatever their size."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def from_python(item: Mapping[str, Any]) -> Item:
    """Plain Python values to DynamoDB JSON, with boto3's TypeSerializer."""
    return {k: _serializer.serialize(v) for k, v in item.items()}


def to_json_safe(value: Any) -> Any:
    """DynamoDB JSON with bytes turned into base64 text, so it can be written to a JSON file."""
    if isinstance(value, (bytes, bytearray, Binary)):
        return _b64(value)
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_safe(v) for v in value]
    return value


def from_json_safe(value: Any) -> Any:
    """Inverse of :func:`to_json_safe` for DynamoDB JSON: base64 text under B/BS becomes bytes again."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "B" and isinstance(v, str) and len(value) == 1:
                out[k] = base64.b64decode(v)
            elif k == "BS" and isinstance(v, list) and len(value) == 1:
                out[k] = [base64.b64decode(x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = from_json_safe(v)
        return out
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class KeySchema:
    """The primary key of a table: hash attribute and type, optional range attribute and type."""

    hash_name: str
    hash_type: str
    range_name: str | None = None
    range_type: str | None = None

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> KeySchema:
        """From DescribeTable's ``Table`` (or a restored table's TableDescription)."""
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        hash_name = next(k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH")
        range_name = next((k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "RANGE"), None)
        return cls(hash_name, types[hash_name], range_name, types[range_name] if range_name else None)

    @classmethod
    def of_table(cls, dynamodb: Any, table_name: str) -> KeySchema:
        return cls.from_description(dynamodb.describe_table(TableName=table_name)["Table"])

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hash_name,) if self.range_name is None else (self.hash_name, self.range_name)

    def types(self) -> dict[str, str]:
        out = {self.hash_name: self.hash_type}
        if self.range_name:
            out[self.range_name] = self.range_type or "S"
        return out

    def key_of(self, item: Mapping[str, Any]) -> Key:
        """The key attributes of an item (DynamoDB JSON)."""
        try:
            return {name: item[name] for name in self.names}
        except KeyError as exc:
            raise InputError(
                f"item has no key attribute {exc.args[0]!r}; the table's key is {self.describe()}"
            ) from exc

    def key_id(self, key: Mapping[str, Any]) -> str:
        """A stable text id of a key, usable as a dict key, file name part or sort key."""
        return json.dumps(
            [canonical_value(key[name]) for name in self.names], sort_keys=True, separators=(",", ":")
        )

    def key_from_id(self, key_id: str) -> Key:
        values = json.loads(key_id)
        return {name: from_json_safe(v) for name, v in zip(self.names, values)}

    def describe(self) -> str:
        parts = [f"{self.hash_name} ({self.hash_type}, partition)"]
        if self.range_name:
            parts.append(f"{self.range_name} ({self.range_type}, sort)")
        return " + ".join(parts)

    def key_from_plain(self, obj: Mapping[str, Any], *, where: str = "") -> Key:
        """A key from the keys-file form: ``{"pk": "tenant-1", "sk": 7}``; binary as base64 text.

        Refuses wrong names and wrong types with a message that says the expected key.
        """
        at = f" ({where})" if where else ""
        if not isinstance(obj, Mapping):
            raise InputError(f"expected a JSON object with {self.describe()}{at}, got {obj!r}")
        names = set(obj)
        if names != set(self.names):
            raise InputError(
                f"key {dict(obj)!r}{at} has attributes {sorted(names)}; the table's key is {self.describe()}. "
                "Fix the file so that every line names exactly the key attributes."
            )
        return {name: _plain_to_attr(obj[name], self.types()[name], name, at) for name in self.names}

    def key_to_plain(self, key: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`key_from_plain`: whole numbers as JSON integers, others as DynamoDB's own text.

        Never a float (which would lose digits): a fractional number key comes out as the string DynamoDB
        stores (``"12345678.90123456789"``), which :meth:`key_from_plain` reads back exactly.
        """
        out: dict[str, Any] = {}
        for name in self.names:
            ((tag, inner),) = key[name].items()
            if tag == "N":
                text = normalize_number(inner)
                out[name] = int(text) if "." not in text and "E" not in text else text
            elif tag == "B":
                out[name] = _b64(inner)
            else:
                out[name] = inner
        return out


def _plain_to_attr(value: Any, type_: str, name: str, at: str) -> dict[str, Any]:
    if type_ == "S":
        if not isinstance(value, str) or value == "":
            raise InputError(f"key attribute {name!r}{at} must be a non-empty string, got {_shown(value)}")
        return {"S": value}
    if type_ == "N":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            raise InputError(f"key attribute {name!r}{at} must be a number, got {_shown(value)}")
        try:
            return {"N": check_number(value)}
        except InputError as exc:
            if "is not a DynamoDB number" in str(exc):
                raise InputError(f"key attribute {name!r}{at} must be a number, got {_shown(value)}") from exc
            raise InputError(
                f"key attribute {name!r}{at} must be a number DynamoDB can store: {exc}"
            ) from exc
    if type_ == "B":
        if not isinstance(value, str):
            raise InputError(
                f"key attribute {name!r}{at} must be base64 text (binary key), got {_shown(value)}"
            )
        try:
            return {"B": base64.b64decode(value, validate=True)}
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"key attribute {name!r}{at} is not valid base64: {value!r}") from exc
    raise InputError(f"unsupported key type {type_!r} for {name!r}")


def _shown(value: Any) -> str:
    """A value read from a user's file as the user wrote it (Decimal without its repr)."""
    return str(value) if isinstance(value, Decimal) else repr(value)


def iter_chunks(iterable: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Consecutive lists of at most ``size`` elements."""
    chunk: list[Any] = []
    for x in iterable:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
