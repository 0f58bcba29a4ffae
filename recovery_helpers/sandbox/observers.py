"""Watching writes as the sandbox applies them: who wrote which key, the item before and after.

A test that must check something *at the moment* a write lands (for example that a durable backup of the
item it replaces was already on disk, issue 15's chaos soak) registers a watcher with
``Sandbox.watch_writes(callback)``. For every committed change to a table that has a stream (any view type;
the soak uses NEW_AND_OLD_IMAGES), the callback gets a :class:`WriteSeen`, synchronously, in the thread that
serves the request, under the item lock and before the answer is sent: the writer is still waiting. The
writer is named by the access key id of the request's signature. A cancelled transaction commits nothing and
is never seen. The images are there only with ``StreamViewType=NEW_AND_OLD_IMAGES``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_tls = threading.local()
_watchers: list[Callable[[WriteSeen], None]] = []
_lock = threading.Lock()
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class WriteSeen:
    """One applied change: table, key, images before/after (DynamoDB JSON, None when absent), the writer."""

    table: str
    keys: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    access_key_id: str | None
    sequence_number: str


def watch(callback: Callable[[WriteSeen], None]) -> Callable[[], None]:
    """Call ``callback`` for every applied change from now on; returns the function that stops it."""
    with _lock:
        _watchers.append(callback)

    def stop() -> None:
        with _lock:
            if callback in _watchers:
                _watchers.remove(callback)

    return stop


_serving = 0


def set_request(authorization: str | None) -> None:
    """The request served by this thread (called by the middleware for every request)."""
    global _serving
    match = _CREDENTIAL.search(authorization or "")
    _tls.access_key_id = match.group(1) if match else None
    with _lock:
        _serving += 1


def request_done() -> None:
    """The request of this thread is answered (or abandoned)."""
    global _serving
    _tls.access_key_id = None
    with _lock:
        _serving -= 1


def requests_in_flight() -> int:
    """Requests being served now: 0 once a killed client's last request has been applied or dropped."""
    with _lock:
        return _serving


def notify(shard: Any, record: Any) -> None:
    """A stream record was committed (called by ``streams`` under the item lock)."""
    if not _watchers:
        return
    body = record.record.get("dynamodb", {})
    event = record.record.get("eventName")
    seen = WriteSeen(
        table=shard.table.name,
        keys=body.get("Keys") or {},
        old=body.get("OldImage") if event in ("MODIFY", "REMOVE") else None,
        new=body.get("NewImage") if event in ("MODIFY", "INSERT") else None,
        access_key_id=getattr(_tls, "access_key_id", None),
        sequence_number=str(body.get("SequenceNumber")),
    )
    with _lock:
        watchers = list(_watchers)
    for callback in watchers:
        callback(seen)
