"""Issue 15, E: stopping `recovery run` stops its kernel; an orphaned kernel must not go on writing.

A real runner in a child process executes a fixture notebook whose kernel writes one line every 5 ms (as a
patch loop writes items). The runner is killed (SIGKILL, SIGTERM); once it is reaped, its kernel must write
nothing more and be gone. ipykernel by itself notices a dead parent only by polling once a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "tests" / "fixtures" / "orphan"
RUNNER = """
import sys
from recovery_helpers.runner import run_steps
run_steps({"incident_id": "orphan", "runs_dir": sys.argv[1], "out_file": sys.argv[2]}, "prepare", sys.argv[3],
          log=None, cwd=sys.argv[4])
"""


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead (only waiting to be reaped by whoever adopted it)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_runner_stops_its_kernel_at_once(tmp_path, sig):
    out = tmp_path / "writes.txt"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path / "runs"), str(out), str(NOTEBOOKS), str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pid_file = Path(str(out) + ".pid")
    deadline = time.monotonic() + 120
    try:
        # the kernel is up and writing (bounded by a deadline; the condition decides, not the clock)
        while _lines(out) < 20 and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.poll() is None, runner.stderr.read().decode()[-2000:] if runner.stderr else ""
        kernel = int(pid_file.read_text())
        runner.send_signal(sig)
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    written_when_reaped = _lines(out)
    gone_by = time.monotonic() + 30
    while _alive(kernel) and time.monotonic() < gone_by:
        time.sleep(0.01)
    try:
        assert not _alive(kernel), "the kernel outlived its runner"
        # at most the one write in progress at the moment of the kill
        assert _lines(out) - written_when_reaped <= 1, (
            f"the orphaned kernel went on writing: {_lines(out) - written_when_reaped} more lines"
        )
    finally:
        if _alive(kernel):
            os.kill(kernel, signal.SIGKILL)
    if sig == signal.SIGTERM:  # the runner said so in the timeline before it went
        timeline = (tmp_path / "runs" / "orphan" / "incident.json").read_text()
        assert '"interrupted"' in timeline and "SIGTERM" in timeline
