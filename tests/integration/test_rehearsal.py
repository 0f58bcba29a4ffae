"""The interactive path's commands (issue 13): `recovery demo --stage-only` and `recovery open STEP`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import nbformat
import pytest
import yaml

from recovery_helpers.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _stage(tmp_path: Path, incident: str = "drill") -> tuple[subprocess.Popen, dict[str, str], Path]:
    """Start `recovery demo --stage-only` in its own process; wait for its `parameters:` line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
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
            "12",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exports: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:  # blocks until the sandbox prints; the test's timeout bounds it
        if line.startswith("export "):
            name, value = line[len("export ") :].strip().split("=", 1)
            exports[name] = value
        if line.startswith("parameters: "):
            return proc, exports, Path(line.split(": ", 1)[1].strip())
    raise AssertionError(f"no parameters line; stderr: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.timeout(120)
def test_stage_only_prints_credentials_and_leaves_every_decision_to_the_engineer(tmp_path):
    proc, exports, params_file = _stage(tmp_path)
    try:
        assert params_file.is_absolute() and params_file == tmp_path / "runs" / "drill" / "parameters.yaml"
        params = yaml.safe_load(params_file.read_text())
        assert "approve" not in params and "approval_token" not in params and params["dry_run"] is True
        for name in ("runs_dir", "log_file"):
            assert Path(params[name]).is_absolute(), f"{name} is relative: {params[name]}"
        assert Path(params["log_file"]).is_file()
        # the printed lines are enough for another program to reach the sandbox as its administrator
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_DEFAULT_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        assert ddb.describe_table(TableName=params["table_name"])["Table"]["ItemCount"] >= 0
        assert ddb.scan(TableName=params["table_name"], Select="COUNT")["Count"] > 0
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=20)
    assert status == 0 and time.monotonic() - started < 10, "SIGTERM stops it within seconds"


def test_stage_only_refuses_a_folder_that_holds_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "old").mkdir(parents=True)
    (tmp_path / "runs" / "old" / "incident.json").write_text("{}")
    assert main(["demo", "--stage-only", "--incident", "old"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'runs' / 'old'} already holds a run" in err


def _params(tmp_path: Path, **extra) -> Path:
    folder = tmp_path / "incident"
    folder.mkdir(exist_ok=True)
    path = folder / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "incident_id": "INC-7",
                "table_name": "orders",
                "runs_dir": "runs",
                "log_file": "changes.jsonl",
                "incident_start": "2025-01-31T10:00:00Z",
                **extra,
            }
        )
    )
    return path


def test_open_writes_the_step_prepared_not_executed_with_absolute_paths(tmp_path, monkeypatch, capsys):
    params = _params(tmp_path, dry_run=True)
    monkeypatch.chdir(tmp_path)  # JupyterLab will run the kernel elsewhere: the paths must not depend on it
    run_dir = tmp_path / "incident" / "runs" / "INC-7"
    run_dir.mkdir(parents=True)
    (run_dir / "incident.json").write_text(json.dumps({"state": {}, "timeline": []}))
    assert main(["open", "diff", "-f", str(params), "-p", "keys_file", "k.jsonl"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"notebook: {run_dir / '04_diff.ipynb'}"
    nb = nbformat.read(str(run_dir / "04_diff.ipynb"), as_version=4)
    assert all(
        c.get("execution_count") is None and not c.get("outputs") for c in nb.cells if c.cell_type == "code"
    ), "prepared, not executed"
    [injected] = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert f'log_file = "{tmp_path / "incident" / "changes.jsonl"}"' in injected.source
    assert f'keys_file = "{tmp_path / "k.jsonl"}"' in injected.source, "-p paths: from where it was typed"
    assert f'runs_dir = "{tmp_path / "incident" / "runs"}"' in injected.source
    assert "dry_run" not in injected.source, "04_diff does not declare dry_run: not injected"
    timeline = json.loads((run_dir / "incident.json").read_text())["timeline"]
    assert timeline[-1]["action"] == "open step diff"


def test_open_refuses_unknown_names_and_an_incident_without_a_run_folder(tmp_path, capsys):
    params = _params(tmp_path)
    assert main(["open", "contain", "-f", str(params)]) == 2
    err = capsys.readouterr().err
    assert f"looked for {tmp_path / 'incident' / 'runs' / 'INC-7' / 'incident.json'}" in err
    assert main(["open", "prepare", "-f", str(params), "-p", "dry_rn", "false"]) == 2
    assert "unknown parameter(s): dry_rn (did you mean dry_run?)" in capsys.readouterr().err
    assert main(["open", "dif", "-f", str(params)]) == 2
    assert "unknown step 'dif'" in capsys.readouterr().err
    assert not (tmp_path / "incident" / "runs").exists(), "nothing written before the input is valid"


def test_opening_the_next_step_archives_the_one_run_by_hand(tmp_path, capsys):
    params = _params(tmp_path)
    run_dir = tmp_path / "incident" / "runs" / "INC-7"
    assert main(["open", "prepare", "-f", str(params)]) == 0
    assert not (run_dir / "01_prepare.html").exists(), "a notebook nobody ran has no HTML copy"
    # the engineer runs it in JupyterLab and saves it (an executed cell with an output)
    nb = nbformat.read(str(run_dir / "01_prepare.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "check_readiness" in c.source)
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", text="readiness: 5 of 6 checks pass\n")]
    nbformat.write(nb, str(run_dir / "01_prepare.ipynb"))
    (run_dir / "incident.json").write_text(json.dumps({"state": {}, "timeline": []}))
    assert main(["open", "contain", "-f", str(params)]) == 0
    out = capsys.readouterr().out
    html = run_dir / "01_prepare.html"
    assert f"html copy of a notebook run by hand: {html}" in out
    assert "readiness: 5 of 6 checks pass" in html.read_text()
    # opening a step again keeps the executed copy as evidence instead of overwriting it
    assert main(["open", "prepare", "-f", str(params)]) == 0
    kept = list((run_dir / "previous").glob("01_prepare.*.ipynb"))
    assert len(kept) == 1 and "readiness: 5 of 6" in kept[0].read_text()
