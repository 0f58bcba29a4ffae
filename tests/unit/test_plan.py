"""The plan file and its approvals: what 05_patch trusts, so order, digest and staleness matter."""

from __future__ import annotations

import json
import random

import pytest

from recovery_helpers.errors import InputError
from recovery_helpers.incident import Incident
from recovery_helpers.items import KeySchema, item_digest
from recovery_helpers.plan import (
    ACTION_OF,
    Approvals,
    PlanEntry,
    PlanWriter,
    iter_plan,
    load_approvals,
    load_plan_meta,
    plan_digest,
    save_approvals,
    segment_of,
    write_plan,
)

SCHEMA = KeySchema("id", "B")


def entry(i: int, classification: str = "changed", live_value: str = "new") -> PlanEntry:
    key = {"id": {"B": i.to_bytes(2, "big")}}
    restored = (
        None if classification == "created" else {**key, "v": {"S": "old"}, "raw": {"BS": [b"\x00", b"\x01"]}}
    )
    live = None if classification == "deleted" else {**key, "v": {"S": live_value}}
    if classification == "unchanged":
        live = restored
    return PlanEntry(
        key_id=SCHEMA.key_id(key),
        key=key,
        classification=classification,
        action=ACTION_OF[classification],
        restored=restored,
        live=live,
        restored_digest=item_digest(restored),
        live_digest=item_digest(live),
        tenant=None,
        sources=["keys_file"],
        first_change=None,
    )


def test_plan_is_written_in_key_order_with_the_same_digest_however_entries_arrive(tmp_path):
    entries = [entry(i, ["changed", "deleted", "created", "unchanged"][i % 4]) for i in range(50)]
    a = Incident("a", tmp_path)
    digest_a = write_plan(a, entries, {"table_name": "t"})
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)
    b = Incident("b", tmp_path)
    writer = PlanWriter(b, run_size=3)  # many sorted runs merged: bounded memory, same result
    for e in shuffled:
        writer.add(e)
    digest_b = writer.close({"table_name": "t"})
    assert digest_a == digest_b == plan_digest(a)
    assert (a.path / "plan.jsonl").read_text() == (b.path / "plan.jsonl").read_text()
    ids = [e.key_id for e in iter_plan(b)]
    assert ids == sorted(ids) and len(ids) == 50
    assert load_plan_meta(b)["counts"] == {"changed": 13, "deleted": 13, "created": 12, "unchanged": 12}
    assert not list(b.path.glob(".plan-*")), "temporary runs are removed"


def test_binary_items_round_trip_through_the_plan_file(tmp_path):
    inc = Incident("x", tmp_path)
    write_plan(inc, [entry(1)], {})
    (back,) = iter_plan(inc)
    assert back == entry(1)
    assert json.loads((inc.path / "plan.jsonl").read_text())["key"] == {"id": {"B": "AAE="}}


def test_digest_changes_when_any_item_differs(tmp_path):
    one = write_plan(Incident("one", tmp_path), [entry(1), entry(2)], {})
    other = write_plan(Incident("two", tmp_path), [entry(1), entry(2, live_value="newer")], {})
    assert one != other


def test_a_key_twice_is_refused(tmp_path):
    inc = Incident("dup", tmp_path)
    with pytest.raises(ValueError, match="appears twice"):
        write_plan(inc, [entry(1), entry(1)], {})
    assert not (inc.path / "plan.jsonl").exists()


def test_approval_rule_item_over_class_over_default_and_nothing_by_default(tmp_path):
    inc = Incident("ap", tmp_path)
    write_plan(inc, [entry(1), entry(2), entry(3, "created")], {})
    approvals = load_approvals(inc)
    assert not any(approvals.is_approved(e) for e in iter_plan(inc))
    approvals.default = True
    approvals.classes["created"] = False
    approvals.decisions[entry(2).key_id] = False
    save_approvals(inc, approvals)
    got = {e.key_id: load_approvals(inc).is_approved(e) for e in iter_plan(inc)}
    assert got == {entry(1).key_id: True, entry(2).key_id: False, entry(3).key_id: False}


def test_approvals_of_an_older_plan_never_apply_to_a_new_one(tmp_path):
    inc = Incident("stale", tmp_path)
    old = write_plan(inc, [entry(1)], {})
    save_approvals(inc, Approvals(digest=old, default=True))
    new = write_plan(inc, [entry(1, live_value="changed again")], {})
    assert load_approvals(inc).digest == new and not load_approvals(inc).is_approved(next(iter_plan(inc)))
    assert (inc.path / f"approvals.{old[:12]}.json").exists(), "kept for the postmortem"
    with pytest.raises(InputError, match="current plan is"):
        save_approvals(inc, Approvals(digest=old, default=True))


def test_no_plan_yet_says_which_step_to_run(tmp_path):
    with pytest.raises(InputError, match="run 04_diff first"):
        plan_digest(Incident("none", tmp_path))


def test_segments_are_stable_and_cover_every_segment():
    ids = [SCHEMA.key_id({"id": {"B": i.to_bytes(2, "big")}}) for i in range(400)]
    first = [segment_of(k, 8) for k in ids]
    assert first == [segment_of(k, 8) for k in ids] and set(first) == set(range(8))
    assert segment_of(ids[0], 1) == 0
    # pinned value: a key must land in the same segment in every process and release
    assert (
        segment_of('[{"S":"tenant-1"},{"S":"document-1"}]', 16)
        == segment_of('[{"S":"tenant-1"},{"S":"document-1"}]', 16)
        == 12
    )
