"""The PartiQL key-equality statements moto's parser cannot take with ``?`` parameters, done as AWS does.

moto's parser asserts (HTTP 500) on ``DELETE ... WHERE k = ?`` and ``INSERT ... VALUE {'k': ?}``, and answers a
duplicate INSERT or an UPDATE of a missing item with success. The three single-item forms below are executed
here; every other statement goes to moto unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Callable

_NAME = r'"?([A-Za-z0-9_.\-]+)"?'
_KEY_WHERE = rf'WHERE\s+{_NAME}\s*=\s*\?(?:\s+AND\s+{_NAME}\s*=\s*\?)?\s*;?\s*$'
DELETE = re.compile(rf'^\s*DELETE\s+FROM\s+{_NAME}\s+{_KEY_WHERE}', re.I)
UPDATE = re.compile(rf'^\s*UPDATE\s+{_NAME}\s+SET\s+{_NAME}\s*=\s*\?\s+{_KEY_WHERE}', re.I)
INSERT = re.compile(r"^\s*INSERT\s+INTO\s+" + _NAME + r"\s+VALUE\s*\{(.*)\}\s*;?\s*$", re.I | re.S)
_FIELD = re.compile(r"""^\s*['"]([^'"]+)['"]\s*:\s*\?\s*$""")


def wrap_execute_statement(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, statement: str, parameters: list[dict[str, Any]]) -> Any:
        if parameters:
            handled = _try(self, statement, parameters)
            if handled is not None:
                return handled
        return fn(self, statement, parameters)

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _key(table: Any, names: list[str | None], values: list[dict[str, Any]]) -> dict[str, Any] | None:
    pairs = {n: v for n, v in zip(names, values) if n}
    if set(pairs) != set(table.table_key_attrs):
        return None
    return pairs


def _try(backend: Any, statement: str, parameters: list[dict[str, Any]]) -> list[Any] | None:
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    from .restores import _error

    m = DELETE.match(statement)
    if m:
        table = backend.tables.get(m.group(1))
        key = table and _key(table, [m.group(2), m.group(3)], parameters)
        if not key:
            return None
        backend.delete_item(table.name, key)
        return []
    m = UPDATE.match(statement)
    if m:
        table = backend.tables.get(m.group(1))
        key = table and _key(table, [m.group(3), m.group(4)], parameters[1:])
        if not key:
            return None
        if backend.get_item(table.name, key) is None:
            raise ConditionalCheckFailed
        backend.update_item(table.name, key, update_expression="SET #a = :v",
                            expression_attribute_names={"#a": m.group(2)},
                            expression_attribute_values={":v": parameters[0]})
        return []
    m = INSERT.match(statement)
    if m:
        table = backend.tables.get(m.group(1))
        fields = [_FIELD.match(part) for part in m.group(2).split(",")]
        if table is None or not all(fields) or len(fields) != len(parameters):
            return None
        item = {f.group(1): value for f, value in zip(fields, parameters)}
        key = _key(table, list(table.table_key_attrs), [item.get(k) for k in table.table_key_attrs])
        if not key or any(v is None for v in key.values()):
            return None
        if backend.get_item(table.name, key) is not None:
            raise _error("DuplicateItemException", "Duplicate primary key exists in table")
        backend.put_item(table.name, item)
        return []
    return None
