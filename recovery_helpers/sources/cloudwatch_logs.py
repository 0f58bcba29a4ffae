"""Impacted keys from the application's change log in CloudWatch Logs (``FilterLogEvents`` over the window).

AWS narrows the events with the JSON filter pattern ``{ $.operation = "itemChange" }``; every event is then
parsed by :mod:`recovery_helpers.changelog` (the same parser as ``log_file``) and filtered again here: by the
record's own ``timestamp`` (the change time, not the ingestion time) and by tenant. Events are requested over
the window widened by ``log_margin_seconds`` (default 300) on both sides, so a record whose change time is in
the window but whose log event was stamped a little earlier or later is not missed.

Messages written with a prefix (Lambda's ``[INFO] <time> <request id> {...}`` text format) or wrapped by
Lambda's JSON log format (``{"message": {...}}``) are unwrapped before parsing. The JSON filter pattern only
matches messages that are bare JSON: for prefixed logs set ``log_filter_pattern`` to ``'"itemChange"'``.
Malformed events are counted and the first few reported in the source's stats; they never stop the step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..changelog import OPERATION, ChangeLogReader
from ..numbers import loads_exact
from . import ImpactedKey, SourceRequest

NAME = "cloudwatch_logs"
FILTER_PATTERN = '{ $.operation = "itemChange" }'
DEFAULT_MARGIN_SECONDS = 300


def unwrap(message: str) -> Any:
    """The change record inside a log message: bare JSON, JSON after a text prefix, or Lambda's JSON wrapper.

    Returns the parsed object when one is found, else the message unchanged (the parser then reports it).
    """
    text = message.strip()
    candidates = [text]
    brace = text.find("{")
    if brace > 0:
        candidates.append(text[brace:])
    for candidate in candidates:
        try:
            obj = loads_exact(candidate)  # number keys keep every digit (never through a float)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("operation") != OPERATION and "message" in obj:
            inner = obj["message"]
            if isinstance(inner, str):
                return unwrap(inner)
            if isinstance(inner, dict):
                return inner
        return obj
    return message


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Every change record in the window (find_impacted keeps the first change and its action per key)."""
    group = request.log_group
    options = request.options
    margin = dt.timedelta(seconds=float(options.get("log_margin_seconds", DEFAULT_MARGIN_SECONDS)))
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "startTime": _ms(request.window_start - margin),
        "endTime": _ms(request.window_end + margin),
        "filterPattern": options.get("log_filter_pattern", FILTER_PATTERN),
    }
    reader = ChangeLogReader(request.key_schema, where=f"log group {group!r}", stats=request.stats)
    stats = request.stats
    try:
        for page in request.aws.logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                label = f"event {event.get('logStreamName', '?')}/{event.get('eventId', '?')}"
                record = reader.parse(unwrap(event.get("message", "")), label)
                if record is None:
                    continue
                if not request.in_window(record.timestamp):
                    stats.add("outside_window")
                    continue
                if not request.selects_key(record.key):
                    stats.add("filtered_tenant")
                    continue
                yield ImpactedKey(
                    key=record.key, action=record.action, first_change=record.timestamp, source=NAME
                )
    except ClientError as exc:
        raise explain(exc, "logs:FilterLogEvents", group or "") from exc
    if reader.read and reader.malformed == reader.read:
        stats.problem(
            f"every one of the {reader.read} events in log group {group!r} was malformed: is it the change "
            f"log of this table (key {request.key_schema.describe()})?"
        )
