"""One item operation at a time: DynamoDB's per-item atomicity on moto's threaded server.

moto checks a write's condition and then writes, with nothing in between to stop another request: two
conditional writes on the same old value could both win (a transaction's window is widest). DynamoDB never
allows that. Here every DynamoDB item request (writes, and reads, so that nobody sees a transaction halfway or
one it rolls back) runs under one re-entrant lock, from its condition check to its answer. Requests are still
parsed, authorised, delayed by ``latency_ms`` and serialised outside the lock; moto's work is pure Python under
the GIL, so the lock costs almost no throughput.

One lock for all tables (rather than one per table) keeps multi-table transactions and PartiQL, whose table is
known only after parsing, free of lock-ordering questions.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

#: Held by every DynamoDB item request and by stream reads (``streams``) while they touch moto's state.
ITEM_LOCK = threading.RLock()

#: DynamoHandler methods (moto's request handlers) that read or write items.
ITEM_HANDLERS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
    "get_item",
    "batch_get_item",
    "transact_get_items",
    "query",
    "scan",
)
#: DynamoHandler methods that copy, create or drop a table's items: moto's CreateBackup deep-copies the live
#: table and answered HTTP 500 ("dictionary changed size during iteration") under concurrent writes.
TABLE_HANDLERS = (
    "create_table",
    "delete_table",
    "update_table",
    "create_backup",
    "restore_table_to_point_in_time",
    "restore_table_from_backup",
)


def locked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run under :data:`ITEM_LOCK`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with ITEM_LOCK:
            return fn(*args, **kwargs)

    return wrapper


def install() -> None:
    """Put every item (and item-copying table) handler of moto's DynamoDB under the lock (call once, after other handler wrappers)."""
    from moto.dynamodb.responses import DynamoHandler

    for name in (*ITEM_HANDLERS, *TABLE_HANDLERS):
        setattr(DynamoHandler, name, locked(getattr(DynamoHandler, name)))
