"""Notebooks 01, 02, 03 and 06: the contract's parameters with safe defaults, and a headless run in order."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill
import pytest

from recovery_helpers import estimate
from recovery_helpers.kernel_sockets import execution_options
from tests.conftest import create_table
from tests.containment_support import attempt, make_app_role

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
COMMON = {
    "incident_id": "demo",
    "table_name": None,
    "region": "us-east-1",
    "endpoint_url": None,
    "runs_dir": "runs",
}
CONTRACT = {
    "01_prepare": {
        "app_role_name": None,
        "read_only_parameter": "read-only-customers",
        "deny_policy_name": "DenyWrite",
        "apply": False,
    },
    "02_contain": {
        "tenants": ["all"],
        "app_role_name": None,
        "read_only_parameter": "read-only-customers",
        "deny_policy_name": "DenyWrite",
    },
    "03_restore": {
        "restore_time": None,
        "source": "pitr",
        "backup_arn": None,
        "restored_table_name": None,
        "restore_indexes": True,
        "incident_start": None,
    },
    "06_lift": {
        "tenants": ["all"],
        "delete_restored_table": False,
        "app_role_name": None,
        "read_only_parameter": None,
        "deny_policy_name": None,
    },
}


def _parameters(name: str) -> dict:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell tagged parameters"
    values = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), f"{name}: the parameters cell only assigns"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_parameters_cell_has_the_contracts_names_and_safe_defaults(name):
    values = _parameters(name)
    for key, default in {**COMMON, **CONTRACT[name]}.items():
        assert key in values, f"{name} lacks {key}"
        assert values[key] == default, f"{name}: {key} = {values[key]!r}, contract says {default!r}"
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name} is committed with outputs"


def _run(name: str, out: Path, **parameters) -> str:
    path = out / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(path),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        **execution_options(),
        cwd=str(out),
    )
    nb = json.loads(path.read_text())
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )


@pytest.mark.timeout(240)
def test_prepare_contain_restore_lift_run_headless_in_order(sandbox, aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "v": {"S": "good"}})
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    app = aws.assume_role(f"arn:aws:iam::{aws.account_id}:role/{role}").dynamodb
    common = {
        "incident_id": "nb",
        "table_name": table,
        "region": sandbox.region,
        "runs_dir": str(tmp_path / "runs"),
    }
    names = {
        "app_role_name": role,
        "read_only_parameter": f"ro-{unique_name}",
        "deny_policy_name": f"deny-{unique_name}",
    }

    text = _run("01_prepare", tmp_path, **common, **names, apply=True)
    assert "enabled point-in-time recovery" in text and '"Sid": "LiveTable"' in text

    sandbox.advance(1)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "v": {"S": "BROKEN"}})

    text = _run("02_contain", tmp_path, **common, **names, verify_timeout_seconds=5)
    assert "verification OK" in text

    def put():
        return app.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "z"}})

    assert attempt(put) == "denied"

    text = _run("03_restore", tmp_path, **common, restore_time=t.isoformat(), poll_seconds=0.05)
    # the estimate shown before the restore: the live table's figures (DescribeTable, or a sample)
    assert estimate.estimate_restore(estimate.table_figures(aws.dynamodb, table)).line() in text
    state = json.loads((tmp_path / "runs" / "nb" / "incident.json").read_text())["state"]
    restored = state["restored_table_name"]
    assert aws.dynamodb.get_item(TableName=restored, Key={"pk": {"S": "t1"}, "sk": {"S": "a"}})["Item"][
        "v"
    ] == {"S": "good"}

    _run("06_lift", tmp_path, **common, delete_restored_table=True, verify_timeout_seconds=5)
    assert attempt(put) == "ok"
    data = json.loads((tmp_path / "runs" / "nb" / "incident.json").read_text())
    assert data["closed"] and data["summary"]["restored_table_deleted"]
    assert aws.ssm.get_parameter(Name=names["read_only_parameter"])["Parameter"]["Value"] == "none"
