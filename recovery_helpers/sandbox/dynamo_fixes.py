"""Where moto's DynamoDB behaves differently from DynamoDB, corrected (installed once by ``patches.install``).

Each correction below names what DynamoDB does; tests/test_sandbox_conformance.py holds one test per correction,
and ``make conformance`` measures the whole against dynalite's suite (docs/reference/sandbox-conformance.md).
"""

from __future__ import annotations

import functools
from typing import Any

from . import numbers

#: DynamoDB's namespace for a ValidationException (moto uses the service's own, which clients cannot tell apart
#: from DynamoDB's only when they read the code after '#'; raw-HTTP clients compare the whole type).
VALIDATION_TYPE = "com.amazon.coral.validate#ValidationException"


def install() -> None:
    from . import item_rules, screening

    screening.install()
    item_rules.install()
    _item_size_as_dynamodb_counts()
    _validation_namespace()
    _exact_numbers()
    _exact_projection()
    _legacy_attribute_updates()


def _validation_namespace() -> None:
    from moto.dynamodb import exceptions

    exceptions.MockValidationException.error_type = VALIDATION_TYPE


# -- numbers: DynamoDB's rules, exact (moto's arithmetic used Python's 28-digit default context) ----------------
def _number_error(exc: numbers.NumberError) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(str(exc))


def _exact_numbers() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoType.__init__

    @functools.wraps(original)
    def __init__(self: Any, type_as_dict: Any) -> None:
        original(self, type_as_dict)
        if self.type == "N" and isinstance(self.value, str):
            self.value = _stored(self.value)
        elif self.type == "NS" and isinstance(self.value, list):
            self.value = [_stored(v) if isinstance(v, str) else v for v in self.value]

    def __add__(self: Any, other: Any) -> Any:
        if self.type != other.type or self.type != "N":
            return _add(self, other)
        try:
            return DynamoType({"N": numbers.add(self.value, other.value)})
        except numbers.NumberError as exc:
            raise _number_error(exc) from None

    def __sub__(self: Any, other: Any) -> Any:
        if self.type != other.type or self.type != "N":
            return _sub(self, other)
        try:
            return DynamoType({"N": numbers.subtract(self.value, other.value)})
        except numbers.NumberError as exc:
            raise _number_error(exc) from None

    _add, _sub = DynamoType.__add__, DynamoType.__sub__
    DynamoType.__init__ = __init__
    DynamoType.__add__ = __add__
    DynamoType.__sub__ = __sub__


def _stored(text: str) -> str:
    """DynamoDB's stored form of a valid number; anything else is left for the request checks to refuse."""
    try:
        return numbers.canonical(text)
    except numbers.NumberError:
        return text


# -- projections: on the stored values, never through boto3's 38-digit TypeDeserializer ------------------------
def _exact_projection() -> None:
    """moto projected an item by converting it to Python values and back with boto3's (de)serializer, whose
    decimal context traps on numbers >= 1E+38 (HTTP 500 on a Scan with ProjectionExpression) and which turns
    sets and binary values around. Here the projection walks the stored AttributeValues."""
    import copy
    import re

    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    index_path = re.compile(r"^(.*?)((?:\[\d+\])+)$")

    def steps(path: list[str]) -> list[str | int]:
        out: list[str | int] = []
        for part in path:
            m = index_path.match(part)
            if m:
                out.append(m.group(1))
                out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
            else:
                out.append(part)
        return out

    def pick(value: Any, path: list[str | int]) -> Any:
        """The part of ``value`` (a DynamoType) the path names, keeping the containers on the way, or None."""
        if not path:
            return copy.deepcopy(value)
        step, rest = path[0], path[1:]
        if isinstance(step, int):
            if value.type != "L" or step >= len(value.value):
                return None
            child = pick(value.value[step], rest)
            return None if child is None else DynamoType({"L": [child]})
        if value.type != "M" or step not in value.value:
            return None
        child = pick(value.value[step], rest)
        return None if child is None else DynamoType({"M": {step: child}})

    def merge(into: Any, part: Any) -> Any:
        if into is None:
            return part
        if into.type == part.type == "M":
            for k, v in part.value.items():
                into.value[k] = merge(into.value.get(k), v)
            return into
        if into.type == part.type == "L":
            into.value.extend(part.value)  # list elements keep the order they were named in, as DynamoDB does
            return into
        return part

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        root = DynamoType({"M": {}})
        root.value = dict(self.attrs)
        result: Any = None
        for expr in projection_expressions:
            part = pick(root, steps(expr))
            if part is not None:
                result = merge(result if result is not None else DynamoType({"M": {}}), part)
        item = Item.__new__(Item)
        item.hash_key, item.range_key = self.hash_key, self.range_key
        from moto.dynamodb.models.dynamo_type import LimitedSizeDict

        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs, result.value if result is not None else {})
        item.attrs = attrs
        return item

    Item.project = project


