"""One live progress bar in the parent while worker processes patch (``apply_plan(max_processes=P)``).

Each worker gets a shared counter (``multiprocessing.Value``, passed in the Process args so that it survives the
"spawn" start) and hands its engine a :class:`CounterBar` in place of a progress bar: every key the engine
journals an outcome for adds to it. The parent's :class:`ParentBar` is the same ``progress.progress_bar`` a
single-process run shows (a live bar in JupyterLab, one final line headless), with the same total (the keys
to do over all segments); the parent's wait for the workers' answers wakes every ``POLL_SECONDS`` and moves
it to the counters' sum. Nothing of this is journaled: the counters only drive what is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import progress

#: How often the parent moves its bar while it waits for the workers (no busy loop: a blocking wait between).
POLL_SECONDS = 0.5


class CounterBar:
    """The bar a worker's engine updates (``update`` from its threads, ``close`` at the end): adds to a counter
    the parent reads."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def update(self, n: int = 1) -> None:
        with self.counter.get_lock():
            self.counter.value += n

    def close(self) -> None:
        """The counter stays readable by the parent after the engine is done."""


class ParentBar:
    """The parent's one bar over every segment, moved to the sum of the workers' counters."""

    def __init__(self, counters: Sequence[Any], total: int) -> None:
        self.counters = list(counters)
        self.shown = 0
        self.bar = progress.progress_bar(
            total=total, desc="patch", unit="item", done="patched {n}/{total} items"
        )

    def refresh(self) -> None:
        """Move the bar to what the workers have journaled so far (it never moves back)."""
        now = sum(c.value for c in self.counters)
        if now > self.shown:
            self.bar.update(now - self.shown)
            self.shown = now

    def close(self) -> None:
        self.refresh()
        self.bar.close()
