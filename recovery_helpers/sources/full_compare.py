"""Impacted keys by comparing the whole restored table with the live one (when nothing recorded the changes).

Two passes over independent scan segments, run in parallel; neither relies on the two tables putting a key in
the same segment:

1. each segment of the *restored* table is scanned page by page; the live items of that page's keys are read
   with BatchGetItem; every item that differs (or is gone from live) is a finding;
2. each segment of the *live* table is scanned for keys only; BatchGetItem on the restored table tells which
   of them did not exist at the restore time; those (created since) are read in full from live.

Each worker holds one page and one batch at a time, so memory stays flat however large the tables are.
Items are compared canonically (numbers by value, sets unordered). The time window does not apply: every
difference is reported, with both images (``has_images=True``). Options: ``total_segments`` (default 8),
``max_workers`` (default 4), ``page_size`` (items per scan page, default 1000: bounds each worker's memory
whatever the item size), ``consistent_read`` (default False; the live table is contained, so eventually
consistent reads suffice).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..errors import InputError
from ..items import Item, KeySchema, items_equal
from ..scan import (
    BATCH_GET_MAX,
    DEFAULT_SEGMENTS,
    DEFAULT_WORKERS,
    batch_get,
    key_projection,
    map_segments,
    scan_segment,
)
from ..tenancy import selects_any
from . import ImpactedKey, SourceRequest

NAME = "full_compare"
DEFAULT_PAGE_SIZE = 1000


def _chunks(items: list[Item], size: int = BATCH_GET_MAX) -> Iterator[list[Item]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Every key whose item differs between the restored and the live table (changed, deleted or created)."""
    restored = request.restored_table_name
    if not restored:
        raise InputError(
            "impacted_source 'full_compare' compares the restored table with the live one: run 03_restore "
            "first (or set restored_table_name)."
        )
    ddb = request.aws.dynamodb
    try:
        restored_schema = KeySchema.of_table(ddb, restored)
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", restored) from exc
    if restored_schema != request.key_schema:
        raise InputError(
            f"{restored} has key {restored_schema.describe()}, {request.table_name} has "
            f"{request.key_schema.describe()}: they are not the same table."
        )
    options = request.options
    segments = int(options.get("total_segments", DEFAULT_SEGMENTS))
    workers = int(options.get("max_workers", DEFAULT_WORKERS))
    consistent = bool(options.get("consistent_read", False))
    paging = {"Limit": int(options.get("page_size", DEFAULT_PAGE_SIZE)), "ConsistentRead": consistent}
    schema, live = request.key_schema, request.table_name
    keys_only = key_projection(schema)

    def compare_restored(segment: int) -> Iterator[tuple[str, Any]]:
        """Pass 1: restored items against live (finds changed and deleted)."""
        for page in scan_segment(ddb, restored, segment, segments, **paging):
            for chunk in _chunks(page):
                keys = [schema.key_of(i) for i in chunk]
                found = batch_get(ddb, live, keys, schema, consistent_read=consistent)
                for before in chunk:
                    after = found.get(schema.key_id(schema.key_of(before)))
                    if not items_equal(before, after):
                        yield "diff", (before, after)
                yield "compared", len(chunk)

    def find_created(segment: int) -> Iterator[tuple[str, Any]]:
        """Pass 2: live keys absent from the restored table (created since the restore time)."""
        for page in scan_segment(ddb, live, segment, segments, **paging, **keys_only):
            for chunk in _chunks(page):
                old = batch_get(ddb, restored, chunk, schema, projection=keys_only)
                new_keys = [k for k in chunk if schema.key_id(k) not in old]
                if new_keys:
                    for after in batch_get(ddb, live, new_keys, schema, consistent_read=consistent).values():
                        yield "diff", (None, after)
                yield "live_keys", len(chunk)

    def work(i: int) -> Iterator[tuple[str, Any]]:
        return compare_restored(i) if i < segments else find_created(i - segments)

    stats = request.stats
    for kind, value in map_segments(work, 2 * segments, workers):
        if kind != "diff":
            stats.add("read" if kind == "compared" else kind, value)
            continue
        before, after = value
        stats.add("differences")
        if not selects_any(request.tenancy, request.tenants, before, after):  # restored or live tenant
            stats.add("filtered_tenant")
            continue
        action = "create" if before is None else "delete" if after is None else "update"
        key = schema.key_of(before if before is not None else after)
        yield ImpactedKey(
            key=key,
            action=action,
            first_change=None,
            source=NAME,
            before=before,
            after=after,
            has_images=True,
        )
