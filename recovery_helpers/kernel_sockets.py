"""Headless notebook kernels talk over Unix sockets in a private folder, not over TCP ports on 127.0.0.1.

jupyter_client picks a kernel's five TCP ports by binding port 0 and closing it, writes them into the
connection file, and only then starts the kernel, which binds them again about a second later. Anything on the
machine that binds or connects in that second can take one of them (outgoing connections draw their local
ports from the same range), and the kernel dies at start: ``Address already in use`` in its log, then
``Kernel didn't respond in 60 seconds``. A busy automation host makes that likely; so does this project's test
suite, whose every test opens connections to the sandbox. A Unix socket in a folder only this user can open
(mode 0700, made fresh for each kernel) cannot be taken by anyone else, and no other user on the machine can
connect to the kernel. On Windows (no Unix sockets for ZeroMQ) kernels keep TCP.

``recovery run`` uses it for every step (:mod:`recovery_helpers.runner`); so do the tests that execute
notebooks. JupyterLab users get the same with ``jupyter lab --KernelManager.transport=ipc``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from jupyter_client import AsyncKernelManager
from traitlets import CaselessStrEnum, default

#: The kernel manager class, as nbclient's (and papermill's) ``kernel_manager_class`` accepts it.
MANAGER_CLASS = f"{__name__}.PrivateSocketKernelManager"


class PrivateSocketKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (nbclient's default) whose kernel listens on Unix sockets in a private folder."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        # For ipc, jupyter_client's "ip" is the sockets' path prefix (sockets are "<ip>-<n>"). Its own default is
        # "kernel-ipc" in the working directory, shared by every kernel started there.
        if self.transport != "ipc":
            return super()._ip_default()
        self._socket_dir = tempfile.mkdtemp(prefix="rh-kernel-")  # mode 0700
        return os.path.join(self._socket_dir, "k")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        folder = getattr(self, "_socket_dir", None)
        if folder and not restart:
            shutil.rmtree(folder, ignore_errors=True)


def execution_options() -> dict[str, Any]:
    """Keyword arguments for ``papermill.execute_notebook`` / ``nbclient.NotebookClient``: private sockets."""
    return {} if os.name == "nt" else {"kernel_manager_class": MANAGER_CLASS}
