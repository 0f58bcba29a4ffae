"""Polling with bounded backoff: how the probes wait for IAM's eventual consistency (split out of probe.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .probe import ProbeResult


def backoff_delays(initial: float, maximum: float) -> Iterable[float]:
    """initial, 2x, 4x, ... capped at maximum: the waits between polls."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * 2)


def poll(
    attempt: Callable[[], list[ProbeResult]],
    done: Callable[[list[ProbeResult]], bool],
    *,
    timeout_seconds: float,
    initial_delay: float = 0.5,
    max_delay: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[ProbeResult], int, float]:
    """Run ``attempt`` until ``done`` or the deadline (bounded backoff, never past the deadline).

    Returns the last results, the number of attempts and the elapsed seconds.
    """
    start = clock()
    attempts = 0
    delays = backoff_delays(initial_delay, max_delay)
    while True:
        results = attempt()
        attempts += 1
        elapsed = clock() - start
        remaining = timeout_seconds - elapsed
        if done(results) or remaining <= 0:
            return results, attempts, elapsed
        sleep(min(next(delays), remaining))
