"""Impacted keys from the application's structured change log, saved as a local JSON-lines file.

Only changes inside the incident window ``[window_start, window_end)`` count; each yields the key with the
time and action of that change (find_impacted keeps, per key, the first change and its action).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..changelog import iter_change_log
from . import ImpactedKey, SourceRequest

NAME = "log_file"


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Changes in the window, tenant-filtered when the key tells the tenant."""
    assert request.log_file is not None  # checked by find_impacted
    for record in iter_change_log(request.log_file, request.key_schema, stats=request.stats):
        if not request.in_window(record.timestamp):
            request.stats.add("outside_window")
            continue
        if not request.selects_key(record.key):
            request.stats.add("filtered_tenant")
            continue
        yield ImpactedKey(key=record.key, action=record.action, first_change=record.timestamp, source=NAME)
