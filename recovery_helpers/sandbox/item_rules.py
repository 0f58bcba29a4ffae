"""DynamoDB's rules that need the table: keys against the schema, key and item sizes, batch shapes.

Checked in moto's handler (after authentication, before the operation), so a refused request changes nothing.
moto let through keys of any size, a 26-request batch, a put and a delete of one key in one batch, items up to
its own estimate of ~405,000 bytes; DynamoDB refuses each (limits: Developer Guide, "Service, account, and table
quotas"; sizes as DynamoDB counts them: "Item sizes and formats").
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from . import numbers

MAX_ITEM_BYTES = 409_600  # 400 KB: attribute names and values, as DynamoDB counts them
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


# -- sizes as DynamoDB counts them -------------------------------------------------------------------------------
def _blob(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def number_size(text: str) -> int:
    """Bytes a number takes: one per two significant digits, plus one (DynamoDB's encoding, as measured)."""
    value = numbers.parse(text)
    if value.is_zero():
        return 1
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    exponent = value.adjusted()
    return (
        1 + (len(digits) + 1) // 2 + (0 if len(digits) % 2 or exponent % 2 else 1) + (1 if value < 0 else 0)
    )


def value_size(value: Any) -> int:
    """Bytes an AttributeValue (request JSON or moto's DynamoType) takes."""
    kind, inner = _kind_and_value(value)
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(_blob(inner))
    if kind == "N":
        return number_size(inner)
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in inner)
    if kind == "BS":
        return sum(len(_blob(v)) for v in inner)
    if kind == "NS":
        return sum(number_size(v) for v in inner)
    if kind in ("NULL", "BOOL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + len(inner) + item_size(inner)
    return 0


def item_size(attrs: dict[str, Any]) -> int:
    """Bytes an item takes: each attribute's name (UTF-8) and value."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in attrs.items())


def _kind_and_value(value: Any) -> tuple[str, Any]:
    if isinstance(value, dict):
        return next(iter(value.items()))
    return value.type, value.value  # moto's DynamoType


# -- keys --------------------------------------------------------------------------------------------------------
def _key_schema(table: Any) -> list[tuple[str, str, bool]]:
    out = [(table.hash_key_attr, table.hash_key_type, True)]
    if table.range_key_attr:
        out.append((table.range_key_attr, table.range_key_type, False))
    return out


def _check_key_piece(name: str, kind: str, value: Any, is_hash: bool) -> None:
    if kind in ("S", "B") and value in ("", b""):
        raise _invalid(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
            f"contain an empty {'string' if kind == 'S' else 'binary'} value. Key: {name}"
        )
    if kind == "N":
        return
    size = len(value.encode("utf-8")) if kind == "S" else len(_blob(value))
    if is_hash and size > MAX_HASH_KEY_BYTES:
        raise _invalid(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size "
            f"limit of{MAX_HASH_KEY_BYTES} bytes"
        )
    if not is_hash and size > MAX_RANGE_KEY_BYTES:
        raise _invalid(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded "
            f"the size limit of {MAX_RANGE_KEY_BYTES} bytes"
        )


def check_key(table: Any, key: dict[str, Any]) -> None:
    """A Key parameter: exactly the table's key attributes, of their types, not empty, not too big."""
    schema = _key_schema(table)
    if len(key) != len(schema):
        raise _invalid("The provided key element does not match the schema")
    for name, kind, is_hash in schema:
        if name not in key or kind not in key[name]:
            raise _invalid("The provided key element does not match the schema")
        _check_key_piece(name, kind, key[name][kind], is_hash)


def check_item(table: Any, item: dict[str, Any]) -> None:
    """An item to put: the key attributes present and typed, index keys typed, within 400 KB."""
    for name, kind, is_hash in _key_schema(table):
        if name not in item:
            raise _invalid(f"One or more parameter values were invalid: Missing the key {name} in the item")
        if kind not in item[name]:
            actual = next(iter(item[name]))
            raise _invalid(
                f"One or more parameter values were invalid: Type mismatch for key {name} expected: "
                f"{kind} actual: {actual}"
            )
        _check_key_piece(name, kind, item[name][kind], is_hash)
    check_index_types(table, item)
    if item_size(item) > MAX_ITEM_BYTES:
        raise _invalid("Item size has exceeded the maximum allowed size")


def check_index_types(table: Any, item: dict[str, Any]) -> None:
    """Each index key attribute the item has is of the type the table defines for it."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    for index in list(table.indexes) + list(table.global_indexes):
        for part in index.schema:
            name = part["AttributeName"]
            kind = types.get(name)
            if name in item and kind and kind not in item[name]:
                actual = next(iter(item[name]))
                raise _invalid(
                    f"One or more parameter values were invalid: Type mismatch for Index Key {name} "
                    f"Expected: {kind} Actual: {actual} IndexName: {index.name}"
                )


def _key_of(table: Any, attrs: dict[str, Any]) -> tuple[Any, ...]:
    parts = []
    for name, kind, _ in _key_schema(table):
        value = attrs[name][kind]
        parts.append(_blob(value) if kind == "B" else value)
    return tuple(parts)


# -- per operation -----------------------------------------------------------------------------------------------
def _table(backend: Any, name: str | None) -> Any | None:
    return backend.tables.get(name) if name else None


def _put_item(backend: Any, body: dict[str, Any]) -> None:
    table = _table(backend, body.get("TableName"))
    if table is not None and "Item" in body:
        check_item(table, body["Item"])
    elif "Item" in body and item_size(body["Item"]) > MAX_ITEM_BYTES:
        # DynamoDB measures the item before it looks the table up (only on this failing path, so no cost)
        raise _invalid("Item size has exceeded the maximum allowed size")


def _keyed(backend: Any, body: dict[str, Any]) -> None:
    table = _table(backend, body.get("TableName"))
    if table is not None and "Key" in body:
        check_key(table, body["Key"])


def _key_paths(backend: Any, body: dict[str, Any], operation: str) -> None:
    table = _table(backend, body.get("TableName"))
    if table is not None and (
        body.get("ProjectionExpression") or body.get("FilterExpression") or body.get("QueryFilter")
    ):
        from . import key_paths

        key_paths.check(table, body, operation)


def _get_item(backend: Any, body: dict[str, Any]) -> None:
    _keyed(backend, body)
    _key_paths(backend, body, "get_item")


def _update_item(backend: Any, body: dict[str, Any]) -> None:
    for name, update in (body.get("AttributeUpdates") or {}).items():
        action, value = update.get("Action") or "PUT", update.get("Value")
        kind = next(iter(value)) if value else None
        if value is None and action != "DELETE":
            raise _invalid(
                "One or more parameter values were invalid: Only DELETE action is allowed when no "
                "attribute value is specified"
            )
        if value is not None and action == "DELETE" and kind not in ("SS", "NS", "BS"):
            raise _invalid(
                f"One or more parameter values were invalid: DELETE action with value is not supported "
                f"for the type {kind}"
            )
        if value is not None and action == "ADD" and kind not in ("L", "SS", "NS", "BS", "N"):
            raise _invalid(
                f"One or more parameter values were invalid: ADD action is not supported for the type {kind}"
            )
    _keyed(backend, body)
    table = _table(backend, body.get("TableName"))
    if table is not None:
        from .return_values import named_paths

        targets = named_paths(
            body.get("UpdateExpression"), body.get("AttributeUpdates"), body.get("ExpressionAttributeNames")
        )
        for name in [path[0] for path in targets]:
            if name in table.table_key_attrs:
                raise _invalid(
                    f"One or more parameter values were invalid: Cannot update attribute {name}. This "
                    "attribute is part of the key"
                )


def _batch_write(backend: Any, body: dict[str, Any]) -> None:
    requests = body.get("RequestItems") or {}
    for writes in requests.values():
        if any(not w for w in writes):
            raise _invalid(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                "supported datatypes"
            )
        for write in writes:
            item = (write.get("PutRequest") or {}).get("Item")
            if item is not None and item_size(item) > MAX_ITEM_BYTES:
                raise _invalid("Item size has exceeded the maximum allowed size")
    if sum(len(w) for w in requests.values()) > MAX_BATCH_WRITE:
        raise _invalid("Too many items requested for the BatchWriteItem call")
    for name, writes in requests.items():
        table = _table(backend, name)
        if table is None:
            return  # moto answers ResourceNotFoundException, before any duplicate check (as DynamoDB)
        seen: set[tuple[Any, ...]] = set()
        for write in writes:
            if "PutRequest" in write:
                check_item(table, write["PutRequest"]["Item"])
                key = _key_of(table, write["PutRequest"]["Item"])
            else:
                check_key(table, write["DeleteRequest"]["Key"])
                key = _key_of(table, write["DeleteRequest"]["Key"])
            if key in seen:
                raise _invalid("Provided list of item keys contains duplicates")
            seen.add(key)


def _batch_get(backend: Any, body: dict[str, Any]) -> None:
    requests = body.get("RequestItems") or {}
    total = 0
    for name, request in requests.items():
        table = _table(backend, name)
        seen: set[tuple[Any, ...]] = set()
        for key in request.get("Keys") or []:
            if table is not None:
                check_key(table, key)
                marker = _key_of(table, key)
                if marker in seen:
                    raise _invalid("Provided list of item keys contains duplicates")
                seen.add(marker)
            total += 1
            if total > MAX_BATCH_GET:
                raise _invalid("Too many items requested for the BatchGetItem call")


def _query_keys(table: Any, body: dict[str, Any]) -> None:
    """Key conditions the key schema read cannot serve (moto: KeyError/HTTP 500, or another reading)."""
    from . import query_keys
    from .start_keys import _schemas

    _, schema, _ = _schemas(table, body.get("IndexName"))
    keys = query_keys.key_conditions(body)
    if schema and keys is not None:
        query_keys.check(schema, keys)


def _start_key(query: bool) -> Any:
    def check(backend: Any, body: dict[str, Any]) -> None:
        table = _table(backend, body.get("TableName"))
        index = body.get("IndexName")
        if (
            table is not None
            and index
            and all(i.name != index for i in [*table.indexes, *table.global_indexes])
        ):
            raise _invalid(f"The table does not have the specified index: {index}")  # moto: ResourceNotFound
        if query and table is not None:
            _query_keys(table, body)
        if table is not None and body.get("ExclusiveStartKey") is not None:
            from . import start_keys

            start_keys.check(table, body, query=query)
        _key_paths(backend, body, "query" if query else "scan")

    return check


CHECKS = {
    "put_item": _put_item,
    "scan": _start_key(query=False),
    "query": _start_key(query=True),
    "get_item": _get_item,
    "delete_item": _keyed,
    "update_item": _update_item,
    "batch_write_item": _batch_write,
    "batch_get_item": _batch_get,
}


def install() -> None:
    """Run each operation's checks in moto's handler, on the parameters it parsed, before the operation."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.responses import DynamoHandler

    # moto refused any update whose expression *read* a key attribute (SET b = if_not_exists(b, a)); only
    # writing one is refused, checked in _update_item above
    validators.UpdateHashRangeKeyValidator.check_for_hash_or_range_key = lambda self, node: node

    from . import missing_table

    for name, check in CHECKS.items():
        original = getattr(DynamoHandler, name)

        def handler(self: Any, _original: Any = original, _check: Any = check, _name: str = name) -> Any:
            missing_table.check(self.dynamodb_backend, _name, self.body)
            _check(self.dynamodb_backend, self.body)
            return _original(self)

        setattr(DynamoHandler, name, functools.wraps(original)(handler))
