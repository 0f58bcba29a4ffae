"""Parallel segmented scans and batched reads that stream: memory stays flat whatever the table's size.

A scan is split into ``TotalSegments`` independent key-space segments; worker threads each scan their
segments page by page and hand results over a bounded queue, so at most a page or two per worker is in
memory at any time. The same per-segment functions can run in separate processes or machines.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from .aws import explain
from .errors import RecoveryError
from .items import Item, Key, KeySchema

T = TypeVar("T")

DEFAULT_SEGMENTS = 8
DEFAULT_WORKERS = 4
#: BatchGetItem takes at most 100 keys per request.
BATCH_GET_MAX = 100


class _Done:
    """Queue marker: one worker finished (carrying its exception, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def map_segments(
    work: Callable[[int], Iterable[T]], total_segments: int, max_workers: int = DEFAULT_WORKERS
) -> Iterator[T]:
    """Run ``work(segment)`` for segments ``0..total_segments-1`` in threads; yield what they produce.

    Results arrive in no particular order. The queue between workers and the caller holds at most
    ``max_workers`` results, so a slow consumer slows the workers instead of filling memory. The first worker
    error is raised in the caller; stopping the iteration early stops the workers.
    """
    if total_segments < 1:
        raise ValueError("total_segments must be at least 1")
    workers = max(1, min(max_workers, total_segments))
    out: queue.Queue[Any] = queue.Queue(maxsize=workers)
    stop = threading.Event()
    segments: queue.Queue[int] = queue.Queue()
    for s in range(total_segments):
        segments.put(s)

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        error: BaseException | None = None
        try:
            while not stop.is_set():
                try:
                    segment = segments.get_nowait()
                except queue.Empty:
                    break
                for result in work(segment):
                    if not put(result):
                        return
        except BaseException as exc:  # handed to the caller, re-raised there  # noqa: BLE001
            error = exc
        put(_Done(error))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segment")
    try:
        for _ in range(workers):
            pool.submit(run)
        running = workers
        while running:
            value = out.get()
            if isinstance(value, _Done):
                running -= 1
                if value.error is not None:
                    raise value.error
                continue
            yield value
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def scan_segment(
    dynamodb: Any, table_name: str, segment: int, total_segments: int, **scan_kwargs: Any
) -> Iterator[list[Item]]:
    """The pages (lists of items) of one scan segment, read with boto3's paginator."""
    paginator = dynamodb.get_paginator("scan")
    try:
        for page in paginator.paginate(
            TableName=table_name, Segment=segment, TotalSegments=total_segments, **scan_kwargs
        ):
            yield page.get("Items", [])
    except ClientError as exc:
        raise explain(exc, "dynamodb:Scan", table_name) from exc


def parallel_scan(
    dynamodb: Any,
    table_name: str,
    *,
    total_segments: int = DEFAULT_SEGMENTS,
    max_workers: int = DEFAULT_WORKERS,
    **scan_kwargs: Any,
) -> Iterator[list[Item]]:
    """Every page of a whole-table scan, its segments scanned in parallel (``scan_kwargs``: filters...)."""

    def work(segment: int) -> Iterator[list[Item]]:
        return scan_segment(dynamodb, table_name, segment, total_segments, **scan_kwargs)

    return map_segments(work, total_segments, max_workers)


def key_projection(key_schema: KeySchema, extra: Sequence[str] = ()) -> dict[str, Any]:
    """``ProjectionExpression`` + ``ExpressionAttributeNames`` for the key attributes (and ``extra`` ones)."""
    names = list(dict.fromkeys([*key_schema.names, *extra]))
    aliases = {f"#p{i}": name for i, name in enumerate(names)}
    return {"ProjectionExpression": ", ".join(aliases), "ExpressionAttributeNames": aliases}


def batch_get(
    dynamodb: Any,
    table_name: str,
    keys: Sequence[Key],
    key_schema: KeySchema,
    *,
    projection: Mapping[str, Any] | None = None,
    consistent_read: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    max_stalls: int = 10,
) -> dict[str, Item]:
    """The items that exist for ``keys`` (at most 100), by key_id; absent keys are simply missing.

    The one BatchGetItem loop of the package. UnprocessedKeys (a partial answer: 16 MB, or throttling inside
    the batch, which botocore's retries do not see) are asked again with exponential backoff and jitter. It
    gives up only after ``max_stalls`` consecutive rounds that returned nothing; a round that makes progress
    resets the backoff. Keys left unprocessed raise a RecoveryError: they are never reported absent.
    """
    if len(keys) > BATCH_GET_MAX:
        raise ValueError(f"batch_get takes at most {BATCH_GET_MAX} keys")
    found: dict[str, Item] = {}
    request: dict[str, Any] = {"Keys": list(keys), "ConsistentRead": consistent_read, **(projection or {})}
    stalls = 0
    while request["Keys"]:
        try:
            response = dynamodb.batch_get_item(RequestItems={table_name: request})
        except ClientError as exc:
            raise explain(exc, "dynamodb:BatchGetItem", table_name) from exc
        items = response.get("Responses", {}).get(table_name, [])
        for item in items:
            found[key_schema.key_id(key_schema.key_of(item))] = item
        request = response.get("UnprocessedKeys", {}).get(table_name) or {"Keys": []}
        if not request["Keys"]:
            break
        stalls = 0 if items else stalls + 1
        if stalls >= max_stalls:
            raise RecoveryError(
                f"DynamoDB left {len(request['Keys'])} keys of {table_name!r} unprocessed "
                f"{max_stalls} times in a row (throttling?): run the step again later, or with fewer "
                "max_workers."
            )
        sleep(min(5.0, 0.05 * 2**stalls) * (0.5 + random.random() / 2))
    return found
