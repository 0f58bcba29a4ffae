"""The `recovery` command: the sandbox server, `run`'s exit codes and messages, clear one-line errors."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from recovery_helpers.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
STARTUP_TIMEOUT = 90  # importing moto on a busy 2-core machine


class LineReader:
    """Read a process's stdout line by line in a thread, so the test can wait for a line with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"output ended before a line starting with {prefix!r}")
            if line.startswith(prefix):
                return line


def _recovery(*args: str) -> list[str]:
    return [sys.executable, "-m", "recovery_helpers", *args]


def _clean_env() -> dict[str, str]:
    """The environment without AWS settings (the session sandbox's would leak into the child)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture
def sandbox_process():
    proc = subprocess.Popen(
        _recovery("sandbox", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    try:
        yield proc, LineReader(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sandbox_command_prints_how_to_reach_it_serves_boto3_and_stops_on_sigint(sandbox_process):
    proc, out = sandbox_process
    endpoint = out.until("endpoint_url=", STARTUP_TIMEOUT).removeprefix("endpoint_url=")
    assert endpoint.startswith("http://127.0.0.1:")
    exports = {}
    while len(exports) < 4:
        name, _, value = out.until("export ", 10).removeprefix("export ").partition("=")
        exports[name] = value
    assert exports["AWS_ENDPOINT_URL"] == endpoint and exports["AWS_DEFAULT_REGION"]

    session = boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        region_name=exports["AWS_DEFAULT_REGION"],
    )
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    ddb.create_table(
        TableName="cli-orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="cli-orders", Item={"id": {"N": "7"}, "total": {"N": "1.50"}})
    assert ddb.get_item(TableName="cli-orders", Key={"id": {"N": "7"}})["Item"]["id"] == {"N": "7"}

    # IAM is enforced: keys the sandbox never issued are refused.
    stranger = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIASTRANGER0000000",
        aws_secret_access_key="nope",
    )
    with pytest.raises(ClientError):
        stranger.list_tables()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


def test_sandbox_command_refuses_a_busy_port_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            _recovery("sandbox", "--port", str(port)),
            check=False,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            env=_clean_env(),
        )
    assert done.returncode == 2
    assert f"error: port {port} is in use" in done.stderr and "Traceback" not in done.stderr


def test_run_with_a_failing_step_exits_1_and_names_step_error_and_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "incident.yaml"
    params.write_text("incident_id: inc-cli\nfail: false\n")

    code = main(
        [
            "run",
            "-f",
            str(params),
            "-p",
            "fail",
            "true",
            "--steps",
            "prepare,restore",
            "--notebooks",
            str(FIXTURES),
        ]
    )

    out = capsys.readouterr().out
    notebook = tmp_path / "runs" / "inc-cli" / "03_restore.ipynb"
    assert code == 1
    assert "step 'restore' failed: InputError: restore_time is before the earliest restorable time" in out
    assert f"executed notebook: {notebook}" in out
    assert notebook.is_file() and notebook.with_suffix(".html").is_file()


def test_run_refuses_an_unknown_parameter_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "incident.yaml"
    params.write_text("incident_id: inc-typo\n")

    code = main(["run", "-f", str(params), "-p", "dry_rn", "false", "--notebooks", str(FIXTURES)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: unknown parameter(s): dry_rn (did you mean dry_run?)")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_notebooks_directory_comes_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECOVERY_NOTEBOOKS", str(FIXTURES))
    params = tmp_path / "incident.yaml"
    params.write_text("incident_id: inc-env\ntenants: [tenant-9]\n")

    assert main(["run", "-f", str(params), "--steps", "lift"]) == 0
    assert "lift" in capsys.readouterr().out
    assert (tmp_path / "runs" / "inc-env" / "06_lift.ipynb").is_file()


def test_errors_are_one_line_without_traceback_from_the_console_entry_point(tmp_path):
    done = subprocess.run(
        _recovery("run", "-f", str(tmp_path / "missing.yaml")),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: parameters file") and "not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_undo_without_a_run_folder_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["undo", "--incident", "never-ran"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run folder for incident 'never-ran'")


def test_undo_refuses_a_bad_incident_id(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["undo", "--incident", "../etc"]) == 2
    assert "incident_id '../etc' is not allowed" in capsys.readouterr().err
