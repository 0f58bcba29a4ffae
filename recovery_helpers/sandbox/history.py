"""PITR history: every version of every item of every table with PITR on, stamped with the sandbox clock.

Moto keeps only the current items. From the moment PITR is enabled we keep, per key, the list of
``(time, item-or-None)`` versions, starting with a baseline of the items present at enable time. A restore at T
takes, for each key, the last version at or before T; an incremental export over [A, B) takes the keys with a
version in the window, the state before A as the old image and the state before B as the new one.

Changes are captured where moto applies them (``Table.put_item`` / ``Table.delete_item`` under the backend's
write operations); an outer operation (one request: a transaction, an update, a PartiQL statement) records the
final state of every key it touched with ONE timestamp, and records nothing if it failed (transactions roll back).
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Snapshot = dict[str, Any] | None
KeyTuple = tuple[str, str]


@dataclass
class TableHistory:
    enabled_at: float
    hash_attr: str
    range_attr: str | None
    versions: dict[KeyTuple, list[tuple[float, Snapshot]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_of(self, attrs: dict[str, Any]) -> KeyTuple:
        return (
            json.dumps(attrs[self.hash_attr], sort_keys=True, default=_bytes_text),
            json.dumps(attrs[self.range_attr], sort_keys=True, default=_bytes_text)
            if self.range_attr
            else "",
        )

    def record(self, when: float, key: KeyTuple, snapshot: Snapshot) -> None:
        with self.lock:
            versions = self.versions.setdefault(key, [])
            if versions and versions[-1][1] == snapshot:
                return  # a write that changed nothing leaves no version
            if not versions and snapshot is None:
                return  # deleting an item that never existed
            versions.append((when, snapshot))

    @staticmethod
    def _state(versions: list[tuple[float, Snapshot]], when: float, inclusive: bool) -> Snapshot:
        times = [t for t, _ in versions]
        i = bisect.bisect_right(times, when) if inclusive else bisect.bisect_left(times, when)
        return versions[i - 1][1] if i else None

    def items_at(self, when: float) -> Iterator[dict[str, Any]]:
        """Every item as it stood at ``when`` (versions at exactly ``when`` included)."""
        with self.lock:
            snapshot = list(self.versions.values())
        for versions in snapshot:
            item = self._state(versions, when, inclusive=True)
            if item is not None:
                yield item

    def changes(self, start: float, end: float) -> Iterator[tuple[float, Snapshot, Snapshot]]:
        """Keys with a write in [start, end): (last write time, state before start, state before end).

        The baseline taken when PITR was enabled is stamped just before ``enabled_at``, so it is never a write.
        """
        with self.lock:
            snapshot = list(self.versions.values())
        for versions in snapshot:
            times = [t for t, _ in versions]
            lo, hi = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
            if lo == hi:
                continue
            yield (
                versions[hi - 1][0],
                self._state(versions, start, inclusive=False),
                self._state(versions, end, inclusive=False),
            )


HISTORIES: dict[str, TableHistory] = {}


def snapshot_of(item: Any) -> Snapshot:
    """A moto Item as plain DynamoDB JSON, detached from the live object (moto mutates items in place)."""
    if item is None:
        return None
    return copy.deepcopy(item.to_json()["Attributes"])


def _bytes_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")
