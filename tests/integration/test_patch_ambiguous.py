"""The engineer decides the keys a crashed patch left ambiguous: keep one as found, write the target on another;
verify passes only once every key is decided, a resumed patch leaves them alone, and undo reverses a written
decision like any patched key while leaving a kept one as it is."""

from __future__ import annotations

import json

import pytest

from recovery_helpers import patch
from recovery_helpers.archive.index_page import write_index
from recovery_helpers.errors import InputError
from recovery_helpers.items import from_json_safe, items_equal
from recovery_helpers.journal import iter_jsonl
from recovery_helpers.lift import journal_counts
from tests.unit.patch.test_patch import backup, journal, make_scenario, writes


def _crash_with_three_in_flight(sc, segments=None):
    """As test_patch_resume: the journal lines of three keys lost after their writes (single path); then the
    app deletes the item put back and re-creates the junk its way. A resume journals the three as ambiguous."""
    run = {"dry_run": False, "write_mode": "single", "progress": False, "segments": segments}
    patch.apply_plan(sc.ctx, **run)
    landed, set_back, overtaken = sc.updated[0], sc.deleted[0], sc.created[0]
    sc.ddb.delete_item(TableName=sc.table, Key=sc.key(set_back))
    app_item = {**sc.corrupted[overtaken], "status": {"S": "app"}}
    sc.ddb.put_item(TableName=sc.table, Item=app_item)
    journal_file = _folder(sc, segments) / patch.JOURNAL_FILE
    lines = iter_jsonl(journal_file)
    kept = [json.dumps(line) for line in lines if line["key_id"] not in (landed, set_back, overtaken)]
    journal_file.write_text("\n".join(kept) + "\n")
    report = patch.apply_plan(sc.ctx, **run)
    assert report.ambiguous == 3
    return landed, set_back, overtaken, app_item


def _folder(sc, segments):
    run_dir = sc.ctx.incident.path
    return run_dir if segments is None else run_dir / "patch-shards" / "segment-{}-of-{}".format(*segments)


def _lines_of(sc, key_id):
    return [line for line in journal(sc) if line["key_id"] == key_id]


