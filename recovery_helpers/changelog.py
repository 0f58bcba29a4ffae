"""The structured change log an application writes for every item change, parsed in one place.

A record is ``{"operation": "itemChange", "timestamp": <epoch ms or ISO 8601>, "ids": {<key>}, "action":
"create"|"update"|"delete"}``. The same parser reads local JSON-lines files (``log_file``) and CloudWatch Logs
events (``cloudwatch_logs``). Lines that are not item changes are skipped; broken ones are counted and
reported with their line number, never fatal, unless nothing at all could be read (then the file is not a
change log).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import InputError
from .items import Key, KeySchema
from .numbers import loads_exact

OPERATION = "itemChange"
ACTIONS = ("create", "update", "delete")
MAX_PROBLEMS = 20


class MalformedRecord(InputError):
    """A line that claims to be (or may be) a change record but cannot be read; the message says why."""


@dataclass(frozen=True)
class ChangeRecord:
    """One item change: which key, when (aware UTC), and what happened to it."""

    key: Key
    timestamp: dt.datetime
    action: str


def parse_timestamp(value: Any) -> dt.datetime:
    """Epoch milliseconds (number or digits) or ISO 8601 with an offset, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise MalformedRecord(f"timestamp {value!r} is not epoch milliseconds or ISO 8601")
    digits = isinstance(value, str) and value.strip().lstrip("-").isdigit()
    if isinstance(value, (int, float, Decimal)) or digits:
        try:
            millis = Decimal(str(value).strip())
            return dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(milliseconds=int(millis))
        except (InvalidOperation, OverflowError, ValueError) as exc:
            raise MalformedRecord(f"timestamp {value!r} is out of range") from exc
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise MalformedRecord(f"timestamp {value!r} is not epoch milliseconds or ISO 8601") from exc
        if when.tzinfo is None:
            raise MalformedRecord(f"timestamp {value!r} has no timezone offset (e.g. Z or +00:00)")
        return when.astimezone(dt.UTC)
    raise MalformedRecord(f"timestamp {value!r} is not epoch milliseconds or ISO 8601")


def parse_record(obj_or_text: str | bytes | Mapping[str, Any], key_schema: KeySchema) -> ChangeRecord | None:
    """One change log record, or None when the line is some other (valid) JSON log line.

    Raises :class:`MalformedRecord` for text that is not JSON, and for itemChange records with a bad
    timestamp, unknown action, or ids that are not the table's key.
    """
    obj: Any = obj_or_text
    if isinstance(obj_or_text, (str, bytes)):
        try:
            obj = loads_exact(obj_or_text)  # number keys keep every digit (never through a float)
        except ValueError as exc:
            raise MalformedRecord("not JSON") from exc
    if not isinstance(obj, Mapping) or obj.get("operation") != OPERATION:
        return None
    if "timestamp" not in obj:
        raise MalformedRecord("itemChange record without a timestamp")
    when = parse_timestamp(obj["timestamp"])
    action = obj.get("action")
    if action not in ACTIONS:
        raise MalformedRecord(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    try:
        key = key_schema.key_from_plain(obj.get("ids"))
    except InputError as exc:
        raise MalformedRecord(f"ids: {exc}") from exc
    return ChangeRecord(key=key, timestamp=when, action=action)


@dataclass
class ChangeLogReader:
    """Parses records one by one, counting what it read, skipped and could not parse.

    ``stats`` (optional) is anything with ``add(counter, n)`` and ``problem(text)``, e.g. a ``SourceStats``.
    Call :meth:`finish` at the end: it raises InputError when every line was malformed.
    """

    key_schema: KeySchema
    where: str = "the input"
    stats: Any = None
    read: int = 0
    malformed: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def parse(self, obj_or_text: str | bytes | Mapping[str, Any], label: str = "") -> ChangeRecord | None:
        """A record, or None for skipped and malformed lines (which are counted, never raised)."""
        self._count("read")
        try:
            record = parse_record(obj_or_text, self.key_schema)
        except MalformedRecord as exc:
            self._count("malformed")
            message = f"{label}: {exc}" if label else str(exc)
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(message)
            if self.stats is not None:
                self.stats.problem(message)
            return None
        if record is None:
            self._count("skipped")
        return record

    def _count(self, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        if self.stats is not None:
            self.stats.add(counter)

    def finish(self) -> None:
        """Refuse input where nothing was readable: it is not a change log (or not for this table's key)."""
        if self.read and self.malformed == self.read:
            examples = "; ".join(self.problems[:3])
            ids = ", ".join(f'"{n}": ...' for n in self.key_schema.names)
            raise InputError(
                f"{self.where} is not a change log for this table: all {self.read} lines are malformed "
                f'({examples}). Expected JSON lines like {{"operation": "itemChange", "timestamp": '
                f'<epoch ms or ISO 8601>, "ids": {{{ids}}}, "action": "update"}}.'
            )


def iter_change_log(path: str | Path, key_schema: KeySchema, *, stats: Any = None) -> Iterator[ChangeRecord]:
    """Stream the change records of a JSON-lines file; blank lines are ignored, others counted."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"log_file {str(path)!r} does not exist (or is not a file): check the path "
            f"(looked for {path.resolve()})."
        )
    reader = ChangeLogReader(key_schema, where=f"log_file {str(path)!r}", stats=stats)
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = reader.parse(line, f"line {number}")
            if record is not None:
                yield record
    reader.finish()


def iter_records(
    texts: Iterable[str | Mapping[str, Any]],
    key_schema: KeySchema,
    *,
    where: str = "the input",
    stats: Any = None,
) -> Iterator[ChangeRecord]:
    """The same for any sequence of lines or events (e.g. CloudWatch Logs messages), labelled by position."""
    reader = ChangeLogReader(key_schema, where=where, stats=stats)
    for number, text in enumerate(texts, start=1):
        record = reader.parse(text, f"record {number}")
        if record is not None:
            yield record
    reader.finish()
