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
from recovery_helpers.items import items_equal
from recovery_helpers.journal import iter_jsonl
from tests.unit.patch.test_patch import (
    assert_recovered,
    backup,
    enable_stream,
    journal,
    make_scenario,
    stream_writes,
    writes,
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
    assert report.already_done + report.patched == len(approved)
    assert_recovered(sc, approved)
    # exactly one write applied per approved change, across both processes, and none anywhere else
    applied = stream_writes(sc)
    assert applied == {k: 1 for k in approved}
    finals = [line for line in journal(sc) if line["status"] == "patched"]
    assert sorted(line["key_id"] for line in finals) == sorted(approved)
    if write_mode == "transact":
        assert {line.get("via") for line in finals} <= {"TransactWriteItems", None}
    # the backup holds every touched item as it was before the write, once
    reads = [b for b in backup(sc) if b["source"] == "read"]
    assert sorted(b["key_id"] for b in reads) == sorted(approved)
    for b in reads:
        assert (b["item"] is None) == (sc.corrupted[b["key_id"]] is None)
    assert patch.verify(sc.ctx).ok


@pytest.mark.parametrize("write_mode", MODES)
def test_backup_without_outcome_is_settled_by_reading_again(sandbox, aws, tmp_path, unique_name, write_mode):
    """A crash after the backup (and maybe the write or the transaction) but before the journal lines: landed,
    never sent, or overtaken by the app."""
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    landed, never_sent, overtaken = sc.updated[0], sc.deleted[0], sc.created[0]
    # never_sent: the live item is still the reviewed one (the write did not happen before the crash)
    sc.ddb.delete_item(TableName=sc.table, Key=sc.key(never_sent))
    # overtaken: the app wrote something else in between
    app_item = {**sc.corrupted[overtaken], "status": {"S": "app"}}
    sc.ddb.put_item(TableName=sc.table, Item=app_item)
    journal_file = sc.ctx.incident.path / patch.JOURNAL_FILE
    kept = [json.dumps(line) for line in journal(sc) if line["key_id"] not in (landed, never_sent, overtaken)]
    journal_file.write_text("\n".join(kept) + "\n" + '{"torn line')
    backups_before = len(backup(sc))

    calls = sandbox.calls
    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert writes(sandbox, calls) == 1  # only never_sent is written
    assert (report.patched, report.conflicts) == (2, 1)
    assert items_equal(sc.get(landed), sc.base[landed])
    assert items_equal(sc.get(never_sent), sc.base[never_sent])
    assert items_equal(sc.get(overtaken), app_item)
    assert len(backup(sc)) == backups_before  # the backups on disk were used, not taken again
    statuses = {line["key_id"]: line["status"] for line in journal(sc)}
    assert statuses[overtaken] == "conflict" and statuses[landed] == statuses[never_sent] == "patched"
