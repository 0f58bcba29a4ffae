"""`recovery run` on tiny fixture notebooks: parameters per notebook, refusals, failures, evidence."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from recovery_helpers.errors import InputError
from recovery_helpers.runner import STEPS, declared_parameters, load_parameters, parse_steps, run_steps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PARAMETER_FILES = sorted((Path(__file__).resolve().parents[2] / "parameters").glob("*.yaml"))


def _received(notebook: Path) -> dict:
    """What the executed fixture notebook printed as the parameters it received."""
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("RECEIVED "):
                    return json.loads(line.removeprefix("RECEIVED "))
    raise AssertionError(f"{notebook} printed no RECEIVED line")


def _printed(notebook: Path, prefix: str) -> str:
    nb = nbformat.read(str(notebook), as_version=4)
    lines = [
        line
        for cell in nb.cells
        for out in cell.get("outputs", [])
        for line in out.get("text", "").splitlines()
    ]
    found = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
    assert found, f"{notebook} printed no {prefix!r} line"
    return found[0]


def _injected(notebook: Path) -> str:
    nb = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    return cells[0].source if cells else ""


def test_each_notebook_receives_only_the_parameters_it_declares(tmp_path):
    params = {
        "incident_id": "inc-1",
        "runs_dir": str(tmp_path / "runs"),
        "app_role_name": "orders-api",
        "tenants": ["tenant-1", "tenant-2"],
        "dry_run": False,
        "restore_time": "2025-01-31T09:59:00+00:00",
    }
    result = run_steps(
        params,
        "contain,prepare",
        FIXTURES,
        env={"RECOVERY_FIXTURE_MARK": "from-runner"},
        log=None,
        cwd=tmp_path,
    )

    assert result.ok and result.exit_code == 0
    assert [s.step for s in result.steps] == ["prepare", "contain"]  # runbook order, whatever the order asked
    run_dir = tmp_path / "runs" / "inc-1"
    assert result.run_dir == run_dir
    prepare = _received(run_dir / "01_prepare.ipynb")
    assert prepare["app_role_name"] == "orders-api" and prepare["incident_id"] == "inc-1"
    assert prepare["apply"] is False  # not given: the notebook's own default
    assert "tenants" not in _injected(run_dir / "01_prepare.ipynb")
    assert "dry_run" not in _injected(run_dir / "01_prepare.ipynb")
    contain = _received(run_dir / "02_contain.ipynb")
    assert contain["tenants"] == ["tenant-1", "tenant-2"]
    assert "app_role_name" not in _injected(run_dir / "02_contain.ipynb")
    assert (
        json.loads(_printed(run_dir / "01_prepare.ipynb", "ENV "))["RECOVERY_FIXTURE_MARK"] == "from-runner"
    )
    assert (run_dir / "01_prepare.html").read_text().count("orders-api") >= 1
    assert (run_dir / "02_contain.html").is_file()
    assert not (run_dir / "03_restore.ipynb").exists()

    timeline = json.loads((run_dir / "incident.json").read_text())["timeline"]
    assert [(e["action"], e["result"]) for e in timeline] == [
        ("run step prepare", "ok"),
        ("run step contain", "ok"),
    ]
    assert timeline[0]["notebook"] == str(run_dir / "01_prepare.ipynb") and timeline[0]["who"]


def test_overrides_are_yaml_and_unquoted_times_become_iso_text(tmp_path):
    params_file = tmp_path / "incident.yaml"
    params_file.write_text("incident_id: inc-2\napprove: false\nincident_start: 2025-01-31T10:00:00+00:00\n")
    params = load_parameters(
        params_file, [("approve", "true"), ("tenant_attribute", "pk:^([^#]+)#"), ("max_workers", "16")]
    )
    assert params["approve"] is True and params["max_workers"] == 16

    # tenant_attribute is annotated `str | None`, which papermill's own parser misses; it is still declared.
    assert "tenant_attribute" in declared_parameters(FIXTURES / "04_diff.ipynb")
    result = run_steps({**params, "runs_dir": "runs"}, ["diff", "patch"], FIXTURES, log=None, cwd=tmp_path)
    assert result.ok, result.summary()
    diff = _received(tmp_path / "runs" / "inc-2" / "04_diff.ipynb")
    assert diff == {
        "incident_id": "inc-2",
        "tenant_attribute": "pk:^([^#]+)#",
        "approve": True,
        "incident_start": "2025-01-31T10:00:00+00:00",
    }
    patch = _received(tmp_path / "runs" / "inc-2" / "05_patch.ipynb")
    assert patch["max_workers"] == 16 and patch["dry_run"] is True


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path):
    params = {"incident_id": "inc-3", "runs_dir": str(tmp_path / "runs"), "dry_rn": False, "colour": "red"}
    with pytest.raises(InputError) as err:
        run_steps(params, None, FIXTURES, log=None, cwd=tmp_path)
    message = str(err.value)
    assert "dry_rn (did you mean dry_run?)" in message and "colour" in message
    assert "Known parameters:" in message and "restore_time" in message
    assert not (tmp_path / "runs").exists()


def test_a_name_declared_by_an_unselected_step_is_accepted(tmp_path):
    # One parameters file serves the whole incident: dry_run belongs to patch, the run only does prepare.
    result = run_steps(
        {"incident_id": "inc-4", "dry_run": False}, "prepare", FIXTURES, log=None, cwd=tmp_path
    )
    assert result.ok
    assert "dry_run" not in _injected(tmp_path / "runs" / "inc-4" / "01_prepare.ipynb")


def test_failing_step_stops_the_run_and_leaves_its_evidence(tmp_path):
    lines: list[str] = []
    result = run_steps({"incident_id": "inc-5", "fail": True}, None, FIXTURES, log=lines.append, cwd=tmp_path)

    run_dir = tmp_path / "runs" / "inc-5"
    assert not result.ok and result.exit_code == 1
    assert [(s.step, s.ok) for s in result.steps] == [
        ("prepare", True),
        ("contain", True),
        ("restore", False),
    ]
    failed = result.failed
    assert failed.error == "InputError: restore_time is before the earliest restorable time (fixture)"
    assert failed.notebook == run_dir / "03_restore.ipynb" and failed.notebook.is_file()
    assert "restore_time is before the earliest restorable time" in (run_dir / "03_restore.html").read_text()
    assert not (run_dir / "04_diff.ipynb").exists()
    assert any("FAILED" in line and "InputError" in line for line in lines)
    summary = result.summary()
    assert "step 'restore' failed" in summary and str(run_dir / "03_restore.ipynb") in summary
    timeline = json.loads((run_dir / "incident.json").read_text())["timeline"]
    assert timeline[-1]["action"] == "run step restore" and timeline[-1]["result"] == "failed"
    assert "InputError" in timeline[-1]["error"]


@pytest.mark.parametrize("incident_id", ["../x", "a/b", "", ".hidden"])
def test_bad_incident_id_is_refused_before_anything_is_created(tmp_path, incident_id):
    with pytest.raises(InputError, match="incident_id"):
        run_steps({"incident_id": incident_id}, "prepare", FIXTURES, log=None, cwd=tmp_path / "work")
    assert not (tmp_path / "work").exists() and not (tmp_path / "x").exists()


def test_unknown_steps_and_missing_notebooks_are_refused(tmp_path):
    assert parse_steps("lift, diff") == ["diff", "lift"]
    assert parse_steps(None) == list(STEPS)
    with pytest.raises(InputError, match=r"unknown step.*restor"):
        parse_steps("prepare,restor")
    with pytest.raises(InputError, match="not found"):
        run_steps({"incident_id": "inc-6"}, "prepare", tmp_path / "empty", log=None, cwd=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_naive_time_is_refused(tmp_path):
    params_file = tmp_path / "p.yaml"
    params_file.write_text("incident_id: inc-7\nrestore_time: 2025-01-31 09:59:00\n")
    with pytest.raises(InputError, match="no UTC offset"):
        run_steps(load_parameters(params_file), "restore", FIXTURES, log=None, cwd=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_kernel_reaches_the_sandbox_with_the_inherited_environment(sandbox, tmp_path):
    # The session fixture exported the sandbox's AWS_* variables; the kernel inherits them.
    result = run_steps(
        {"incident_id": "inc-8", "check_aws": True}, "prepare", FIXTURES, log=None, cwd=tmp_path
    )
    assert result.ok, result.summary()
    caller = _printed(tmp_path / "runs" / "inc-8" / "01_prepare.ipynb", "CALLER ")
    assert caller == sandbox.client("sts").get_caller_identity()["Arn"]


@pytest.mark.parametrize("params_file", PARAMETER_FILES, ids=lambda p: p.name)
def test_shipped_parameter_files_use_only_names_the_runbook_notebooks_declare(params_file):
    declared = set()
    for step in STEPS:
        notebook = REPO_NOTEBOOKS / f"{STEPS.index(step) + 1:02d}_{step}.ipynb"
        assert notebook.is_file(), f"{notebook} is missing"
        declared |= set(declared_parameters(notebook))
    names = set(load_parameters(params_file))
    assert names - declared == set(), f"{params_file.name} names parameters no notebook declares"


def test_running_a_step_again_keeps_the_earlier_executed_notebook(tmp_path):
    first = run_steps({"incident_id": "inc-9", "dry_run": True}, "patch", FIXTURES, log=None, cwd=tmp_path)
    second = run_steps({"incident_id": "inc-9", "dry_run": False}, "patch", FIXTURES, log=None, cwd=tmp_path)

    assert first.ok and second.ok
    run_dir = tmp_path / "runs" / "inc-9"
    assert _received(run_dir / "05_patch.ipynb")["dry_run"] is False
    kept = sorted((run_dir / "previous").glob("05_patch.*.ipynb"))
    assert len(kept) == 1 and _received(kept[0])["dry_run"] is True
    assert kept[0].with_suffix(".html").is_file()
    steps = [
        e
        for e in json.loads((run_dir / "incident.json").read_text())["timeline"]
        if e["action"] == "run step patch"
    ]
    assert len(steps) == 2
