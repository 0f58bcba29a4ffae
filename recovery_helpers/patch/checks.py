"""Checks of step 5's arguments, before anything is read or written: each failure says what to pass instead."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..context import Context
from ..errors import InputError
from ..items import KeySchema
from ..ratelimit import RateLimiter
from ..scan import BATCH_GET_MAX
from .requests import TRANSACT_MAX_ITEMS, WRITE_MODES


def validate_attributes(attributes: Any, schema: KeySchema) -> tuple[str, ...] | None:
    """None (whole items) or the distinct top-level non-key attribute names to revert."""
    if attributes is None:
        return None
    if isinstance(attributes, str) or not isinstance(attributes, (list, tuple)):
        raise InputError(
            f"attributes must be None (whole items) or a list of attribute names, got "
            f'{attributes!r}; e.g. attributes=["status", "price"].'
        )
    if not attributes:
        raise InputError(
            "attributes=[] names nothing to restore: use None for whole items, or list the names."
        )
    names = []
    for a in attributes:
        if not isinstance(a, str) or not a:
            raise InputError(f"attributes must be non-empty strings (top-level attribute names), got {a!r}.")
        if a in schema.names:
            raise InputError(
                f"attributes may not include the key attribute {a!r} (the table's key is "
                f"{schema.describe()}); a key cannot be changed in place."
            )
        names.append(a)
    return tuple(dict.fromkeys(names))


def validate_numbers(max_workers: Any, segments: Any) -> tuple[int, int] | None:
    """Check max_workers; return segments as (index, total), or None for the whole plan."""
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or not 1 <= max_workers <= 256:
        raise InputError(f"max_workers must be an integer between 1 and 256, got {max_workers!r}.")
    if segments is None:
        return None
    if (
        not isinstance(segments, (tuple, list))
        or len(segments) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in segments)
        or not 0 <= segments[0] < segments[1]
    ):
        raise InputError(
            f"segments must be (index, total) with 0 <= index < total, e.g. (0, 4) for the first "
            f"of four processes sharing the plan; got {segments!r}."
        )
    return int(segments[0]), int(segments[1])


#: At most this many patch processes on one machine (each with its own threads and connections).
MAX_PROCESSES = 64


def validate_processes(
    max_processes: Any, segments: tuple[int, int] | None, limiter: RateLimiter | None
) -> int:
    """Check max_processes (1: this process only) against the other arguments."""
    if (
        isinstance(max_processes, bool)
        or not isinstance(max_processes, int)
        or not 1 <= max_processes <= MAX_PROCESSES
    ):
        raise InputError(
            f"max_processes must be an integer between 1 and {MAX_PROCESSES}, got {max_processes!r}."
        )
    if max_processes > 1 and segments is not None:
        raise InputError(
            f"max_processes={max_processes} and segments={list(segments)} both split the plan: use "
            "max_processes on one machine, or segments=(i, n) with max_processes=1 on each of n machines."
        )
    if max_processes > 1 and limiter is not None:
        raise InputError(
            "a RateLimiter object cannot be shared between processes: pass max_write_rate instead (it is "
            f"divided between the {max_processes} processes)."
        )
    return max_processes


def validate_write_mode(write_mode: Any, transact_batch_size: Any, limiter: RateLimiter) -> str:
    """The write path to use: "single" or "transact" as asked; "auto" without a rate limit is "auto"."""
    if write_mode not in WRITE_MODES:
        raise InputError(
            f"write_mode must be one of {', '.join(repr(m) for m in WRITE_MODES)}, got {write_mode!r}: "
            '"single" writes one item per call, "transact" groups them in TransactWriteItems, "auto" decides.'
        )
    if (
        isinstance(transact_batch_size, bool)
        or not isinstance(transact_batch_size, int)
        or not 1 <= transact_batch_size <= TRANSACT_MAX_ITEMS
    ):
        raise InputError(
            f"transact_batch_size must be an integer between 1 and {TRANSACT_MAX_ITEMS} (items per "
            f"TransactWriteItems), got {transact_batch_size!r}."
        )
    if write_mode == "auto" and limiter.rate is not None:
        # with a rate limit the limit sets the speed, not the round trips: write the way that costs half the
        # capacity and catches an attribute added between read and write
        return "single"
    return write_mode


def validate_read_batch(read_batch_size: Any) -> int:
    """Keys per consistent BatchGetItem (1: GetItem per key)."""
    if not isinstance(read_batch_size, int) or not 1 <= read_batch_size <= BATCH_GET_MAX:
        raise InputError(f"read_batch_size must be 1..{BATCH_GET_MAX}, got {read_batch_size!r}")
    return read_batch_size


def key_schema(ctx: Context) -> KeySchema:
    """The live table's key schema (DescribeTable), as a clear error when the table cannot be read."""
    try:
        return KeySchema.of_table(ctx.aws.dynamodb, ctx.table_name)
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", ctx.table_name) from exc
