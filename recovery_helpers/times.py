"""Times given by the user: ISO 8601 with an explicit offset, nothing else (a bare time could be any zone)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import InputError


def parse_time(value: Any, name: str) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 text with an offset (``Z`` allowed) or an aware datetime.

    Refuses, with what to write instead: a missing value, text that is not ISO 8601, a time without an offset.
    """
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(
                f"{name} {value!r} is not an ISO 8601 time; write it like 2024-05-01T09:30:00+00:00."
            ) from exc
    else:
        raise InputError(
            f"{name} is required: an ISO 8601 time with an offset, e.g. 2024-05-01T09:30:00+00:00."
        )
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(
            f"{name} {str(value)!r} has no timezone offset: add one (e.g. {when.isoformat()}+00:00 for UTC); "
            "a time without an offset could mean any timezone."
        )
    return when.astimezone(dt.UTC)
