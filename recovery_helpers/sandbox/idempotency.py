"""TransactWriteItems' ClientRequestToken, as DynamoDB honours it (moto ignores it).

Within ``idempotency_window_seconds`` (AWS: 600, ten minutes) of a successful transaction, a request with the
same token and the same parameters succeeds again without writing anything (the same answer; consumed capacity
is then the read of the items, as AWS documents), and the same token with any other parameter is refused with
``IdempotentParameterMismatchException``. After the window the token is forgotten and the request is new.
Only completed transactions are remembered: a cancelled one wrote nothing, and its retry is evaluated again.
The window runs on the sandbox clock, so ``sb.advance(600)`` ends it without waiting.
"""

from __future__ import annotations

import copy
import functools
import json
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
    return json.dumps({k: v for k, v in body.items() if k != "ClientRequestToken"}, sort_keys=True, default=repr)


def _idempotent(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def transact_write_items(self: Any) -> Any:
        from moto.core.responses import ActionResult

        from . import capacity
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
                sizes = capacity.element_sizes(backend, items)
                answer["ConsumedCapacity"] = capacity.consumed(sizes, sizes, mode, replay=True)
                return ActionResult(answer)
        before = capacity.element_sizes(backend, items) if mode != "NONE" else []
        result = handler(self)
        answer = dict(result.result)
        answer["ConsumedCapacity"] = capacity.consumed(before, capacity.element_sizes(backend, items), mode)
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
