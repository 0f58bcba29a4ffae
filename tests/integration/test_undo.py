"""Undo: put back what the patch backed up, only where the item is still what the patch wrote."""

from __future__ import annotations

import pytest

from recovery_helpers import cli, patch
from recovery_helpers.errors import InputError
from recovery_helpers.items import items_equal
from recovery_helpers.journal import iter_jsonl
from tests.unit.patch.test_patch import enable_stream, make_scenario, stream_writes, writes


def test_undo_returns_the_table_to_its_pre_patch_state_and_keeps_a_newer_write(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name)
    sc.approve()
    before_patch = sc.snapshot()
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert report.patched == len(sc.changed_ids())
    newer = {**sc.base[sc.updated[0]], "status": {"S": "written by the app after the patch"}}
    sc.ddb.put_item(TableName=sc.table, Item=newer)

    result = patch.undo(sc.ctx, progress=False)
    assert result.undone == len(sc.changed_ids()) - 1 and result.conflicts == 1 and not result.ok
    assert "conflicts" in result.summary() and str(result) == result.summary()
    assert len(result.to_frame()) == 1
    after = sc.snapshot()
    assert items_equal(after.pop(sc.updated[0]), newer)  # not clobbered
    expected = dict(before_patch)
    expected.pop(sc.updated[0])
    assert after.keys() == expected.keys()
    assert all(items_equal(after[k], expected[k]) for k in expected)
    actions = [e["action"] for e in sc.ctx.incident.timeline]
    assert "undo started" in actions and "undo finished" in actions

    # undo is journaled and resumable: a second run has nothing left to write
    calls = sandbox.calls
    again = patch.undo(sc.ctx, progress=False)
    assert writes(sandbox, calls) == 0 and again.already_done == len(sc.changed_ids())


@pytest.mark.parametrize("write_mode", ["single", "transact"])
def test_undo_after_a_lost_journal_line_replays_or_reports(sandbox, aws, tmp_path, unique_name, write_mode):
    """Undo's own writes in flight when it stopped: a transaction is replayed with its token (DynamoDB says it
    ran: nothing is written again), a single write is reported as ambiguous; nothing is written either way."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    before_patch = sc.snapshot()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    patch.undo(sc.ctx, write_mode=write_mode, progress=False)
    undo_file = sc.ctx.incident.path / patch.UNDO_FILE
    lines = undo_file.read_text().splitlines(keepends=True)
    undo_file.write_text("".join(lines[:-3]) + lines[-3][:20])  # a crash: 3 outcomes lost, one line torn
    enable_stream(sc)
    again = patch.undo(sc.ctx, write_mode=write_mode, progress=False)
    assert not stream_writes(sc)
    after = sc.snapshot()
    assert after.keys() == before_patch.keys() and all(items_equal(after[k], before_patch[k]) for k in after)
    if write_mode == "transact":
        assert again.undone == 3 and again.ok
    else:
        assert again.ambiguous == 3 and not again.ok and len(again.to_frame()) == 3
    finals = [line for line in iter_jsonl(undo_file) if line["status"] in patch.FINAL]
    assert len({line["key_id"] for line in finals}) == len(sc.changed_ids())


def test_undo_of_an_attribute_level_patch(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    before_patch = sc.snapshot()
    patch.apply_plan(sc.ctx, dry_run=False, attributes=["status"], progress=False)
    assert sc.get(sc.updated[0])["price"] == {"N": "0"}  # only status was reverted
    assert patch.undo(sc.ctx, progress=False).ok
    after = sc.snapshot()
    assert after.keys() == before_patch.keys()
    assert all(items_equal(after[k], before_patch[k]) for k in after)


def test_recovery_undo_command(sandbox, aws, tmp_path, unique_name, capsys):
    sc = make_scenario(aws, tmp_path, unique_name, n=12, incident_id="cli-undo")
    sc.approve()
    before_patch = sc.snapshot()
    patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    status = cli.main(["undo", "--incident", "cli-undo", "-p", "runs_dir", str(sc.runs_dir)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "put back: " in out
    after = sc.snapshot()
    assert after.keys() == before_patch.keys() and all(items_equal(after[k], before_patch[k]) for k in after)


def test_undo_without_a_patch_is_refused(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve()
    with pytest.raises(InputError, match="no patch yet"):
        patch.undo(sc.ctx, progress=False)


def test_patch_again_after_undo_starts_a_new_patch(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    first = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    patch.undo(sc.ctx, progress=False)
    second = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert second.patch_id != first.patch_id and second.patched == first.patched
    assert patch.verify(sc.ctx).ok
