"""ConsumedCapacity by DynamoDB's rules, only when the request asks for it (ReturnConsumedCapacity).

moto answered fixed numbers (every GetItem 0.5, a 380 KB PutItem 1.0), sent them unasked, added a legacy
``ConsumedCapacityUnits`` to every DeleteItem and none for transactions. The runbook's capacity reports and cost
estimates are only as true as these numbers. DynamoDB's rules (Developer Guide, "Read/write capacity mode"):

- a read unit per 4 KB of item read (strongly consistent), half that for an eventually consistent read; a Query or
  Scan sums the items it evaluated (before any filter) and rounds up once;
- a write unit per 1 KB of the larger of the item before and after the write (at least one);
- transactions cost twice; BatchGetItem / BatchWriteItem sum their items per table;
- an item that is not there still costs one unit (half for an eventually consistent read).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from .item_rules import item_size

READ_UNIT = 4096
WRITE_UNIT = 1024


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(*sizes: int) -> float:
    return float(max(1, math.ceil(max(sizes, default=0) / WRITE_UNIT)))


def _size(item: Any) -> int:
    return item_size(item.attrs) if item is not None else 0


def _entry(
    table: str, units: float, mode: str, index: str | None = None, local: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {"TableName": table, "CapacityUnits": units}
    if mode == "INDEXES":
        if index:  # read from the index alone: the table itself spends nothing
            entry["Table"] = {"CapacityUnits": 0.0}
            entry["LocalSecondaryIndexes" if local else "GlobalSecondaryIndexes"] = {
                index: {"CapacityUnits": units}
            }
        else:
            entry["Table"] = {"CapacityUnits": units}
    return entry


def _stored_size(backend: Any, table: str, key: dict[str, Any]) -> int:
    """The size of the item stored under ``key`` now (0: none), read in place (no copy)."""
    try:
        return _size(backend.get_item(table, key))
    except Exception:  # noqa: BLE001 - no such table or key: moto answers it
        return 0


def _key_of(backend: Any, table: str, item: dict[str, Any]) -> dict[str, Any]:
    t = backend.tables.get(table)
    return {k: item[k] for k in (t.table_key_attrs if t is not None else []) if k in item}


# -- per operation: (before the call) -> (after the call) -> ConsumedCapacity --------------------------------------
def _single(kind: str) -> Any:
    def measure(handler: Any) -> Any:
        backend, body = handler.dynamodb_backend, handler.body
        table = body.get("TableName", "")
        key = body.get("Key") or _key_of(backend, table, body.get("Item") or {})
        before = _stored_size(backend, table, key)

        def after(mode: str) -> Any:
            if kind == "read":
                return _entry(table, read_units(before, bool(body.get("ConsistentRead"))), mode)
            return _entry(table, write_units(before, _stored_size(backend, table, key)), mode)

        return after

    return measure


def _batch_get(handler: Any) -> Any:
    backend, body = handler.dynamodb_backend, handler.body

    def after(mode: str) -> Any:
        out = []
        for table, request in (body.get("RequestItems") or {}).items():
            consistent = bool(request.get("ConsistentRead"))
            units = sum(
                read_units(_stored_size(backend, table, key), consistent) for key in request.get("Keys", [])
            )
            out.append(_entry(table, units, mode))
        return out

    return after


def _batch_write(handler: Any) -> Any:
    backend, body = handler.dynamodb_backend, handler.body
    before: dict[str, list[int]] = {}
    for table, writes in (body.get("RequestItems") or {}).items():
        for write in writes:
            key = (write.get("DeleteRequest") or {}).get("Key") or _key_of(
                backend, table, (write.get("PutRequest") or {}).get("Item") or {}
            )
            before.setdefault(table, []).append(_stored_size(backend, table, key))

    def after(mode: str) -> Any:
        out = []
        for table, writes in (body.get("RequestItems") or {}).items():
            units = 0.0
            for old, write in zip(before.get(table, []), writes, strict=False):
                new = item_size((write.get("PutRequest") or {}).get("Item") or {})
                units += write_units(old, new)
            out.append(_entry(table, units, mode))
        return out

    return after


def _transact(kind: str) -> Any:
    def measure(handler: Any) -> Any:
        backend, body = handler.dynamodb_backend, handler.body
        actions = []
        for element in body.get("TransactItems") or []:
            op, params = next(iter(element.items()))
            table = params.get("TableName", "")
            key = params.get("Key") or _key_of(backend, table, params.get("Item") or {})
            actions.append((op, table, key, _stored_size(backend, table, key), params))

        def after(mode: str) -> Any:
            totals: dict[str, float] = {}
            for op, table, key, old, params in actions:
                if kind == "read":
                    units = 2 * read_units(old, True)
                elif op == "ConditionCheck":
                    units = 2 * write_units(old)
                else:
                    units = 2 * write_units(old, _stored_size(backend, table, key))
                totals[table] = totals.get(table, 0.0) + units
            return [_entry(table, units, mode) for table, units in totals.items()]

        return after

    return measure


MEASURES = {
    "get_item": _single("read"),
    "put_item": _single("write"),
    "update_item": _single("write"),
    "delete_item": _single("write"),
    "batch_get_item": _batch_get,
    "batch_write_item": _batch_write,
    "transact_get_items": _transact("read"),
    "transact_write_items": _transact("write"),
}


def install() -> None:
    """Wrap moto's handlers: drop its fixed capacity numbers, answer DynamoDB's when asked."""
    from moto.dynamodb.responses import DynamoHandler

    for name, measure in MEASURES.items():
        original = getattr(DynamoHandler, name)

        def handler(self: Any, _original: Any = original, _measure: Any = measure) -> Any:
            mode = self.body.get("ReturnConsumedCapacity") or "NONE"
            after = _measure(self) if mode in ("TOTAL", "INDEXES") else None
            result = _original(self)
            answer = getattr(result, "result", None)
            if isinstance(answer, dict):
                answer.pop("ConsumedCapacity", None)
                answer.pop("ConsumedCapacityUnits", None)
                if after is not None:
                    answer["ConsumedCapacity"] = after(mode)
                if (
                    not answer.get("ItemCollectionMetrics")
                    and self.body.get("ReturnItemCollectionMetrics") != "SIZE"
                ):
                    answer.pop("ItemCollectionMetrics", None)  # moto sent an empty one unasked
            return result

        setattr(DynamoHandler, name, functools.wraps(original)(handler))
    _query_and_scan(DynamoHandler)


def _query_and_scan(handler_class: Any) -> None:
    """Query and Scan: the items evaluated come from ``pages`` (which cuts pages by DynamoDB's rules)."""
    from . import pages

    for name in ("query", "scan"):
        original = getattr(handler_class, name)

        def handler(self: Any, _original: Any = original) -> Any:
            mode = self.body.get("ReturnConsumedCapacity") or "NONE"
            with pages.metering() as meter:
                result = _original(self)
            answer = getattr(result, "result", None)
            if isinstance(answer, dict):
                answer.pop("ConsumedCapacity", None)
                answer.pop("ConsumedCapacityUnits", None)
                if mode in ("TOTAL", "INDEXES"):
                    units = read_units(meter.evaluated_bytes, bool(self.body.get("ConsistentRead")))
                    table = self.dynamodb_backend.tables.get(self.body.get("TableName"))
                    index = self.body.get("IndexName")
                    local = bool(table) and index in {i.name for i in table.indexes}
                    answer["ConsumedCapacity"] = _entry(
                        self.body.get("TableName", ""), units, mode, index, local
                    )
            return result

        setattr(handler_class, name, functools.wraps(original)(handler))
