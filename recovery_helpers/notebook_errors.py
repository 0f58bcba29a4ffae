"""Errors a user can act on, shown in a notebook as the message and what to do, not as a traceback.

Every notebook imports ``recovery_helpers``, which calls :func:`install` once: inside an IPython kernel it
registers a handler for :class:`~recovery_helpers.errors.RecoveryError` with ``set_custom_exc``. The handler
still emits an *error* output (``ename``/``evalue`` as usual, a two-line "traceback"), so the cell's execution
fails exactly as before: papermill and ``recovery run`` stop the step and report ``InputError: ...``. Only
what is printed changes. ``%tb`` shows the full traceback when a developer needs it.
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import (
    ApprovalError,
    ConflictError,
    InputError,
    NotReadyError,
    PermissionDeniedError,
    RecoveryError,
    VerificationError,
)

#: One line per error type: what to do once the message has said what is wrong.
NEXT_STEP: dict[type[RecoveryError], str] = {
    InputError: "fix the parameter (this notebook's first cell, or the parameters file) and run again; "
    "nothing was written.",
    NotReadyError: "bring AWS into the state the message names (or wait for it), then run this cell again.",
    PermissionDeniedError: "give the kernel the credentials or the permission the message names (set them in "
    "the shell that starts JupyterLab, then restart the kernel), and run again.",
    ConflictError: "the item changed since it was reviewed and was left alone: review it again in 04_diff.",
    VerificationError: "the step ran but its check does not hold: read the message, fix, run this cell again.",
    ApprovalError: "review and approve the plan in 04_diff (buttons, or approval_token), then run again.",
}
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


def next_step(error: RecoveryError) -> str:
    """The advice for this error's type (its closest listed base class)."""
    for cls in type(error).__mro__:
        if cls in NEXT_STEP:
            return NEXT_STEP[cls]  # type: ignore[index]
    return "read the message above, fix what it names, and run this cell again."


def error_lines(error: RecoveryError) -> list[str]:
    """What the notebook shows: the error's type and message, then what to do (ANSI-coloured lines)."""
    return [
        f"{RED}{BOLD}{type(error).__name__}{RESET}: {error}",
        f"{BOLD}What to do:{RESET} {next_step(error)} (%tb shows the traceback)",
    ]


def _show(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """The ``set_custom_exc`` handler: emit an error output whose traceback is the message, not the stack."""
    lines = error_lines(value) if isinstance(value, RecoveryError) else [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, lines)  # the kernel's error output: the cell still counts as failed
    return lines


def install(shell: Any = None) -> bool:
    """Register the handler in the running IPython kernel (no-op outside one); True if registered."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        if ipython is None:
            return False
        shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    shell.set_custom_exc((RecoveryError,), _show)
    return True
