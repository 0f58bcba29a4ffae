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
from tests.test_e2e import _admin


@pytest.fixture(scope="module")
def archived(sandbox, tmp_path_factory):
    """One full demo-sized run (25 orders per tenant) of all six steps: its run folder."""
    tmp = tmp_path_factory.mktemp("archive")
    admin = _admin(sandbox)
    incident = demo.stage(admin, tmp / "world", orders_per_tenant=25, names=demo.Names.for_prefix("arch"),
                          clock=sandbox.clock.now)
    params = demo.demo_parameters(incident, incident_id="arch", endpoint_url=sandbox.endpoint_url,
                                  runs_dir=str(tmp / "runs"))
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
