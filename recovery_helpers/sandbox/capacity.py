"""ConsumedCapacity of TransactWriteItems, as DynamoDB counts it (moto answers an empty list).

A transactional write costs 2 write units per started 1 KB of the larger of the item before and after (a
Delete: the item deleted), a ConditionCheck 2 read units per started 4 KB of the item read; every item costs at
least one such unit. Item size is moto's (attribute names plus values), close to AWS's own.
"""

from __future__ import annotations

import math
from typing import Any

Sizes = list[tuple[str, str, int]]  # (table, operation, item size in bytes) per element


def element_sizes(backend: Any, transact_items: list[dict[str, Any]]) -> Sizes:
    """(table, operation, size of the item now) for every element; 0 for a missing item or table."""
    out: Sizes = []
    for element in transact_items:
        if len(element) != 1:
            return []
        op_type, op = next(iter(element.items()))
        table_name = op.get("TableName", "")
        out.append((table_name, op_type, _size_now(backend, table_name, op)))
    return out


def _size_now(backend: Any, table_name: str, op: dict[str, Any]) -> int:
    try:
        table = backend.get_table(table_name)
        key = op.get("Key") or {k: op["Item"][k] for k in table.table_key_attrs}
        item = backend.get_item(table_name, key)
    except Exception:  # noqa: BLE001 - an invalid element: moto's own validation answers it
        return 0
    return item.size() if item is not None else 0


def consumed(before: Sizes, after: Sizes, mode: str, *, replay: bool = False) -> list[dict[str, Any]]:
    """The ConsumedCapacity list for ``mode`` (TOTAL or INDEXES; NONE gives []).

    ``replay``: an idempotent repeat, which reads the items instead of writing them (AWS's documented answer).
    """
    if mode not in ("TOTAL", "INDEXES") or not before:
        return []
    per_table: dict[str, dict[str, float]] = {}
    for i, (table, op_type, old) in enumerate(before):
        new = after[i][2] if i < len(after) else old
        units = per_table.setdefault(table, {"read": 0.0, "write": 0.0})
        if replay or op_type == "ConditionCheck":
            units["read"] += 2 * max(1, math.ceil(max(old, new) / 4096))
        else:
            units["write"] += 2 * max(1, math.ceil(max(old, new) / 1024))
    out = []
    for table, units in per_table.items():
        entry: dict[str, Any] = {
            "TableName": table,
            "CapacityUnits": units["read"] + units["write"],
            "ReadCapacityUnits": units["read"],
            "WriteCapacityUnits": units["write"],
        }
        if mode == "INDEXES":
            entry["Table"] = {k: v for k, v in entry.items() if k != "TableName"}
        out.append(entry)
    return out
