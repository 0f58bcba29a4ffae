"""A patch split across processes (max_processes) or machines (segments): one shard of backup and journal per
segment, one merged report, resumable after a worker is killed, verified and undone over every shard, and a run
folder that mixes layouts refused before anything is written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recovery_helpers import patch
from recovery_helpers import plan as planlib
from recovery_helpers.context import open_context
from recovery_helpers.errors import InputError, RecoveryError
from recovery_helpers.items import from_json_safe, items_equal
from recovery_helpers.journal import iter_jsonl
from recovery_helpers.lift import journal_counts
from recovery_helpers.patch.shards import patch_files, shard_dir
from tests.unit.patch.test_patch import (
    assert_recovered,
    enable_stream,
    make_scenario,
    stream_writes,
    writes,
)

COUNTS = ("approved", "not_approved", "no_change", "to_do", "patched", "unchanged", "conflicts", "failed")


def _shard_lines(run_dir: Path, seg: tuple[int, int]) -> tuple[list[dict], list[dict]]:
    journal, backup = patch_files(run_dir, seg)
    return list(iter_jsonl(journal)), list(iter_jsonl(backup))


def test_two_processes_patch_like_one_with_a_backup_per_shard_then_verify_and_undo(
    sandbox, aws, tmp_path, unique_name
):
    one = make_scenario(aws, tmp_path / "one", f"{unique_name}-1", n=120)
    two = make_scenario(aws, tmp_path / "two", f"{unique_name}-2", n=120)
    one.approve()
    two.approve()
    single = patch.apply_plan(one.ctx, dry_run=False, progress=False)
    split = patch.apply_plan(two.ctx, dry_run=False, progress=False, max_processes=2, max_write_rate=400)
    assert split.ok, split.summary()
    assert {c: getattr(split, c) for c in COUNTS} == {c: getattr(single, c) for c in COUNTS}
    assert split.patched == len(two.changed_ids())
    assert_recovered(two, two.changed_ids())
    table_one, table_two = one.snapshot(), two.snapshot()
    assert table_two.keys() == table_one.keys()
    assert all(items_equal(item, table_one[k]) for k, item in table_two.items())
    run_dir = two.ctx.incident.path
    assert not (run_dir / patch.JOURNAL_FILE).exists() and not (run_dir / patch.BACKUP_FILE).exists()
    for i in range(2):
        journal, backup = _shard_lines(run_dir, (i, 2))
        patched = {line["key_id"] for line in journal if line["status"] == "patched"}
        mine = {k for k in two.changed_ids() if planlib.segment_of(k, 2) == i}
        assert patched == mine and mine  # the segment's keys, and only them
        reads = {b["key_id"]: b for b in backup if b["source"] == "read"}
        assert set(reads) == mine  # a backup of exactly the items this shard replaced, as it found them
        assert all(items_equal(from_json_safe(b["item"]), two.corrupted[k]) for k, b in reads.items())

    assert journal_counts(two.ctx).get("patched") == split.patched  # 06_lift's summary counts every shard
    verification = patch.verify(two.ctx)
    assert verification.ok and verification.checked == split.patched + split.unchanged
    assert verification.pending == 0
    undone = patch.undo(two.ctx, progress=False)
    assert undone.ok and undone.undone == split.patched
    for k in two.changed_ids():
        assert items_equal(two.get(k), two.corrupted[k]), k
    # patched again after the undo: a new patch id, every key written again (none skipped as done before)
    again = patch.apply_plan(two.ctx, dry_run=False, progress=False, max_processes=2)
    assert again.patch_id == f"{split.patch_id}.2" and again.ok and again.patched == split.patched


CHILD = """
import sys
from recovery_helpers.context import open_context
from recovery_helpers.patch import apply_plan
ctx = open_context(sys.argv[1], sys.argv[2], "us-east-1", sys.argv[3], sys.argv[4])
apply_plan(ctx, dry_run=False, max_workers=2, max_write_rate=30, write_mode=sys.argv[5], transact_batch_size=5,
           progress=False, max_processes=2)
