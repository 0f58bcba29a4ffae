"""The pieces of a browser session: a staged rehearsal, JupyterLab on 127.0.0.1 with a token, a page."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: JupyterLab settings for a test session: every cell in the DOM, no news or update checks (no internet).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
#: The notebook on screen (other open notebooks stay in the DOM, hidden).
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: True once every code cell shows an execution count; an error text if an error output appeared.
EXECUTED_JS = """() => {
  const errors = [...document.querySelectorAll('CURRENT .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.textContent).filter(t => /Error|Traceback/.test(t));
  if (errors.length) return 'error: ' + errors[0].slice(0, 600);
  const prompts = [...document.querySelectorAll('CURRENT .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t)) ? 'done' : false;
}""".replace("CURRENT", CURRENT)


STARTED_JS = """() => [...document.querySelectorAll('CURRENT .jp-CodeCell .jp-InputArea-prompt')]
  .some(p => /^\\[(\\*|\\d+)\\]:$/.test(p.textContent.trim()))""".replace("CURRENT", CURRENT)
#: How many code cells have run (show an execution count).
RAN_JS = """() => [...document.querySelectorAll('CURRENT .jp-CodeCell .jp-InputArea-prompt')]
  .filter(p => /^\\[\\d+\\]:$/.test(p.textContent.trim())).length""".replace("CURRENT", CURRENT)
#: Seconds with cells queued, none running to the end and the kernel not busy: the queue was lost.
STUCK_SECONDS = 30


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without AWS settings (the sandbox's come from its export lines), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "RECOVERY_HEADLESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **(extra or {})}


def recovery(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    """Run the `recovery` command; its stdout (fails the test with stderr if it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_helpers", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"recovery {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Rehearsal:
    workdir: Path
    params: Path
    exports: dict[str, str]
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.exports)

    @property
    def run_dir(self) -> Path:
        return self.params.parent


@contextmanager
def staged(workdir: Path, incident: str, orders_per_tenant: int = 40) -> Iterator[Rehearsal]:
    """`recovery demo --stage-only` in its own process, until the block ends (then SIGTERM)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recovery_helpers",
            "demo",
            "--stage-only",
            "--incident",
            incident,
            "--orders-per-tenant",
            str(orders_per_tenant),
        ],
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exports: dict[str, str] = {}
        params = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("export "):
                name, value = line[len("export ") :].strip().split("=", 1)
                exports[name] = value
            elif line.startswith("parameters: "):
                params = Path(line.split(": ", 1)[1].strip())
                break
        assert params is not None, f"stage-only printed no parameters line: {proc.stderr.read()}"
        yield Rehearsal(workdir, params, exports, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Lab:
    url: str
    token: str

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}"


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], home: Path) -> Iterator[Lab]:
    """JupyterLab serving ``root`` on 127.0.0.1 with a token; settings and workspaces in ``home``.

    No port is chosen ahead (a port found free here can be taken before the server binds it): the server binds
    port 0 and its info file says which port it got. Its kernels use Unix sockets (``KernelManager.transport=ipc``,
    as ``recovery_helpers.kernel_sockets`` explains), in a runtime folder short enough for a socket path.
    """
    settings = home / "settings"
    for name, value in LAB_SETTINGS.items():
        plugin, file = name.rsplit("/", 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True)
        (settings / plugin / file).write_text(json.dumps(value))
    token = secrets.token_hex(16)
    runtime = Path(tempfile.mkdtemp(prefix="rh-lab-"))
    log = (home / "jupyter.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            "--port=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.open_browser=False",
            "--KernelManager.transport=ipc",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ],
        cwd=root,
        env={**env, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(runtime)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield Lab(_wait_for_server(proc, runtime / f"jpserver-{proc.pid}.json", home / "jupyter.log"), token)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)


def _wait_for_server(proc: subprocess.Popen, info_file: Path, log: Path) -> str:
    """The server's URL once it answers on the port its info file names (bounded by a deadline)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            port = int(json.loads(info_file.read_text())["port"])
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}"
        except (OSError, ValueError, KeyError):  # not written yet, half written, or not listening yet
            assert proc.poll() is None, f"jupyter lab exited: {log.read_text()}"
            assert time.monotonic() < deadline, "jupyter lab did not listen within 90 s"
            time.sleep(0.2)


def block_the_internet(context: Any, blocked: list[str]) -> None:
    """Every request to anything but the loopback interface is aborted (and listed in ``blocked``)."""

    def handle(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in LOOPBACK or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", handle)


def run_all(page: Any, shot: Callable[[str], None], name: str, timeout_s: float = 240) -> None:
    """Run All Cells from the Run menu, wait until every cell ran (fail on an error output), screenshot.

    A Run All that lands while JupyterLab is still settling the notebook's kernel is dropped (the prompts stay,
    or fall back to, ``[ ]``), or queued for a kernel JupyterLab has just replaced (the prompts show ``[*]``,
    nothing runs and the kernel is not busy: seen once in CI, where it waited out the whole timeout); then it is
    clicked again, at most three times. Each click gets the whole ``timeout_s`` (a loaded CI machine runs the
    other xdist worker's tests beside this one).
    """
    busy = page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='busy']")
    idle = page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']")
    choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    idle.or_(choose).first.wait_for(timeout=60_000)
    if choose.is_visible():  # JupyterLab may ask once which kernel to start: the notebook's own, Python 3
        shot(f"{name}-kernel-dialog")
        choose.click()
    idle.wait_for(timeout=60_000)
    # the kernel is connected when the status bar names it as Idle
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=90_000)
    outcome: Any = False
    try:
        for attempt in range(3):
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            clicked = progressed = time.monotonic()
            deadline, ran = clicked + timeout_s, -1
            while time.monotonic() < deadline:
                outcome = page.evaluate(EXECUTED_JS)
                if outcome:
                    break
                now, ran_now = time.monotonic(), page.evaluate(RAN_JS)
                if ran_now != ran or busy.count():
                    ran, progressed = ran_now, now
                if not page.evaluate(STARTED_JS) and now - clicked > 10:
                    shot(f"{name}-not-started-{attempt + 1}")
                    break  # nothing queued or running 10 s after the click: click again
                if now - progressed > STUCK_SECONDS:
                    shot(f"{name}-stuck-{attempt + 1}")
                    break  # queued, but nothing ran and the kernel idle for 30 s: click again
                time.sleep(0.5)
            if outcome:
                break
    finally:
        shot(name)
    assert outcome == "done", f"{name}: {outcome or 'did not finish in time'}"


def save(page: Any, notebook: Path, timeout: float = 30) -> None:
    """Save (the toolbar's save button), then wait until the file on disk holds the executed cells."""
    page.locator(f"{PANEL} .jp-NotebookPanel-toolbar [data-command='docmanager:save']").first.click()
    overwrite = page.locator(".jp-Dialog").get_by_role("button", name="Overwrite")
    deadline = time.monotonic() + timeout
    while True:
        try:
            nb = json.loads(notebook.read_text())
        except ValueError:  # caught half-written: read it again
            nb = {"cells": [{"cell_type": "code"}]}
        if all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"):
            return
        if overwrite.is_visible():  # "file changed on disk": the engineer's copy is the one to keep
            overwrite.click()
        assert time.monotonic() < deadline, f"{notebook} was not saved executed within {timeout} s"
        time.sleep(0.2)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Poll ``check`` until it returns something true (a file written by the kernel, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
