"""The postmortem's record of a demo-sized run, read as a postmortem author reads it: offline, without Jupyter."""

from __future__ import annotations

import csv
import json

import pytest

from recovery_helpers import demo
from recovery_helpers.items import KeySchema
from recovery_helpers.plan import iter_plan
from recovery_helpers.runner import run_steps
from tests.archive_support import STEP_PAGES, header_outcome, network_loads, notebook_text, pictures
from tests.integration.test_e2e import _admin


@pytest.fixture(scope="module")
def archived(sandbox, tmp_path_factory):
    """One full demo-sized run (25 orders per tenant) of all six steps: its run folder."""
    tmp = tmp_path_factory.mktemp("archive")
    admin = _admin(sandbox)
    incident = demo.stage(
        admin,
        tmp / "world",
        orders_per_tenant=25,
        names=demo.Names.for_prefix("arch"),
        clock=sandbox.clock.now,
    )
    params = demo.demo_parameters(
        incident, incident_id="arch", endpoint_url=sandbox.endpoint_url, runs_dir=str(tmp / "runs")
    )
    result = run_steps(params, log=None)
    assert result.ok, result.summary()
    return tmp / "runs" / "arch"


def test_no_archive_page_loads_anything_from_the_network(archived):
    loads = network_loads(archived)
    assert {f"{s}.html" for s in STEP_PAGES} | {"index.html", "diff.html"} <= set(loads)
    assert {page: found for page, found in loads.items() if found} == {}


