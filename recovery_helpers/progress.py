"""Progress for long operations: a live bar in JupyterLab, one final text line in headless runs.

A tqdm.auto bar in a papermill run is a widget: the executed notebook keeps its first text (``0%| 0/120``) and the
HTML copy needs a widget manager from a CDN to draw it. Headless (``RECOVERY_HEADLESS=1``, which ``recovery run``
sets, or no Jupyter kernel at all) nothing is drawn while working and one line is printed at the end instead:
``fetched 120/120 items in 0.4 s``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Self


def headless() -> bool:
    """True when nobody watches a live bar: ``RECOVERY_HEADLESS`` set, or not inside a Jupyter kernel."""
    if os.environ.get("RECOVERY_HEADLESS", "").lower() in ("1", "true", "yes"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or getattr(shell, "kernel", None) is None


class TextProgress:
    """The tqdm calls the engines use (update, set_description_str, close); prints one line at close."""

    def __init__(self, total: int | None, done: str | None, desc: str, unit: str, disable: bool) -> None:
        self.total, self.n, self.desc, self.unit, self.disable = total, 0, desc, unit, disable
        self.done = done
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n

    def set_description_str(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.disable:
            return
        print(self.final_line())

    def final_line(self) -> str:
        seconds = time.monotonic() - self._started
        if self.done:
            what = self.done.format(n=self.n, total=self.total if self.total is not None else self.n)
        elif self.total is not None:
            what = f"{self.desc}: {self.n}/{self.total} {self.unit}s"
        else:
            what = self.desc
        return f"{what} in {seconds:.1f} s"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    *,
    total: int | None,
    desc: str,
    unit: str = "it",
    disable: bool = False,
    done: str | None = None,
    **kw: Any,
) -> Any:
    """A tqdm.auto bar when someone watches (JupyterLab, a terminal), else a :class:`TextProgress`.

    ``done`` is the final headless line, formatted with ``n`` and ``total`` (``"fetched {n}/{total} items"``).
    """
    if disable or headless():  # disabled: nothing is drawn, and IPython need not be imported to tell
        return TextProgress(total, done, desc, unit, disable)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable, **kw)
