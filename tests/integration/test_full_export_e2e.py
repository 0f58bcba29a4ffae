"""impacted_source="full_export" end to end: the demo incident recovered from two FULL exports, on each engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recovery_helpers import demo, estimate
from recovery_helpers.runner import run_steps
from tests.integration.test_e2e import _stage
from tests.spark_support import spark_missing


def _full_export_run(sandbox, tmp_path: Path, prefix: str, engine: str):
    admin, incident, params = _stage(sandbox, tmp_path, prefix)
    bucket = f"{prefix}-exports"
    admin.s3.create_bucket(Bucket=bucket)
    params = {**params, "impacted_source": "full_export", "export_bucket": bucket, "compare_engine": engine}
    params.pop("log_file")
    assert not demo.check(admin, incident).ok
    result = run_steps(params, ["prepare", "contain", "diff"], log=None)
    assert result.ok, result.summary()
    run_dir = tmp_path / "runs" / prefix
    # before the exports, 04_diff showed their cost from the live table (unchanged by the diff since)
    figures = estimate.table_figures(admin.dynamodb, params["table_name"])
    assert estimate.estimate_full_export_diff(figures).line() in _outputs(run_dir / "04_diff.ipynb")
    result = run_steps(params, ["patch", "lift"], log=None)
    assert result.ok, result.summary()
    outcome = demo.check(admin, incident)
    assert outcome.ok, outcome.lines()
    meta = json.loads((run_dir / "plan.json").read_text())
    assert meta["sources"] == ["full_export"] and meta["restored_table_name"] is None
    truth = {json.loads(x)["key_id"] for x in Path(incident.ground_truth_file).read_text().splitlines()}
    journal = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines() if x.strip()]
    assert {j["key_id"] for j in journal if j["status"] == "patched"} == truth
    timeline = json.loads((run_dir / "incident.json").read_text())["timeline"]
    assert [e["action"] for e in timeline].count("start full export") == 2
    (patch_estimate,) = [e for e in timeline if e["action"] == "estimate" and e["step"] == "patch"]
    # the demo sets no max_write_rate: the run's own shape (processes x workers) caps the estimate
    assert (
        patch_estimate["items"] == len(truth) and patch_estimate["capped_by"] == "max_processes/max_workers"
    )
    assert f"patch: items={len(truth)} " in _outputs(run_dir / "05_patch.ipynb")


def _outputs(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in cells
        for o in c.get("outputs", [])
    )


def test_demo_incident_recovered_end_to_end_with_duckdb(sandbox, tmp_path):
    _full_export_run(sandbox, tmp_path, "fexpduck", "duckdb")


@pytest.mark.spark
@pytest.mark.timeout(900)  # a JVM start on a busy 2-core machine took 3 minutes alone
def test_demo_incident_recovered_end_to_end_with_spark(sandbox, tmp_path):
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    _full_export_run(sandbox, tmp_path, "fexpspark", "spark")
