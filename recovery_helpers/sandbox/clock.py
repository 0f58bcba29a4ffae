"""The sandbox's clock: wall-clock time plus an offset that tests may advance, never turn back."""

from __future__ import annotations

import threading
import time


class Clock:
    """Epoch seconds as the sandbox sees them. ``advance`` jumps forward without sleeping."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._last = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current sandbox time; strictly increasing between calls so history entries never tie."""
        with self._lock:
            t = time.time() + self._offset
            if t <= self._last:
                t = self._last + 1e-6
            self._last = t
            return t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds


CLOCK = Clock()
