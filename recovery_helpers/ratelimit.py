"""A write-rate limiter shared by all patch workers, with an injectable clock (tested without sleeping).

Virtual scheduling (the "generic cell rate algorithm"): the bucket keeps the earliest time the next write may
start; each grant of n items (one call carrying n items, e.g. a transaction) moves it on by ``n / rate``. A burst of ``burst`` writes may start at once after an idle
spell.
Throttling answers from DynamoDB push that time forward for every worker (:meth:`RateLimiter.pause`), so the
whole engine slows down instead of each worker hammering on alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError


@dataclass
class RateStats:
    """What the limiter granted: enough to check a run kept to its rate without timing it by hand."""

    granted: int = 0
    first_grant: float | None = None
    last_grant: float | None = None
    waited_seconds: float = 0.0
    pauses: int = 0
    paused_seconds: float = 0.0

    def observed_rate(self) -> float | None:
        """Grants per second between the first and the last grant (None below two grants)."""
        if self.granted < 2 or self.first_grant is None or self.last_grant is None:
            return None
        span = self.last_grant - self.first_grant
        return (self.granted - 1) / span if span > 0 else None


class RateLimiter:
    """At most ``rate`` grants per second across all threads (``rate=None``: no limit, pauses still apply).

    ``clock`` returns seconds (monotonic); ``sleep`` waits. Tests pass a fake pair and check :attr:`stats`.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
            raise InputError(
                f"max_write_rate must be a positive number of items per second or None, got {rate!r}."
            )
        if burst < 1:
            raise InputError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate) if rate is not None else None
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self.stats = RateStats()
        self._lock = threading.Lock()
        self._next: float | None = None  # earliest start of the next grant
        self._paused_until = 0.0

    def acquire(self, n: int = 1) -> float:
        """Block until this caller may write ``n`` items (one call carrying n items); returns the wait.

        ``n`` items take n slots of ``1 / rate``: they start together, and the next grant waits for all of
        them, so the rate over a run counts items, not calls.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"acquire takes a positive number of items, got {n!r}")
        with self._lock:
            now = self.clock()
            if self.rate is not None:
                interval = 1.0 / self.rate
                tat = now if self._next is None else max(self._next, now)  # theoretical arrival time
                # up to `burst` grants may start at once after an idle spell, never more
                start = max(now, tat - (self.burst - 1) * interval, self._paused_until)
                self._next = max(tat, start) + n * interval
                last = start + (n - 1) * interval  # the slot of the last of the n items
            else:
                start = last = max(now, self._paused_until)
            s = self.stats
            s.granted += n
            if s.first_grant is None:
                s.first_grant = start
            s.last_grant = last if s.last_grant is None else max(s.last_grant, last)
            wait = start - now
            s.waited_seconds += max(wait, 0.0)
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)

    def pause(self, seconds: float) -> None:
        """Hold every worker back for ``seconds`` from now (called when DynamoDB throttles)."""
        with self._lock:
            now = self.clock()
            until = now + seconds
            if until > self._paused_until:
                self.stats.paused_seconds += until - max(self._paused_until, now)
                self._paused_until = until
            self.stats.pauses += 1

    def wait_if_paused(self) -> None:
        """Sleep out a pause another worker started (for calls that are not rate limited, e.g. reads)."""
        with self._lock:
            wait = self._paused_until - self.clock()
        if wait > 0:
            self.sleep(wait)
