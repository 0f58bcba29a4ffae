"""The interactive path in a real browser (issue 13): stage, open, JupyterLab; review, patch, lift, archive.

Stage with `recovery demo --stage-only`, run 01-03 headless, `recovery open diff`, Run All in JupyterLab, click
a group action, Reject on one item and Approve on another, check approvals.json; approve the rest, open 05_patch
with dry_run false, run it, check the table against the demo's ground truth; open 06_lift, run it, and check
the archive holds every step's notebook and HTML copy. Screenshots of each step go to the printed folder.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from recovery_helpers import demo
from recovery_helpers.aws import Aws
from tests.browser.support import (
    block_the_internet,
    jupyter_lab,
    recovery,
    run_all,
    save,
    staged,
    wait_for,
)

STEPS = ("01_prepare", "02_contain", "03_restore", "04_diff", "05_patch", "06_lift")


def _approvals(run_dir: Path) -> dict:
    path = run_dir / "approvals.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _key_ids(run_dir: Path) -> dict[str, str]:
    """key text as the panel shows it (``pk=tenant-2, sk=order#00007``) -> key_id."""
    out = {}
    for line in (run_dir / "plan.jsonl").read_text().splitlines():
        entry = json.loads(line)
        out[", ".join(f"{k}={v['S']}" for k, v in entry["key"].items())] = entry["key_id"]
    return out


@pytest.mark.timeout(900)
def test_an_engineer_rehearses_the_demo_incident_in_jupyterlab(chromium, screenshots, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    workdir = tmp_path / "work"
    workdir.mkdir()
    started = time.monotonic()

    def phase(name: str) -> None:
        print(f"  [browser test] {name}: {time.monotonic() - started:.0f} s", file=sys.__stderr__)

    with staged(workdir, "web", orders_per_tenant=20) as rh:
        run_dir = rh.run_dir
        phase("staged")
        recovery(["run", "-f", str(rh.params), "--steps", "prepare,contain,restore"], workdir, rh.env)
        phase("01-03 headless")
        opened = recovery(["open", "diff", "-f", str(rh.params)], workdir, rh.env)
        assert opened.strip().splitlines()[-1] == f"notebook: {run_dir / '04_diff.ipynb'}"

        with jupyter_lab(workdir, rh.env, tmp_path / "lab") as lab, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            blocked: list[str] = []
            block_the_internet(context, blocked)
            page = context.new_page()
            page.set_default_timeout(60_000)

            def shot(name: str) -> None:
                page.screenshot(path=str(screenshots / f"{name}.png"), full_page=False)

            # 04_diff: the review panel
            phase("jupyter lab up")
            page.goto(lab.notebook_url("runs/web/04_diff.ipynb"))
            run_all(page, shot, "04-diff-ran")
            phase("04 ran")
            panel = page.locator(".rv-panel")
            panel.scroll_into_view_if_needed()
            expect(panel.locator(".rv-counts")).to_contain_text("undecided")
            shot("04-diff-panel")

            changed = panel.get_by_role("button", name="Approve all changed", exact=True)
            changed.click()
            group = changed.locator("xpath=..")
            expect(group).to_contain_text("all approved")
            wait_for(lambda: _approvals(run_dir).get("classes") == {"changed": True}, "the group decision")

            rows = panel.locator(".rv-row")
            changed_row = rows.filter(has_text="changed →").first
            deleted_row = rows.filter(has_text="deleted →").first
            changed_key = changed_row.locator("code").first.inner_text()
            deleted_key = deleted_row.locator("code").first.inner_text()
            changed_row.get_by_role("button", name="Reject", exact=True).click()
            expect(changed_row).to_contain_text("REJECTED")
            deleted_row.get_by_role("button", name="Approve", exact=True).click()
            expect(deleted_row).to_contain_text("APPROVED")
            rows.filter(visible=True).last.scroll_into_view_if_needed()
            expect(panel.locator(".rv-counts")).to_be_in_viewport()  # pinned while the rows scroll
            expect(panel.locator(".rv-counts")).to_contain_text("1 rejected")
            shot("04-diff-scrolled-counts-pinned")
            deleted_row.get_by_role("button", name="diff", exact=True).click()
            expect(deleted_row.locator(".rv-diff")).to_be_visible()
            ids = _key_ids(run_dir)
            want = {ids[changed_key]: False, ids[deleted_key]: True}
            wait_for(lambda: _approvals(run_dir).get("decisions") == want, "the two item decisions")
            saved = _approvals(run_dir)
            assert saved["classes"] == {"changed": True} and saved["method"] == "widgets"
            panel.locator(".rv-counts").scroll_into_view_if_needed()
            shot("04-diff-decided")

            for cls in ("changed", "deleted", "created"):
                panel.get_by_role("button", name=f"Approve all {cls}", exact=True).click()
            expect(panel.locator(".rv-counts")).to_contain_text("0 undecided")
            expect(panel.locator(".rv-counts")).to_contain_text("0 rejected")
            expect(page.get_by_text("Approved now:").last).to_be_visible()
            shot("04-diff-all-approved")
            save(page, run_dir / "04_diff.ipynb")
            phase("04 reviewed and saved")

            # 05_patch with dry_run false
            recovery(["open", "patch", "-f", str(rh.params), "-p", "dry_run", "false"], workdir, rh.env)
            page.goto(lab.notebook_url("runs/web/05_patch.ipynb"))
            run_all(page, shot, "05-patch-ran")
            save(page, run_dir / "05_patch.ipynb")
            admin = Aws(
                region="us-east-1", endpoint_url=rh.exports["AWS_ENDPOINT_URL"], session=_session(rh.exports)
            )
            facts = demo.DemoIncident.load(run_dir / "demo" / "incident-facts.json")
            outcome = demo.check(admin, facts)
            assert outcome.ok, outcome.lines()
            phase("05 ran, table matches the ground truth")

            # 06_lift, then the archive
            lifted = recovery(["open", "lift", "-f", str(rh.params)], workdir, rh.env)
            assert f"html copy of a notebook run by hand: {run_dir / '05_patch.html'}" in lifted
            page.goto(lab.notebook_url("runs/web/06_lift.ipynb"))
            run_all(page, shot, "06-lift-ran")
            save(page, run_dir / "06_lift.ipynb")
            recovery(["archive", "-f", str(rh.params)], workdir, rh.env)
            phase("06 ran, archived")
            browser.close()

        for step in STEPS:
            notebook, html = run_dir / f"{step}.ipynb", run_dir / f"{step}.html"
            assert notebook.is_file() and html.is_file(), f"the archive lacks {step}"
            assert html.stat().st_mtime >= notebook.stat().st_mtime, f"{step}.html is older than its notebook"
        assert json.loads((run_dir / "incident.json").read_text())["closed"], "06_lift closed the incident"
        assert not any("127.0.0.1" in u for u in blocked), blocked


def _session(exports: dict[str, str]):
    import boto3

    return boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        region_name=exports["AWS_DEFAULT_REGION"],
    )
