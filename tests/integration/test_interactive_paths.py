"""Paths mean what the user meant (issue 13): parameters files, run folders, and the errors that name them."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from recovery_helpers.context import open_context
from recovery_helpers.errors import InputError
from recovery_helpers.kernel_sockets import execution_options
from recovery_helpers.runner import load_parameters

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_relative_paths_in_a_parameters_file_resolve_against_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "incident"
    folder.mkdir()
    (folder / "p.yaml").write_text("runs_dir: runs\nlog_file: logs/changes.jsonl\nkeys_file: null\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where `recovery` runs (or JupyterLab's kernels) must not matter
    params = load_parameters("../incident/p.yaml", [("keys_file", "k.jsonl")])
    assert params["runs_dir"] == str(folder / "runs")
    assert params["log_file"] == str(folder / "logs" / "changes.jsonl")
    assert params["keys_file"] == "k.jsonl", "a -p value is the command line's: kept as typed"


def test_later_steps_refuse_an_incident_without_a_run_folder(tmp_path):
    runs = tmp_path / "runs"
    (runs / "INC-1").mkdir(parents=True)
    (runs / "INC-1" / "incident.json").write_text(json.dumps({"state": {}, "timeline": []}))
    with pytest.raises(InputError) as refused:
        open_context("INC-l", "orders", "us-east-1", None, str(runs), step="diff")
    message = str(refused.value)
    assert f"looked for {runs / 'INC-l' / 'incident.json'}" in message
    assert "start the incident with 01_prepare" in message and "INC-1" in message
    assert not (runs / "INC-l").exists(), "a typo must not start an empty incident"


@pytest.mark.timeout(120)
def test_diff_notebook_with_a_typo_fails_naming_the_folder_and_creates_nothing(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(
            str(NOTEBOOKS / "04_diff.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={
                "incident_id": "ix",
                "table_name": "orders",
                "runs_dir": "runs",
                "log_file": "runs/ix/demo/changes.jsonl",
                "incident_start": "2025-01-31T10:00:00Z",
            },
            kernel_name="python3",
            progress_bar=False,
            **execution_options(),
            cwd=str(tmp_path),
        )
    assert failed.value.ename == "InputError"
    assert f"looked for {runs / 'ix' / 'incident.json'}" in failed.value.evalue
    assert not runs.exists(), "04_diff created a run folder before validating its inputs"


def test_a_missing_keys_file_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    from recovery_helpers.sources import keys_file

    monkeypatch.chdir(tmp_path)

    class Request:
        keys_file = "keys.jsonl"

    with pytest.raises(InputError, match=f"looked for {tmp_path / 'keys.jsonl'}"):
        list(keys_file.find(Request()))


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.timeout(120)
def test_a_recovery_error_shows_its_message_not_a_traceback_and_still_fails_the_step(tmp_path):
    source = _notebook(
        tmp_path / "in.ipynb",
        "from recovery_helpers.errors import InputError\n"
        "def deep():\n    raise InputError(\"log_file 'x' does not exist: check the path.\")\n"
        "deep()\n",
    )
    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "out.ipynb"),
            kernel_name="python3",
            progress_bar=False,
            **execution_options(),
            cwd=str(tmp_path),
        )
    assert (failed.value.ename, failed.value.evalue) == (
        "InputError",
        "log_file 'x' does not exist: check the path.",
    )
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    [error] = [o for c in out.cells for o in c.get("outputs", []) if o.output_type == "error"]
    shown = "\n".join(error.traceback)
    assert "log_file 'x' does not exist" in shown and "What to do:" in shown
    assert "deep()" not in shown and "Traceback" not in shown, "the user sees the message, not the stack"


@pytest.mark.timeout(120)
def test_other_errors_keep_their_traceback(tmp_path):
    source = _notebook(tmp_path / "in.ipynb", "import recovery_helpers\ndef deep():\n    1 / 0\ndeep()\n")
    with pytest.raises(PapermillExecutionError):
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "out.ipynb"),
            kernel_name="python3",
            progress_bar=False,
            **execution_options(),
            cwd=str(tmp_path),
        )
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    [error] = [o for c in out.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert "deep()" in "\n".join(error.traceback), "a bug in code is still shown with its stack"
