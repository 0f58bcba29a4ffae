"""A notebook kernel started by ``recovery run`` dies with the runner (issue 15, E).

jupyter_client starts each kernel in a session of its own, so a signal to the runner's process group never
reaches it, and ipykernel only notices its parent is gone by polling once a second: a runner killed mid-patch
left a kernel writing for up to a second, with nobody left to read its journal or stop it. The runner starts
kernels with this module's :func:`die_with_parent` as their first line (an ``IPKernelApp.exec_lines`` entry):

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel is killed the moment the runner exits, however it
  exits (SIGKILL included);
* elsewhere, a watchdog thread checks the parent pid every ``WATCHDOG_SECONDS`` and exits the kernel;
* either way, a runner that died before the guard was set (the pid it recorded is no longer the kernel's
  parent) stops the kernel at once.

A kernel killed like this is just a crash of the patch: the next run resumes it (see ``patch.resume``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: The runner's pid, set in the kernel's environment by the runner.
RUNNER_PID_ENV = "RECOVERY_RUNNER_PID"
#: Seconds between two looks at the parent pid where prctl is not available.
WATCHDOG_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> str:
    """Make this process die when the runner that started it does; returns how ("pdeathsig", "watchdog",
    or "off" when no runner pid is known). ``parent``: the pid to die with (default: the runner's, from the
    environment); a patch worker process passes its parent's (``patch.processes``)."""
    if parent is None:
        try:
            parent = int(os.environ.get(RUNNER_PID_ENV) or 0)
        except ValueError:
            parent = 0
    if not parent:
        return "off"
    how = "watchdog"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                how = "pdeathsig"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the runner died before the guard was in place
        os._exit(1)
    if how == "watchdog":
        threading.Thread(target=_watch, args=(parent,), name="runner-watchdog", daemon=True).start()
    return how


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


#: The kernel argument that runs the guard first (ipykernel runs exec_lines before any cell).
EXEC_LINE = (
    "--IPKernelApp.exec_lines=import recovery_helpers.kernel_guard as _g; _g.die_with_parent(); del _g"
)