"""


def _worker_pid(lock: Path) -> int | None:
    text = lock.read_text() if lock.exists() else ""
    return int(text.split()[1]) if text.startswith("process ") else None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(("victim", "write_mode"), [("worker", "single"), ("parent", "transact")])
def test_a_patch_killed_mid_run_is_resumed_by_the_same_call(
    sandbox, aws, tmp_path, unique_name, victim, write_mode
):
    """SIGKILL of one worker (the others finish, the call fails naming the segment), or of the parent (its
    workers die with it): the same call run again ends correct, no key written twice."""
    sc = make_scenario(aws, tmp_path, unique_name, n=150)
    sc.approve()
    approved = sc.changed_ids()
    enable_stream(sc)  # one stream record per write applied from here on
    run_dir = sc.ctx.incident.path
    locks = [shard_dir(run_dir, (i, 2)) / "segment.lock" for i in range(2)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "inc", sc.table, sandbox.endpoint_url, str(sc.runs_dir), write_mode],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ},
        stderr=subprocess.PIPE,
    )
    workers: list[int] = []
    try:
        # each worker names itself in its segment's lock file; kill once segment 0 has journaled some keys
        while child.poll() is None:
            lines = [j for j in _shard_lines(run_dir, (0, 2))[0] if j["status"] == "patched"]
            workers = [pid for pid in map(_worker_pid, locks) if pid]
            if len(lines) >= 5 and len(workers) == 2:
                os.kill(child.pid if victim == "parent" else workers[0], signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        _, err = child.communicate(timeout=120)
    assert child.returncode != 0
    if victim == "worker":
        assert b"segment 0 of 2 stopped" in err, err[-2000:]
    else:  # the workers die with their parent (bounded wait for the kernel to deliver it)
        deadline = time.monotonic() + 30
        while not all(map(_gone, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(map(_gone, workers))
    patched_before = sum(1 for j in _shard_lines(run_dir, (0, 2))[0] if j["status"] == "patched")
    mine = [k for k in approved if planlib.segment_of(k, 2) == 0]
    assert 5 <= patched_before < len(mine), (
        "segment 0 should have been stopped part-way (with its parent too)"
    )

    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False, max_processes=2, write_mode=write_mode)
    assert report.failed == 0 and report.conflicts == 0, report.summary()
    assert report.already_done + report.patched + report.ambiguous == len(approved)
    ambiguous = {
        j["key_id"] for i in range(2) for j in _shard_lines(run_dir, (i, 2))[0] if j["status"] == "ambiguous"
    }
    if write_mode == "transact":
        assert not ambiguous  # the transactions in flight were replayed with their tokens
    assert_recovered(sc, [k for k in approved if k not in ambiguous])
    applied = stream_writes(sc)
    assert set(applied) <= set(approved) and set(applied.values()) <= {1}  # no key written twice
    assert set(approved) - set(applied) <= ambiguous
    verification = patch.verify(sc.ctx)
    assert verification.ambiguous == len(ambiguous) and not verification.mismatched
    assert verification.pending == 0


def test_segments_on_two_machines_copied_together_verify_as_one(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path / "a", unique_name, n=60)
    sc.approve()
    machine_b = tmp_path / "b" / "runs"
    shutil.copytree(sc.runs_dir, machine_b)  # the run folder as 04_diff left it, copied to machine b
    ctx_b = open_context("inc", sc.table, aws.region, aws.endpoint_url, str(machine_b), aws=aws)
    first = patch.apply_plan(sc.ctx, dry_run=False, progress=False, segments=(0, 2))
    second = patch.apply_plan(ctx_b, dry_run=False, progress=False, segments=(1, 2))
    assert first.patch_id == second.patch_id  # both machines name the same patch
    assert "segment 1 of 2, files in patch-shards/segment-1-of-2/" in second.summary().splitlines()[0]
    assert first.patched + second.patched == len(sc.changed_ids())
    assert patch.verify(sc.ctx).pending > 0  # machine b's shard is not here yet
    shutil.copytree(shard_dir(ctx_b.incident.path, (1, 2)), shard_dir(sc.ctx.incident.path, (1, 2)))
    verification = patch.verify(sc.ctx)
    assert verification.ok and verification.pending == 0
    assert verification.checked == first.patched + second.patched + first.unchanged + second.unchanged


def test_a_run_folder_mixing_layouts_is_refused_before_anything_is_written(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name, n=30)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, progress=False, segments=(0, 2))  # segment 1 still to do
    before = sandbox.calls
    with pytest.raises(InputError, match="started as 2 segments.*max_processes=2"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False, max_processes=3)
    with pytest.raises(InputError, match="started as 2 segments"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    with pytest.raises(InputError, match="both split the plan"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False, max_processes=2, segments=(1, 2))
    assert writes(sandbox, before) == 0
    assert not shard_dir(sc.ctx.incident.path, (0, 3)).exists()
    # the way it was started finishes it
    rest = patch.apply_plan(sc.ctx, dry_run=False, progress=False, max_processes=2)
    assert rest.ok and rest.already_done > 0


def test_a_whole_plan_run_is_not_resumed_in_shards(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    before = sandbox.calls
    with pytest.raises(InputError, match="whole plan in one process.*max_processes=1 and no segments"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False, max_processes=2)
    with pytest.raises(RecoveryError):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False, segments=(0, 2))
    assert writes(sandbox, before) == 0
