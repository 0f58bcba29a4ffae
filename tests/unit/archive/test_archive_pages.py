"""Archive pieces on their own: the full diff page at 10,000 items, figures, tidy tables, headless progress."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pandas as pd

from recovery_helpers.archive import figures
from recovery_helpers.archive.diff_page import write_diff_files
from recovery_helpers.archive.header import derive_outcome, header_facts, header_html
from recovery_helpers.archive.tables import tidy_html
from recovery_helpers.archive.values import item_text, value_text
from recovery_helpers.incident import Incident
from recovery_helpers.items import KeySchema, item_digest
from recovery_helpers.plan import ACTION_OF, PlanEntry, write_plan
from recovery_helpers.progress import progress_bar

T0 = dt.datetime(2025, 1, 31, 10, 0, tzinfo=dt.UTC)


def _plan(tmp_path, n: int) -> Incident:
    """A plan of n items keyed by a number hash and a binary range key (not the demo's shape)."""
    incident = Incident("big", tmp_path)
    schema = KeySchema("account", "N", "blob", "B")
    classes = ["changed", "deleted", "created", "unchanged"]

    def entries():
        for i in range(n):
            key = {"account": {"N": str(10**30 + i)}, "blob": {"B": i.to_bytes(4, "big")}}
            cls = classes[i % 4]
            old = {**key, "amount": {"N": "12.5"}, "tags": {"SS": ["a", "b"]}, "note": {"S": "x" * 40}}
            new = {**old, "amount": {"N": "1250"}} if cls == "changed" else dict(old)
            restored, live = (
                (None, new) if cls == "created" else (old, None) if cls == "deleted" else (old, new)
            )
            yield PlanEntry(
                key_id=schema.key_id(key),
                key=key,
                classification=cls,
                action=ACTION_OF[cls],
                restored=restored,
                live=live,
                restored_digest=item_digest(restored),
                live_digest=item_digest(live),
                tenant=None,
                sources=["keys_file"],
                first_change=(T0 + dt.timedelta(milliseconds=i)).isoformat(),
            )

    write_plan(incident, entries(), {"key_schema": schema.__dict__, "table_name": "t", "window": {}})
    return incident


def test_a_10000_item_plan_gives_a_bounded_diff_page_with_every_key(tmp_path):
    incident = _plan(tmp_path, 10_000)
    html_path, csv_path = write_diff_files(incident)
    page = html_path.read_text(encoding="utf-8")
    assert page.count("<tr data-c=") == 10_000
    assert page.count("account=1000000000000000000000000000000, blob=") == 1
    assert f"account={10**30 + 9999}, blob=" in page
    assert html_path.stat().st_size < 8_000_000  # ~5 MB measured: 10k rows with their differences folded in
    assert "<script src" not in page and "http" not in page.split("<script>")[1]
    assert "amount</td><td class=o>12.5</td><td class=n>1250</td>" in page  # numbers as DynamoDB stores them
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 10_000  # one row per changed attribute; one whole-item row otherwise


def test_values_read_as_stored_without_type_wrappers():
    b = base64.b64encode(b"\x00\x01").decode()
    assert value_text({"N": "12.50"}) == "12.50"
    assert value_text({"S": "12"}) == "12" and value_text({"S": "12"}, nested=True) == '"12"'
    assert value_text({"B": b"\x00\x01"}) == f"base64:{b}"
    assert value_text({"NS": ["10", "9"]}) == "[9, 10]"
    assert item_text({"m": {"M": {"a": {"L": [{"N": "1"}, {"NULL": True}]}}}}) == '{m: {"a": [1, null]}}'


def test_tidy_tables_have_no_index_check_marks_full_text_and_a_sentence_when_empty():
    long = "arn:aws:iam::123456789012:role/" + "x" * 120
    html = tidy_html(
        pd.DataFrame(
            [{"check": "pitr", "ok": True, "detail": long}, {"check": "role", "ok": False, "detail": ""}]
        )
    )
    assert "✓" in html and "✗" in html and long in html and "..." not in html
    assert "<th" in html and ">0<" not in html  # no index column
    assert (
        tidy_html(pd.DataFrame(columns=["key", "status"]), empty="no conflicts")
        == "<p><i>no conflicts</i></p>"
    )


def _incident_data() -> dict:
    t = lambda s: (T0 + dt.timedelta(seconds=s)).isoformat().replace("+00:00", "Z")
    arn = "arn:aws:iam::1:user/oncall"
    return {
        "incident_id": "inc-1",
        "state": {"restore_time": t(-60), "contained_at": t(100), "lifted_at": t(900)},
        "timeline": [
            {"time": t(100), "who": arn, "action": "iam:AttachRolePolicy", "result": "ok"},
            {"time": t(200), "who": arn, "action": "dynamodb:RestoreTableToPointInTime", "result": "ok"},
            {"time": t(400), "who": arn, "action": "restore complete", "result": "ok"},
            {
                "time": t(450),
                "who": arn,
                "action": "build plan",
                "result": "ok",
                "window": {"start": t(0), "end": t(60)},
                "counts": {"changed": 3},
            },
            {"time": t(500), "who": arn, "action": "approve plan", "result": "ok"},
            {"time": t(600), "who": arn, "action": "patch started", "result": "ok"},
            {"time": t(700), "who": arn, "action": "patch finished", "result": "ok", "conflicts": 0},
            {"time": t(900), "who": arn, "action": "close incident", "result": "ok"},
        ],
    }


def test_the_incident_timeline_figure_draws_every_phase():
    data = _incident_data()
    found = figures.timeline_spans(data)
    spans, points = found["spans"], found["points"]
    assert spans["bad deploy"] == [(T0, T0 + dt.timedelta(seconds=60))]
    assert spans["read-only"] == [(T0 + dt.timedelta(seconds=100), T0 + dt.timedelta(seconds=900))]
    assert spans["restore"] == [(T0 + dt.timedelta(seconds=200), T0 + dt.timedelta(seconds=400))]
    assert spans["patch"] == [(T0 + dt.timedelta(seconds=600), T0 + dt.timedelta(seconds=700))]
    assert [p[1] for p in points["approvals"]] == ["approve plan"] and points["plan"]
    fig = figures.incident_timeline_figure(data)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(reversed(figures.LANES))
    assert "inc-1" in ax.get_title()
    assert figures.png_bytes(fig)[:4] == b"\x89PNG"


def test_the_writes_figure_marks_the_first_corrupting_write_and_the_restore_time():
    writes = [(T0 + dt.timedelta(seconds=s), f"tenant-{s % 3}") for s in range(0, 3600, 7)]
    fig = figures.writes_figure(
        writes,
        window_start=T0 + dt.timedelta(minutes=10),
        window_end=T0 + dt.timedelta(minutes=40),
        first_corrupting=T0 + dt.timedelta(minutes=10, seconds=3),
        restore_time=T0 + dt.timedelta(minutes=9),
    )
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {
        "first corrupting write",
        "restore time",
        "incident window",
        "tenant-0",
        "tenant-1",
        "tenant-2",
    } <= set(labels)
    assert ax.get_ylabel() == "writes per minute"  # an hour of incident: one bin per minute
    drawn = sum(sum(line.get_ydata()) for line in ax.get_lines() if line.get_label().startswith("tenant-"))
    assert drawn == sum(
        1 for w, _ in writes if T0 + dt.timedelta(minutes=-5) <= w <= T0 + dt.timedelta(minutes=55)
    )


def test_the_restore_window_figure_puts_the_restore_time_inside_the_pitr_window():
    fig = figures.restore_window_figure(
        T0,
        T0 - dt.timedelta(days=35),
        T0 + dt.timedelta(hours=1),
        incident_start=T0 + dt.timedelta(minutes=1),
    )
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {"PITR window (restorable)", "restore time", "incident start"} <= set(labels)
    assert "2025-01-31 10:00:00" in ax.get_title()


def test_the_header_says_failed_for_a_step_that_stopped_half_way():
    data = {
        "incident_id": "i",
        "timeline": [
            {
                "time": "2025-01-31T10:00:00.000Z",
                "who": "arn:aws:sts::1:assumed-role/r/me",
                "os_user": "me",
                "action": "step started",
                "step": "restore",
                "run_id": "restore-1",
                "parameters": {"source": "pitr"},
                "defaults": {"poll_seconds": 15},
            }
        ],
    }
    facts = header_facts(
        data,
        "restore-1",
        failed="InputError: restore_time is after incident_start",
        ended="2025-01-31T10:00:02.500000+00:00",
    )
    assert facts["outcome"] == "FAILED" and facts["seconds"] == 2.5
    page = header_html(facts)
    assert "FAILED" in page and "arn:aws:sts::1:assumed-role/r/me" in page and "restore_time is after" in page
    assert "1 parameters left at their defaults" in page and "&quot;pitr&quot;" in page


def test_outcomes_come_from_what_the_step_recorded():
    start = {"action": "step started", "run_id": "r"}
    assert derive_outcome([start, {"action": "patch finished", "conflicts": 2}], "r") == "CONFLICTS"
    assert derive_outcome([start, {"action": "build plan", "counts": {"changed": 0}}], "r") == "NOTHING TO DO"
    assert derive_outcome([start, {"action": "build plan", "counts": {"created": 1}}], "r") == "OK"


def test_headless_progress_prints_one_final_line(monkeypatch, capsys):
    monkeypatch.setenv("RECOVERY_HEADLESS", "1")
    bar = progress_bar(total=120, desc="fetching items", unit="key", done="fetched {n}/{total} items")
    bar.update(100)
    bar.update(20)
    bar.close()
    out = capsys.readouterr().out
    assert out.startswith("fetched 120/120 items in ") and out.rstrip().endswith(" s") and "%|" not in out
    assert json.dumps(out)  # one plain line, nothing else
    assert out.count("\n") == 1


def test_the_diff_page_search_finds_items_beyond_the_first_rows_shown(tmp_path):
    """In Chromium with the network blocked: 500 rows laid out at first, the search box finds any of the rest."""
    import shutil
    from pathlib import Path

    import pytest

    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("no chromium")
    incident = _plan(tmp_path, 1_200)
    page_path, _ = write_diff_files(incident)
    blocked = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith("file:")
                else (blocked.append(r.request.url), r.abort())
            ),
        )
        page.goto(page_path.as_uri())
        visible = (
            "Array.from(document.querySelectorAll('#items > tbody > tr')).filter(r => r.offsetParent).length"
        )
        assert page.evaluate(visible) == 500
        assert "1200 of 1200 items" in page.inner_text("#n")
        page.fill("#q", f"account={10**30 + 1111},")
        page.wait_for_function(f"{visible} === 1")
        assert page.inner_text("#n").startswith("1 of 1200")
        page.fill("#q", "")
        page.select_option("#c", "created")
        page.wait_for_function(f"{visible} === 300")
        browser.close()
    assert blocked == []


def test_conflict_rows_show_plain_values_not_dynamodb_json(sandbox, aws, tmp_path, unique_name):
    from recovery_helpers import patch
    from tests.unit.patch.test_patch import make_scenario

    sc = make_scenario(aws, tmp_path, unique_name)
    sc.approve()
    edited = sc.updated[1]
    sc.ddb.put_item(
        TableName=sc.table, Item={**sc.corrupted[edited], "status": {"S": "edited by a customer"}}
    )
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    frame = report.to_frame()
    assert report.conflicts == 1 and len(frame) == 1
    found, reviewed = frame["found"].iloc[0], frame["reviewed"].iloc[0]
    assert 'status: "edited by a customer"' in found and 'status: "corrupted"' in reviewed
    assert '{"S":' not in found + reviewed
    assert tidy_html(frame).count("<tr>") == 2  # header + the one conflict, no index column
