"""TransactWriteItems' ClientRequestToken, as DynamoDB honours it (moto ignores it).

Within ``idempotency_window_seconds`` (AWS: 600, ten minutes) of a successful transaction, a request with the
same token and the same parameters succeeds again without writing anything (the same answer; consumed capacity
is then the read of the items, as AWS documents), and the same token with any other parameter is refused with
``IdempotentParameterMismatchException``. After the window the token is forgotten and the request is new.
Only completed transactions are remembered: a cancelled one wrote nothing, and its retry is evaluated again.
The window runs on the sandbox clock, so ``sb.advance(600)`` ends it without waiting.

ConsumedCapacity (when asked): a handler beneath (the capacity rules of ``capacity.py``, where installed) answers
it for a transaction that runs; when none does, or for a repeat, it is counted here by the same rules: a
transaction costs twice, 1 KB per write unit of the larger item before/after, 4 KB per read unit (a repeat reads).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: (account, region, token) -> (parameters fingerprint, completed at (sandbox clock), the answer's body)
_TOKENS: OrderedDict[tuple[str, str, str], tuple[str, float, dict[str, Any]]] = OrderedDict()
_lock = threading.Lock()
MAX_TOKEN_LENGTH = 36


def install() -> None:
    """Wrap moto's TransactWriteItems handler (call once, before ``locking.install``)."""
    from moto.dynamodb.responses import DynamoHandler

    DynamoHandler.transact_write_items = _idempotent(DynamoHandler.transact_write_items)


def forget() -> None:
    """Forget every token (a sandbox reset)."""
    with _lock:
        _TOKENS.clear()


def _fingerprint(body: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in body.items() if k != "ClientRequestToken"}, sort_keys=True, default=repr
    )


def _idempotent(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def transact_write_items(self: Any) -> Any:
        from moto.core.responses import ActionResult

        from .patches import now, settings
        from .restores import _error, _validation

        body = self.body
        token = body.get("ClientRequestToken")
        mode = body.get("ReturnConsumedCapacity", "NONE")
        items = body.get("TransactItems") or []
        if token is not None and not (1 <= len(str(token)) <= MAX_TOKEN_LENGTH):
            raise _validation(
                f"1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_TOKEN_LENGTH}"
            )
        backend = self.dynamodb_backend
        key = (str(self.current_account), str(self.region), str(token))
        fingerprint = _fingerprint(body) if token is not None else ""
        window = float(settings().idempotency_window_seconds)
        if token is not None:
            with _lock:
                _expire(now() - window)
                seen = _TOKENS.get(key)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise _error(
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical request.",
                    )
                answer = copy.deepcopy(seen[2])
                sizes = _sizes(backend, items)
                answer["ConsumedCapacity"] = _capacity(sizes, sizes, mode, repeat=True)
                return ActionResult(answer)
        before = _sizes(backend, items) if mode in ("TOTAL", "INDEXES") else []
        result = handler(self)
        answer = dict(result.result)
        if mode in ("TOTAL", "INDEXES") and not answer.get("ConsumedCapacity"):
            answer["ConsumedCapacity"] = _capacity(before, _sizes(backend, items), mode)
        if token is not None:
            with _lock:
                _TOKENS[key] = (fingerprint, now(), copy.deepcopy(answer))
                _TOKENS.move_to_end(key)
        return ActionResult(answer)

    return transact_write_items


def _expire(cutoff: float) -> None:
    """Drop tokens completed before ``cutoff`` (oldest first: the dict is in completion order)."""
    while _TOKENS:
        oldest = next(iter(_TOKENS))
        if _TOKENS[oldest][1] >= cutoff:
            break
        del _TOKENS[oldest]


# -- ConsumedCapacity of a transaction (DynamoDB's rules; moto answers []) ----------------------------------------
def _sizes(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(table, size in bytes of its item now; 0 if absent) per element."""
    out = []
    for element in transact_items:
        _, op = next(iter(element.items())) if len(element) == 1 else ("", {})
        table = op.get("TableName", "")
        try:
            key = op.get("Key") or {k: op["Item"][k] for k in backend.get_table(table).table_key_attrs}
            item = backend.get_item(table, key)
        except Exception:  # noqa: BLE001 - an invalid element: moto's own validation answers it
            item = None
        out.append((table, item.size() if item is not None else 0))
    return out


def _capacity(
    before: list[tuple[str, int]], after: list[tuple[str, int]], mode: str, *, repeat: bool = False
) -> list[dict[str, Any]]:
    """Per table: twice 1 write unit per started KB of the larger item (a repeat: twice 1 read unit per 4 KB)."""
    totals: dict[str, float] = {}
    for (table, old), (_, new) in zip(before, after, strict=False):
        unit = 4096 if repeat else 1024
        totals[table] = totals.get(table, 0.0) + 2 * max(1, math.ceil(max(old, new) / unit))
    out = []
    for table, units in totals.items():
        entry: dict[str, Any] = {"TableName": table, "CapacityUnits": units}
        if mode == "INDEXES":
            entry["Table"] = {"CapacityUnits": units}
        out.append(entry)
    return out
