"""`recovery run`'s kernels listen on Unix sockets in a private folder, so no TCP port race can kill them.

With TCP, jupyter_client picks five free ports, writes them down, and the kernel binds them a second later; a
port taken in between (any outgoing connection on the machine can draw it) kills the kernel at start:
"Kernel didn't respond in 60 seconds". CI saw exactly that once in ~16 full runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from recovery_helpers.runner import run_steps

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kernel_socket"


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_the_runners_kernel_uses_a_private_unix_socket_folder_it_removes_afterwards(tmp_path):
    out = tmp_path / "connection.json"
    params = {"incident_id": "sockets", "runs_dir": str(tmp_path / "runs"), "out_file": str(out)}
    result = run_steps(params, "prepare", str(FIXTURE), log=None, cwd=str(tmp_path))
    assert result.ok, result.failed
    seen = json.loads(out.read_text())
    assert seen["transport"] == "ipc"  # no TCP port at all
    folder = Path(seen["ip"]).parent
    assert folder != tmp_path and tmp_path not in folder.parents  # not shared with other kernels started here
    assert seen["mode"] == 0o700  # nobody else on the machine can connect
    assert not folder.exists()  # removed with the kernel
