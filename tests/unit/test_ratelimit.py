"""The shared write-rate limiter, on a fake clock: no sleeping, exact accounting."""

from __future__ import annotations

import pytest

from recovery_helpers.errors import InputError
from recovery_helpers.ratelimit import RateLimiter


class FakeClock:
    """A clock that only moves when the limiter sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_rate_is_kept_exactly():
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    for _ in range(101):
        limiter.acquire()
    assert clock.now == pytest.approx(5.0)  # 100 intervals of 1/20 s
    assert limiter.stats.granted == 101
    assert limiter.stats.observed_rate() == pytest.approx(20.0)


def test_slow_callers_are_not_held_back_and_bursts_are_capped():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60  # idle for a minute: a burst of 3 may go at once, the 4th waits
    waits = [limiter.acquire() for _ in range(4)]
    assert waits[:3] == [0, 0, 0] and waits[3] == pytest.approx(0.1)
    clock.now += 10
    assert limiter.acquire() == 0  # slower than the rate: never waits


def test_a_pause_holds_everyone_back_and_is_accounted():
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    assert limiter.acquire() == 0
    limiter.pause(2.0)
    limiter.wait_if_paused()
    assert clock.now == pytest.approx(2.0)
    assert limiter.acquire() == 0
    assert limiter.stats.pauses == 1 and limiter.stats.paused_seconds == pytest.approx(2.0)


def test_pause_and_rate_combine():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    limiter.acquire()  # t=0
    limiter.pause(1.0)
    assert limiter.acquire() == pytest.approx(1.0)  # held by the pause, not only by the 0.25 s interval
    assert limiter.acquire() == pytest.approx(0.25)


@pytest.mark.parametrize("rate", [0, -1, "10", True])
def test_bad_rates_are_refused(rate):
    with pytest.raises(InputError, match="max_write_rate"):
        RateLimiter(rate)


def test_a_call_carrying_n_items_takes_n_slots():
    """A transaction of n items counts n items: it may start at once, and the next grant waits n intervals."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(5) == 0  # items 0..4 in slots 0.0..0.4
    assert limiter.acquire(5) == pytest.approx(0.5)  # items 5..9 in slots 0.5..0.9
    assert limiter.acquire() == pytest.approx(0.5)  # item 10 in slot 1.0
    assert limiter.stats.granted == 11
    assert limiter.stats.observed_rate() == pytest.approx(10.0)  # (11 - 1) items over slots 0.0..1.0
    with pytest.raises(ValueError):
        limiter.acquire(0)
