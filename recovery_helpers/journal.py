"""Append-only JSON-lines files that survive a process killed at any moment (backup, journal, undo journal).

Each line is written with one ``os.write`` on a descriptor opened with ``O_APPEND``, so lines from several
threads (or several processes working on different segments) never interleave. A line cut short by a crash is
cut off when the file is next opened and skipped when it is read: it never completed, so nothing relied on it.
``durable=True`` makes :meth:`JsonlFile.append` return only after ``fsync``; concurrent callers share one
fsync. Records may hold DynamoDB JSON straight from boto3: binary values are written as base64 text (as
:func:`recovery_helpers.items.to_json_safe` would), so callers need not copy items to make them writable.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

import orjson

from .items import to_json_safe


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Stream the complete JSON lines of a file (a missing file is empty; a torn last line is skipped)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return  # torn by a crash: the write it describes never happened
            raw = raw.strip()
            if not raw:
                continue
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                continue


def _json_default(value: Any) -> Any:
    """What json cannot write by itself: bytes and boto3 Binary as base64 text, sets as lists, else str()."""
    converted = to_json_safe(value)
    return str(value) if converted is value else converted


#: The json module's writer, for what orjson refuses (an int beyond 64 bits, a lone surrogate, a non-str key).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)


#: Subclasses, datetimes and dataclasses go through _json_default, as the json module would send them there.
_AS_JSON_MODULE = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_line(record: Any) -> bytes:
    """One record as compact JSON text in UTF-8 (orjson: the patch engine writes two such lines per item)."""
    try:
        return orjson.dumps(record, default=_json_default, option=_AS_JSON_MODULE)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(record).encode()


def _repair(path: Path) -> None:
    """Cut a torn last line (no trailing newline) so that the next append starts on a line of its own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # walk back to the last newline
        pos, block = size, 4096
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return
            pos = start
        fh.truncate(0)


class JsonlFile:
    """A thread-safe appender of JSON lines. Open once per run; :meth:`close` when done."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = False) -> None:
        self.path = Path(path)
        self.durable = durable
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0

    def append(self, record: dict[str, Any]) -> None:
        """Append one line (and fsync it first if durable)."""
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Append lines; if durable, they are on disk when this returns (one fsync for all of them)."""
        data = b"".join(json_line(r) + b"\n" for r in records)
        if not data:
            return
        with self._lock:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._written += 1
            mine = self._written
        if self.durable:
            with self._sync_lock:
                if self._synced < mine:  # another thread's fsync may already cover this write
                    target = self._written
                    os.fsync(self._fd)
                    self._synced = target

    def close(self) -> None:
        if self._fd >= 0:
            if self.durable:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def status_counts(path: Path) -> dict[str, int]:
    """Per-``status`` counts of a journal's lines (``unreadable`` for a line that is not a JSON object);
    empty when the file does not exist. The lift's summary, the demo's report and index.html count the patch
    this way. An engineer's decision on an ambiguous key (a line with ``decision``, after the key's
    ``ambiguous`` line) counts under its own status and takes its key off ``ambiguous``."""
    counts: dict[str, int] = {}
    if not path.exists():
        return counts
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
                status = str(record.get("status", "unknown"))
            except (json.JSONDecodeError, AttributeError):
                record, status = {}, "unreadable"
            counts[status] = counts.get(status, 0) + 1
            if record.get("decision") and counts.get("ambiguous"):
                counts["ambiguous"] -= 1
    return {status: n for status, n in counts.items() if n or status != "ambiguous"}
