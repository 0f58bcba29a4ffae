"""A patch stopped at any moment and run again applies each approved change once, with a full backup, on both
write paths (a transaction that landed before the journal lines were written is settled by reading again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recovery_helpers import patch
from recovery_helpers.items import from_json_safe, items_equal
from recovery_helpers.journal import iter_jsonl
from tests.unit.patch.test_patch import (
    assert_recovered,
    backup,
    enable_stream,
    journal,
    make_scenario,
    stream_writes,
)

CHILD = """
import sys
from recovery_helpers.context import open_context
from recovery_helpers.patch import apply_plan
ctx = open_context(sys.argv[1], sys.argv[2], "us-east-1", sys.argv[3], sys.argv[4])
apply_plan(ctx, dry_run=False, max_workers=2, max_write_rate=float(sys.argv[5]), write_mode=sys.argv[6],
           transact_batch_size=5, progress=False)
"""
MODES = ["single", "transact"]


def _patched_lines(path: Path) -> int:
    return sum(1 for line in iter_jsonl(path) if line.get("status") == "patched")


@pytest.mark.parametrize("write_mode", MODES)
def test_a_killed_patch_run_again_ends_correct_without_duplicate_writes(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    sc = make_scenario(aws, tmp_path, unique_name, n=90)
    sc.approve()
    approved = sc.changed_ids()
    enable_stream(sc)  # from here on, one stream record per write applied to the table, whatever carried it
    journal_file = sc.ctx.incident.path / patch.JOURNAL_FILE
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            "inc",
            sc.table,
            sandbox.endpoint_url,
            str(sc.runs_dir),
            "25",
            write_mode,
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ},
    )
    try:
        # wait for the child to be part-way through (bounded by the child finishing; no fixed sleep)
        while _patched_lines(journal_file) < 10 and child.poll() is None:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    done_by_child = _patched_lines(journal_file)
    assert 10 <= done_by_child < len(approved), "the child should have been stopped part-way"

    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert report.failed == 0 and report.conflicts == 0
    assert report.already_done + report.patched + report.ambiguous == len(approved)
    ambiguous = {line["key_id"]: line for line in journal(sc) if line["status"] == "ambiguous"}
    if write_mode == "transact":
        assert not ambiguous  # every transaction in flight was replayed with its token: DynamoDB told
    for k, line in ambiguous.items():  # single writes in flight at the kill: landed or not, reported
        found = from_json_safe(line["found"])
        assert items_equal(found, sc.get(k)) and items_equal(from_json_safe(line["before"]), sc.corrupted[k])
        assert items_equal(found, sc.corrupted[k]) or items_equal(found, sc.base.get(k))
    assert_recovered(sc, [k for k in approved if k not in ambiguous])
    # at most one write applied per approved change, across both processes, and none anywhere else
    applied = stream_writes(sc)
    assert set(applied) <= set(approved) and set(applied.values()) <= {1}
    assert set(approved) - set(applied) <= set(ambiguous)
    finals = [line for line in journal(sc) if line["status"] == "patched"]
    assert sorted(line["key_id"] for line in finals) == sorted(set(approved) - set(ambiguous))
    if write_mode == "transact":
        assert {line.get("via") for line in finals} <= {"TransactWriteItems", None}
    # the backup holds every touched item as it was before the write
    reads = [b for b in backup(sc) if b["source"] == "read"]
    assert {b["key_id"] for b in reads} == set(approved)
    for b in reads:
        assert (b["item"] is None) == (sc.corrupted[b["key_id"]] is None)
    verification = patch.verify(sc.ctx)
    assert verification.ambiguous == len(ambiguous) and verification.ok == (not ambiguous)


@pytest.mark.parametrize("write_mode", MODES)
def test_a_write_in_flight_is_replayed_or_reported_never_guessed(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    """A crash after the backup and the write but before the journal lines; then the item is left as the
    write left it, put back as it was by the app, or changed by the app. A transaction is replayed with its
    ClientRequestToken (DynamoDB says it ran: nothing is written again); a single write is reported as
    ambiguous with both versions. Nothing is written in either case."""
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    landed, set_back, overtaken = sc.updated[0], sc.deleted[0], sc.created[0]
    sc.ddb.delete_item(TableName=sc.table, Key=sc.key(set_back))  # the app deletes the item put back
    app_item = {**sc.corrupted[overtaken], "status": {"S": "app"}}  # the app re-creates the junk its way
    sc.ddb.put_item(TableName=sc.table, Item=app_item)
    journal_file = sc.ctx.incident.path / patch.JOURNAL_FILE
    kept = [json.dumps(line) for line in journal(sc) if line["key_id"] not in (landed, set_back, overtaken)]
    journal_file.write_text("\n".join(kept) + "\n" + '{"torn line')
    backups_before = len(backup(sc))
    enable_stream(sc)  # from here on, one record per write applied

    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert not stream_writes(sc), "a resume wrote over a key whose write was in flight"
    assert items_equal(sc.get(landed), sc.base[landed])
    assert sc.get(set_back) is None
    assert items_equal(sc.get(overtaken), app_item)
    assert len(backup(sc)) == backups_before  # nothing new was backed up: nothing was to be written
    statuses = {line["key_id"]: line for line in journal(sc) if line["status"] in patch.FINAL}
    if write_mode == "transact":
        assert (report.patched, report.ambiguous) == (3, 0)
        assert all("replayed" in statuses[k]["note"] for k in (landed, set_back, overtaken))
    else:
        assert (report.patched, report.ambiguous) == (0, 3) and not report.ok
        assert "ambiguous" in report.summary().lower()
        for k in (landed, set_back, overtaken):
            assert statuses[k]["status"] == "ambiguous" and "before" in statuses[k] and "found" in statuses[k]
        assert items_equal(from_json_safe(statuses[overtaken]["found"]), app_item)
        assert set(report.to_frame()["status"]) == {"ambiguous"}
        finished = [e for e in sc.ctx.incident.timeline if e["action"] == "patch finished"][-1]
        assert finished["result"] == "ambiguous" and finished["ambiguous"] == 3
        assert set(finished["ambiguous_keys"]) == {landed, set_back, overtaken}
