"""Fewer garbage collections while the engine runs: about a sixth of its client CPU went to them.

The engine allocates many short-lived objects per item (parsed plan lines, answers, request bodies), so
Python's cyclic collector runs often, and each older-generation pass walks every object the process holds (a
Jupyter kernel holds many: data frames, widgets, outputs). Reference counting frees almost all of the
engine's objects on its own; the collector is only needed for cycles, which the engine barely makes.
While a run lasts, the objects that existed before it are frozen out of the collector's walks
(``gc.freeze``) and the first generation is collected after ``FIRST_GENERATION`` allocations instead of
Python's 700. Both are undone when the run ends (``bench/README.md`` has the figures).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: Allocations (net of frees) between two first-generation collections while the engine runs.
FIRST_GENERATION = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze what exists and collect less often until the block ends (nested blocks share one setting)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(FIRST_GENERATION, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
