"""notebooks/04_diff.ipynb executed headless with papermill, as `recovery run` does."""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest

from recovery_helpers.kernel_sockets import execution_options
from tests.diff_support import END, START, twin_tables, write_lines

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_diff.ipynb"


def outputs(path: Path) -> str:
    """Printed text and the plain-text form of displayed objects (widgets show as e.g. ``VBox(...)``)."""
    nb = json.loads(path.read_text())
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )


@pytest.mark.timeout(180)
def test_notebook_builds_the_plan_then_approves_it_with_the_printed_digest(
    sandbox, aws, unique_name, tmp_path, monkeypatch
):
    live, restored = twin_tables(
        aws,
        unique_name,
        restored=[{"pk": "p", "sk": s, "v": 1} for s in "ab"],
        live=[{"pk": "p", "sk": "a", "v": 2}],
    )
    runs = tmp_path / "runs"
    (runs / "nb").mkdir(parents=True)
    (runs / "nb" / "incident.json").write_text(
        json.dumps(
            {
                "incident_id": "nb",
                "opened": "2024-05-01T12:00:00Z",
                "closed": None,
                "timeline": [],
                "state": {"table_name": live, "region": sandbox.region, "restored_table_name": restored},
            }
        )
    )
    log = write_lines(
        tmp_path / "changes.jsonl",
        [
            {
                "operation": "itemChange",
                "timestamp": "2024-05-01T10:30:00Z",
                "ids": {"pk": "p", "sk": s},
                "action": a,
            }
            for s, a in (("a", "update"), ("b", "delete"))
        ],
    )
    params = {
        "incident_id": "nb",
        "table_name": live,
        "region": sandbox.region,
        "runs_dir": str(runs),
        "log_file": log,
        "incident_start": START,
        "incident_end": END,
        "mask_attributes": ["v"],
    }

    first = tmp_path / "review.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(first),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        **execution_options(),
    )
    plan = json.loads((runs / "nb" / "plan.json").read_text())
    assert plan["counts"] == {"changed": 1, "deleted": 1, "created": 0, "unchanged": 0}
    text = outputs(first)
    assert f"plan digest: {plan['digest']}" in text and "Approved now: 0 of 2" in text
    assert f'approval_token="{plan["digest"]}"' in text
    assert "2 proposed changes:</b>" in text, "a person running the notebook gets the review panel"

    monkeypatch.setenv("RECOVERY_HEADLESS", "1")  # what headless runners set: no dead buttons in the record
    headless = tmp_path / "headless.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(headless),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        **execution_options(),
    )
    assert "proposed changes:</b>" not in outputs(headless) and "approved 0 of 2" in outputs(headless)
    assert f"plan digest: {plan['digest']}" in outputs(headless)

    second = tmp_path / "approve.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(second),
        parameters={**params, "approval_token": plan["digest"]},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        **execution_options(),
    )
    approvals = json.loads((runs / "nb" / "approvals.json").read_text())
    assert (approvals["digest"], approvals["default"], approvals["method"]) == (
        plan["digest"],
        True,
        "approval_token",
    )
    assert "approved 2 of 2" in outputs(second)