# -- legacy AttributeUpdates: DynamoDB's semantics (moto stored BOOL as a string, NULL deleted, 28-digit ADD) ---
def _legacy_attribute_updates() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    def mismatch() -> Exception:
        from moto.dynamodb.exceptions import MockValidationException

        return MockValidationException("Type mismatch for attribute to update")

    def update_with_attribute_updates(self: Any, attribute_updates: dict[str, Any]) -> None:
        for name, update in attribute_updates.items():
            action = update.get("Action") or "PUT"  # PUT when no Action is given, as DynamoDB does
            value = update.get("Value")
            current = self.attrs.get(name)
            if action == "PUT":
                self.attrs[name] = DynamoType(value)
                continue
            if action == "DELETE" and value is None:
                self.attrs.pop(name, None)
                continue
            kind = next(iter(value))
            if current is not None and current.type != kind:
                raise mismatch()
            if action == "ADD" and kind == "N":
                base = current.value if current is not None else "0"
                try:
                    self.attrs[name] = DynamoType({"N": numbers.add(base, value["N"])})
                except numbers.NumberError as exc:
                    raise _number_error(exc) from None
            elif action == "ADD":
                existing = list(current.value) if current is not None else []
                added = value[kind] if kind == "L" else [v for v in value[kind] if v not in existing]
                self.attrs[name] = DynamoType({kind: existing + list(added)})
            elif action == "DELETE" and current is not None:
                kept = [v for v in current.value if v not in value[kind]]
                if kept:
                    self.attrs[name] = DynamoType({kind: kept})
                else:
                    self.attrs.pop(name, None)

    Item.update_with_attribute_updates = update_with_attribute_updates


# -- item size: 409,600 bytes as DynamoDB counts them; a refused update changes nothing --------------------------
def _item_size_as_dynamodb_counts() -> None:
    """moto refused items over its own estimate of ~405,000 bytes, re-summing the whole item on every attribute
    set (quadratic). Puts are checked against DynamoDB's count in ``item_rules``; an update is checked on its
    result, and a refused or failed update leaves the item as it was (DynamoDB applies an update whole or not at
    all)."""
    import copy

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    from . import item_rules

    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign, assignment]
    original = DynamoDBBackend.update_item

    @functools.wraps(original)
    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge

        table = self.tables.get(table_name)
        before = None
        if table is not None:
            try:
                hash_value, range_value = self.get_keys_value(table, key)
                before = (hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value)))
            except Exception:  # noqa: BLE001 - a bad key: moto answers it below
                before = None
        try:
            item = original(self, table_name, key, *args, **kwargs)
            if item is not None and item_rules.item_size(item.attrs) > item_rules.MAX_ITEM_BYTES:
                raise ItemSizeToUpdateTooLarge()
            return item
        except Exception:
            if before is not None:
                _put_back(table, *before)
            raise

    DynamoDBBackend.update_item = update_item


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    """Restore one item of a table as it was (None: absent)."""
    if range_value is not None:
        bucket = table.items.get(hash_value, {})
        if item is None:
            bucket.pop(range_value, None)
            if not bucket:
                table.items.pop(hash_value, None)
        else:
            table.items.setdefault(hash_value, {})[range_value] = item
    elif item is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = item
