"""notebooks/05_patch.ipynb executed headless with papermill against the sandbox: dry run, patch, undo."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from recovery_helpers import estimate
from recovery_helpers.items import items_equal
from recovery_helpers.kernel_sockets import execution_options
from recovery_helpers.plan import iter_plan
from tests.unit.patch.test_patch import assert_recovered, make_scenario, writes

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_patch.ipynb"


def _run(sc, tmp_path: Path, name: str, **params) -> str:
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        **execution_options(),
        cwd=str(NOTEBOOK.parents[1]),
        parameters={
            "incident_id": "inc",
            "table_name": sc.table,
            "region": sc.aws.region,
            "endpoint_url": sc.aws.endpoint_url,
            "runs_dir": str(sc.runs_dir),
            **params,
        },
    )
    nb = nbformat.read(out, as_version=4)
    return "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def test_notebook_is_committed_clean_with_one_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "dry_run = True" in tagged[0].source and "undo = False" in tagged[0].source
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )


def test_dry_run_then_patch_then_undo(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    before = sc.snapshot()
    calls = sandbox.calls
    text = _run(sc, tmp_path, "dry", max_processes=2)  # a dry run writes nothing, in any shape
    assert "DRY RUN" in text and writes(sandbox, calls) == 0
    sizes = [
        max(estimate.item_size(e.restored or {}), estimate.item_size(e.live or {}))
        for e in iter_plan(sc.ctx.incident)
        if e.action != "none"
    ]
    # shown before the patch cell, in a dry run too: write_mode="auto" without max_write_rate is transactional
    expected = estimate.estimate_patch(
        len(sc.changed_ids()), sum(sizes) / len(sizes), transactional=True, max_processes=2
    )
    assert expected.line() in text and "basis: transactional writes cost 2 write units per KB" in text
    assert "basis: 2 process(es) x 500 writes/s with max_workers=8" in text  # the run's shape reaches it

    text = _run(sc, tmp_path, "patch", dry_run=False)
    assert f"patched: {len(sc.changed_ids())}" in text and "OK" in text
    assert_recovered(sc, sc.changed_ids())

    text = _run(sc, tmp_path, "undo", undo=True)
    assert f"put back: {len(sc.changed_ids())}" in text
    after = sc.snapshot()
    assert after.keys() == before.keys() and all(items_equal(after[k], before[k]) for k in after)


def test_undo_and_patch_together_are_refused(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve()
    with pytest.raises(pm.PapermillExecutionError, match="choose one"):
        _run(sc, tmp_path, "both", undo=True, dry_run=False)


def test_patch_from_two_processes_started_by_the_kernel(sandbox, aws, tmp_path, unique_name):
    # the Jupyter kernel starts the worker processes ("spawn"): one merged report, one shard per segment
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    text = _run(sc, tmp_path, "processes", dry_run=False, max_processes=2)
    assert f"patched: {len(sc.changed_ids())}" in text and "OK" in text
    assert (
        "whole items, 2 processes, one segment each, files in patch-shards/)" in text
    )  # the report says how
    assert_recovered(sc, sc.changed_ids())
    shards = sc.ctx.incident.path / "patch-shards"
    assert sorted(p.name for p in shards.iterdir()) == ["segment-0-of-2", "segment-1-of-2"]


def test_the_notebook_lists_ambiguous_keys_and_applies_the_decisions(sandbox, aws, tmp_path, unique_name):
    from tests.integration.test_patch_ambiguous import _crash_with_three_in_flight

    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    landed, set_back, overtaken, _ = _crash_with_three_in_flight(sc)
    with pytest.raises(pm.PapermillExecutionError, match="AMBIGUOUS: 3 keys") as failed:
        _run(sc, tmp_path, "undecided", dry_run=False)
    assert failed.value.source.startswith("decided = patch.decide_ambiguous")  # the step fails in that cell
    shown = nbformat.read(tmp_path / "undecided.ipynb", as_version=4).cells
    listing = "".join(o.get("text", "") for c in shown if c.cell_type == "code" for o in c.get("outputs", []))
    assert "0 ambiguous keys decided now; 3 still to decide" in listing
    decisions = {landed: "keep", set_back: "write", overtaken: "keep"}
    text = _run(sc, tmp_path, "decided", resolve_ambiguous=decisions, resolve_reason="checked with the app")
    assert "3 ambiguous keys decided now; 0 still to decide" in text and "OK" in text
    assert items_equal(sc.get(set_back), sc.base[set_back])
