"""Writes that land between the patch's read and its write (a concurrent writer, injected at that exact moment
through the SDK's own event hooks on the patch's session, with a second client), on both write paths."""

from __future__ import annotations

import pytest

from recovery_helpers import patch
from recovery_helpers.items import items_equal
from tests.unit.patch.test_patch import assert_recovered, backup, before_call, journal, keys_in, make_scenario

MODES = ["single", "transact"]


def _before_first_write(sc, sandbox, key_id, change):
    """Run ``change(other_client)`` once, just before the patch sends the write that carries ``key_id``."""
    other = sandbox.client("dynamodb")
    fired = []

    def hook(params):
        if not fired and key_id in keys_in(sc.schema, params):
            fired.append(True)
            change(other)

    for op in ("PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems"):
        before_call(sc.aws, op, hook)
    return fired


@pytest.mark.parametrize("write_mode", MODES)
def test_a_change_between_read_and_write_is_a_conflict_not_an_overwrite(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.updated[0]
    app = {**sc.corrupted[k], "status": {"S": "written by the app in between"}}
    fired = _before_first_write(sc, sandbox, k, lambda c: c.put_item(TableName=sc.table, Item=app))
    report = patch.apply_plan(sc.ctx, dry_run=False, max_workers=2, write_mode=write_mode, progress=False)
    assert fired and report.conflicts == 1
    assert items_equal(sc.get(k), app)
    conflict = report.conflict_items[0]
    assert conflict["reason"] == "changed between the read and the write"
    assert conflict["found"]["status"] == {"S": "written by the app in between"}
    assert_recovered(sc, [x for x in sc.changed_ids() if x != k])


def test_an_attribute_added_between_read_and_write_is_kept_in_the_backup(sandbox, aws, tmp_path, unique_name):
    """Single writes only: PutItem returns the item it replaced. A transaction cannot (see docs/steps/05_patch.md)."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.updated[0]
    added = {**sc.corrupted[k], "lastSeen": {"S": "added in between"}}
    fired = _before_first_write(sc, sandbox, k, lambda c: c.put_item(TableName=sc.table, Item=added))
    report = patch.apply_plan(sc.ctx, dry_run=False, max_workers=2, write_mode="single", progress=False)
    assert fired and report.raced == 1 and report.patched == len(sc.changed_ids())
    assert items_equal(sc.get(k), sc.base[k])
    replaced = [b for b in backup(sc) if b["key_id"] == k and b["source"] == "replaced"]
    assert len(replaced) == 1 and replaced[0]["item"]["lastSeen"] == {"S": "added in between"}
    line = next(j for j in journal(sc) if j["key_id"] == k)
    assert line["raced"] and "lastSeen" in line["note"]
    # undo puts back what was really there, the added attribute included
    assert patch.undo(sc.ctx, progress=False).ok
    assert items_equal(sc.get(k), added)


def test_an_attribute_changed_between_read_and_update_is_kept_by_undo(sandbox, aws, tmp_path, unique_name):
    """An attribute-level patch (UpdateItem) leaves other attributes alone: the journal records the item as it
    really was before the write (ReturnValues=ALL_OLD), so undo puts back the change made in between."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.updated[0]
    in_between = {**sc.corrupted[k], "flag": {"S": "set by the app in between"}}
    fired = _before_first_write(sc, sandbox, k, lambda c: c.put_item(TableName=sc.table, Item=in_between))
    report = patch.apply_plan(
        sc.ctx,
        dry_run=False,
        max_workers=2,
        attributes=["status", "price"],
        write_mode="single",
        progress=False,
    )
    assert fired and report.ok and report.conflicts == 0
    assert (
        sc.get(k)["flag"] == {"S": "set by the app in between"}
        and sc.get(k)["status"] == sc.base[k]["status"]
    )
    assert any(b["key_id"] == k and b["source"] == "replaced" for b in backup(sc))
    assert patch.undo(sc.ctx, progress=False).ok
    assert items_equal(sc.get(k), in_between)


@pytest.mark.parametrize("write_mode", MODES)
def test_an_item_fixed_by_hand_before_the_write_is_left_as_is(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.deleted[0]
    fired = _before_first_write(sc, sandbox, k, lambda c: c.put_item(TableName=sc.table, Item=sc.base[k]))
    report = patch.apply_plan(sc.ctx, dry_run=False, max_workers=2, write_mode=write_mode, progress=False)
    assert fired
    # someone put exactly the target back: the condition fails, the item found is the target, nothing is lost
    assert report.conflicts == 0 and report.failed == 0
    assert items_equal(sc.get(k), sc.base[k])