def test_restore_diff_and_lift_carry_their_pictures_as_embedded_png(archived):
    for page in ("03_restore.html", "04_diff.html", "06_lift.html", "index.html"):
        assert pictures(archived / page) >= 1, page
    assert (archived / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_step_has_its_header_with_operator_times_and_outcome(archived):
    record = json.loads((archived / "incident.json").read_text())
    operators = {e["who"] for e in record["timeline"] if e["action"] == "step started"}
    assert len(operators) == 1 and next(iter(operators)).startswith("arn:aws:")
    for step in STEP_PAGES:
        page = (archived / f"{step}.html").read_text(encoding="utf-8")
        assert header_outcome(archived / f"{step}.html") == "OK", step
        assert next(iter(operators)) in page and "duration" in page and "parameters used" in page
        # the defaults cell and papermill's injected cell are left out: each value appears once, in the header
        assert "Parameters (papermill / `recovery run` replace this cell)" not in page, step
        assert "injected-parameters" not in page
    started = [e for e in record["timeline"] if e["action"] == "step started"]
    finished = [e for e in record["timeline"] if e["action"] == "step finished"]
    assert [e["step"] for e in started] == [e["step"] for e in finished] == [s[3:] for s in STEP_PAGES]
    diff_start = next(e for e in started if e["step"] == "diff")
    assert diff_start["parameters"]["approve"] is True and "mask_attributes" in diff_start["defaults"]


def test_the_full_diff_page_and_csv_hold_every_planned_key(archived):
    from recovery_helpers.incident import Incident

    incident = Incident("arch", archived.parent)
    meta = json.loads((archived / "plan.json").read_text())
    schema = KeySchema(**meta["key_schema"])
    page = (archived / "diff.html").read_text(encoding="utf-8")
    entries = list(iter_plan(incident))
    assert len(entries) == meta["total"] > 0
    assert page.count("<tr data-c=") == len(entries)
    for e in entries:
        plain = schema.key_to_plain(e.key)
        assert ", ".join(f"{n}={plain[n]}" for n in schema.names) in page
    with (archived / "diff.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["key_id"] for r in rows} == {e.key_id for e in entries}
    whole = [r for r in rows if r["attribute"] == "(whole item)"]
    assert len(whole) == meta["counts"]["deleted"] + meta["counts"]["created"]
    assert all(r["first_change"].endswith("Z") and len(r["first_change"]) == 24 for r in rows)  # milliseconds
    assert '{"S":' not in page and '{"N":' not in page  # values as stored, not DynamoDB JSON


def test_the_archived_steps_show_their_estimates_and_the_timeline_keeps_them(archived):
    record = json.loads((archived / "incident.json").read_text())
    estimates = {e["step"]: e for e in record["timeline"] if e["action"] == "estimate"}
    assert set(estimates) == {"restore", "patch"}, "the demo's log_file diff reads only the impacted keys"
    patch = estimates["patch"]
    planned = sum(1 for e in iter_plan_of(archived) if e.action != "none")
    # the demo sets no max_write_rate: the run's own shape (processes x workers) caps the estimate
    assert patch["items"] == planned and patch["capped_by"] == "max_processes/max_workers"
    for page, step in (("03_restore.html", "restore"), ("05_patch.html", "patch")):
        text = (archived / page).read_text(encoding="utf-8")
        assert f"What {step} will cost (estimate)" in text and "basis" in text, page
        assert f"{step}: items={estimates[step]['items']} bytes={estimates[step]['bytes']}" in text, page
    assert "only the impacted keys are read" in (archived / "04_diff.html").read_text(encoding="utf-8")
    assert "estimate" in (archived / "index.html").read_text(encoding="utf-8")


def iter_plan_of(run_dir):
    from recovery_helpers.incident import Incident

    return iter_plan(Incident(run_dir.name, run_dir.parent))


def test_the_index_page_links_every_step_and_shows_approvals_and_patch_results(archived):
    page = (archived / "index.html").read_text(encoding="utf-8")
    for step in STEP_PAGES:
        assert f"href='{step}.html'" in page
    assert page.count(">OK</b>") == len(STEP_PAGES)
    assert "approve=True" in page and "approved every proposed change" in page
    journal = [json.loads(x) for x in (archived / "journal.jsonl").read_text().splitlines() if x.strip()]
    assert f"patched {sum(1 for j in journal if j['status'] == 'patched')}," in page
    assert "href='diff.html'" in page


def test_every_timeline_entry_is_by_caller_arn_with_the_os_user_beside_it(archived):
    timeline = json.loads((archived / "incident.json").read_text())["timeline"]
    assert all(e["who"].startswith("arn:aws:") for e in timeline), {e["who"] for e in timeline}
    assert all(e.get("os_user") for e in timeline)


def test_a_good_demo_run_is_all_green_and_tidy(archived):
    prepare = notebook_text(archived / "01_prepare.ipynb")
    assert "READY" in prepare and "NOT READY" not in prepare
    policy = (archived / "01_prepare.html").read_text(encoding="utf-8")
    assert "<details><summary>recovery role policy" in policy
    for step in STEP_PAGES:
        text = notebook_text(archived / f"{step}.ipynb")
        assert "0%|" not in text and "it/s]" not in text, step  # no stale progress bar text
    assert "fetched " in notebook_text(archived / "04_diff.ipynb")
    lift = notebook_text(archived / "06_lift.ipynb")
    assert "incident closed: {" not in lift
    patch = (archived / "05_patch.html").read_text(encoding="utf-8")
    assert '{"S":' not in patch and "no conflicts, no failures" in patch
    assert (archived / "04_diff.html").stat().st_size < 500_000


def test_a_step_that_fails_half_way_is_archived_as_failed_with_its_error(sandbox, aws, unique_name, tmp_path):
    from recovery_helpers.archive.header import FINISHED, STARTED
    from tests.conftest import create_table

    table = create_table(aws.dynamodb, unique_name)
    params = {
        "incident_id": "half",
        "table_name": table,
        "endpoint_url": sandbox.endpoint_url,
        "runs_dir": str(tmp_path / "runs"),
        "restore_time": "2000-01-01T00:00:00+00:00",
    }
    result = run_steps(params, steps=["restore"], log=None)
    assert not result.ok
    run_dir = tmp_path / "runs" / "half"
    assert header_outcome(run_dir / "03_restore.html") == "FAILED"
    page = (run_dir / "03_restore.html").read_text(encoding="utf-8")
    assert "2000-01-01" in page and "error:" in page  # the header names the refusal
    timeline = json.loads((run_dir / "incident.json").read_text())["timeline"]
    assert [e["action"] for e in timeline if e["action"] in (STARTED, FINISHED)] == [STARTED]
    ran = [e for e in timeline if e["action"] == "run step restore"]
    assert ran[-1]["result"] == "failed" and ran[-1]["who"].startswith("arn:aws:")
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert ">FAILED</b>" in index and "href='03_restore.html'" in index
    assert network_loads(run_dir) == {"03_restore.html": [], "index.html": []}


def test_a_notebook_run_by_hand_gets_the_same_header(sandbox, aws, unique_name, tmp_path):
    """No papermill: the parameters cell edited as an engineer would, executed cell by cell (nbclient)."""
    import nbformat
    from nbclient import NotebookClient

    from recovery_helpers.archive import export_step_html
    from recovery_helpers.kernel_sockets import execution_options
    from recovery_helpers.runner import NOTEBOOKS, default_notebooks_dir
    from tests.conftest import create_table

    table = create_table(aws.dynamodb, unique_name)
    nb = nbformat.read(str(default_notebooks_dir() / NOTEBOOKS["prepare"]), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = (
        cell.source.replace("table_name = None", f"table_name = {table!r}")
        .replace('incident_id = "demo"', 'incident_id = "byhand"')
        .replace('runs_dir = "runs"', f"runs_dir = {str(tmp_path / 'runs')!r}")
        .replace("endpoint_url = None", f"endpoint_url = {sandbox.endpoint_url!r}")
    )
    resources = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, kernel_name="python3", resources=resources, **execution_options()).execute()
    path = tmp_path / "runs" / "byhand" / "01_prepare.ipynb"
    nbformat.write(nb, str(path))
    html = export_step_html(path)
    assert header_outcome(html) == "OK"
    page = html.read_text(encoding="utf-8")
    started = next(
        e
        for e in json.loads((path.parent / "incident.json").read_text())["timeline"]
        if e["action"] == "step started"
    )
    assert started["who"] in page and started["parameters"]["table_name"] == table
    assert pictures(html) == 0 and network_loads(path.parent)["01_prepare.html"] == []