def test_deciding_ambiguous_keys_settles_verify_resume_and_undo(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    with pytest.raises(InputError, match="no patch yet"):
        patch.resolve_ambiguous(sc.ctx, sc.updated[0], "keep", reason="before any patch")
    landed, set_back, overtaken, app_item = _crash_with_three_in_flight(sc)
    assert not patch.verify(sc.ctx).ok

    # refusals: nothing written, nothing journaled
    lines_before, calls_before = len(journal(sc)), sandbox.calls
    with pytest.raises(InputError, match="not one of keep, write"):
        patch.resolve_ambiguous(sc.ctx, landed, "overwrite", reason="r")
    with pytest.raises(InputError, match="needs a reason"):
        patch.resolve_ambiguous(sc.ctx, landed, "keep", reason="  ")
    with pytest.raises(InputError, match="'patched' there, not ambiguous"):
        patch.resolve_ambiguous(sc.ctx, sc.updated[1], "write", reason="r")
    sc.ddb.put_item(TableName=sc.table, Item={**app_item, "status": {"S": "app again"}})
    for decision in ("write", "keep"):
        with pytest.raises(InputError, match="changed since the patch found it ambiguous"):
            patch.resolve_ambiguous(sc.ctx, overtaken, decision, reason="r")
    assert items_equal(sc.get(overtaken), {**app_item, "status": {"S": "app again"}})
    sc.ddb.put_item(TableName=sc.table, Item=app_item)  # back to the version found
    assert len(journal(sc)) == lines_before
    assert writes(sandbox, calls_before) == 2  # the test's own two puts, none by the runbook

    # keep: nothing written, a resolved line, a timeline record
    calls_before = sandbox.calls
    kept = patch.resolve_ambiguous(sc.ctx, landed, "keep", reason="the write landed: the item is right")
    assert writes(sandbox, calls_before) == 0 and items_equal(sc.get(landed), sc.base[landed])
    assert kept["status"] == "resolved" and kept["decided_by"] == sc.ctx.who
    assert _lines_of(sc, landed)[-1]["found_digest"] == kept["found_digest"]
    with pytest.raises(InputError, match="decided already"):
        patch.resolve_ambiguous(sc.ctx, landed, "write", reason="again")

    # write: the item found is backed up, then the target written
    backups_before = len(backup(sc))
    written = patch.resolve_ambiguous(sc.ctx, set_back, "write", reason="the app deleted it by mistake")
    assert items_equal(sc.get(set_back), sc.base[set_back])
    new_backup = backup(sc)[backups_before:]
    assert [(b["key_id"], b["source"], b["item"]) for b in new_backup] == [(set_back, "read", None)]
    assert written["status"] == "patched" and written["resolved"] is True
    assert not patch.verify(sc.ctx).ok  # one key still to decide

    patch.resolve_ambiguous(sc.ctx, overtaken, "write", reason="junk: delete it")
    assert sc.get(overtaken) is None
    verification = patch.verify(sc.ctx)
    assert verification.ok and verification.ambiguous == 0 and verification.resolved == 1
    events = [e for e in sc.ctx.incident.timeline if e["action"] == "ambiguous resolved"]
    assert [(e["key_id"], e["decision"], e["who"]) for e in events] == [
        (landed, "keep", sc.ctx.who),
        (set_back, "write", sc.ctx.who),
        (overtaken, "write", sc.ctx.who),
    ]
    assert events[0]["reason"] == "the write landed: the item is right"
    counts = journal_counts(sc.ctx)  # 06_lift's summary (and index.html) count each decided key once
    assert "ambiguous" not in counts and counts["resolved"] == 1
    page = write_index(sc.ctx.incident).read_text(encoding="utf-8")
    assert "ambiguous resolved" in page and "the write landed: the item is right" in page

    calls_before = sandbox.calls  # a resumed patch leaves decided keys alone
    assert patch.apply_plan(sc.ctx, dry_run=False, write_mode="single", progress=False).ambiguous == 0
    assert writes(sandbox, calls_before) == 0

    undone = patch.undo(sc.ctx, write_mode="single", progress=False)
    assert undone.ok and undone.ambiguous == 0
    assert [line["key_id"] for line in undone.resolved_items] == [landed]
    assert list(undone.to_frame()["status"]) == ["resolved"] and "kept as found" in undone.summary()
    assert items_equal(sc.get(landed), sc.base[landed])  # kept: not undone
    assert sc.get(set_back) is None  # as the engineer found it
    assert items_equal(sc.get(overtaken), app_item)
    assert items_equal(from_json_safe(_lines_of(sc, overtaken)[-1]["before"]), app_item)


def test_decide_ambiguous_lists_both_versions_and_applies_a_dict(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    nothing = patch.decide_ambiguous(sc.ctx, {})  # no patch yet: nothing to do
    nothing.check()
    assert nothing.left == []
    landed, set_back, overtaken, app_item = _crash_with_three_in_flight(sc)
    shown = patch.decide_ambiguous(sc.ctx, {})
    frame = shown.to_frame()
    assert sorted(frame["key_id"]) == sorted([landed, set_back, overtaken])
    assert set(frame.columns) >= {"before", "found", "now", "target"}
    with pytest.raises(InputError, match="resolve_reason is empty"):
        patch.decide_ambiguous(sc.ctx, {landed: "keep"})
    # a key is named by its key_id or by the key shown beside it (as the diff shows keys), not both
    label = dict(zip(frame["key_id"], frame["key"], strict=True))
    assert label[landed] == ", ".join(f"{n}={v['S']}" for n, v in sc.key(landed).items())
    with pytest.raises(InputError, match="twice"):
        patch.decide_ambiguous(sc.ctx, {landed: "keep", label[landed]: "write"}, reason="r")
    assert len(patch.decide_ambiguous(sc.ctx, {}).left) == 3  # refused before anything was decided
    decided = patch.decide_ambiguous(
        sc.ctx,
        {label[landed]: "keep", set_back: "keep", label[overtaken]: "keep"},
        reason="checked with the app team",
    )
    assert sorted(d["key_id"] for d in decided.decided) == sorted([landed, set_back, overtaken])
    decided.check()  # raises while anything is wrong
    assert decided.left == [] and decided.verification.ok
    assert items_equal(sc.get(overtaken), app_item) and sc.get(set_back) is None


def test_a_decision_goes_to_the_shard_that_holds_the_key(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    _, set_back, _, _ = _crash_with_three_in_flight(sc, segments=(0, 1))
    shard = _folder(sc, (0, 1))
    patch.resolve_ambiguous(sc.ctx, set_back, "write", reason="lost by the crash")
    assert items_equal(sc.get(set_back), sc.base[set_back])
    last = list(iter_jsonl(shard / patch.JOURNAL_FILE))[-1]
    assert (last["key_id"], last["status"], last["resolved"]) == (set_back, "patched", True)
    assert list(iter_jsonl(shard / patch.BACKUP_FILE))[-1]["key_id"] == set_back
    run_dir = sc.ctx.incident.path
    assert not (run_dir / patch.JOURNAL_FILE).exists() and not (run_dir / patch.BACKUP_FILE).exists()
    assert patch.verify(sc.ctx).ambiguous == 2
