"""The transactional write path (write_mode="transact"): TransactWriteItems of many items, each with its own
condition; a cancelled transaction is settled key by key. Same guarantees as single writes."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from recovery_helpers import patch
from recovery_helpers.aws import Aws
from recovery_helpers.context import open_context
from recovery_helpers.items import items_equal
from tests.unit.patch.test_patch import (
    answer_instead,
    assert_recovered,
    backup,
    before_call,
    cancelled,
    journal,
    keys_in,
    make_scenario,
    writes,
)

SINGLE_OPS = ("PutItem", "DeleteItem", "UpdateItem")


def _calls(sandbox, before, ops):
    now = sandbox.calls
    return sum(now.get(op, 0) - before.get(op, 0) for op in ops)


def test_changes_after_the_review_are_conflicts_and_the_rest_of_the_batch_is_patched(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name, n=30)
    sc.approve()
    edited, recreated = sc.updated[2], sc.deleted[1]
    by_app = {**sc.corrupted[edited], "status": {"S": "edited by a customer after the review"}}
    sc.ddb.put_item(TableName=sc.table, Item=by_app)
    again = {**sc.base[recreated], "status": {"S": "recreated by a customer"}}
    sc.ddb.put_item(TableName=sc.table, Item=again)
    calls = sandbox.calls
    report = patch.apply_plan(
        sc.ctx, dry_run=False, max_workers=2, write_mode="transact", transact_batch_size=25, progress=False
    )
    assert report.conflicts == 2 and report.failed == 0
    others = [k for k in sc.changed_ids() if k not in (edited, recreated)]
    assert report.patched == len(others)
    assert items_equal(sc.get(edited), by_app) and items_equal(sc.get(recreated), again)
    assert_recovered(sc, others)
    # every write went out in transactions (two workers: at most a few), none one by one
    assert _calls(sandbox, calls, SINGLE_OPS) == 0
    assert 1 <= _calls(sandbox, calls, ("TransactWriteItems",)) == report.transactions <= 4
    assert report.writes_by_path == {"transact": len(others), "single": 0}
    lines = {j["key_id"]: j for j in journal(sc)}
    assert {lines[k]["via"] for k in others} == {"TransactWriteItems"}
    assert lines[edited]["found"]["status"] == {"S": "edited by a customer after the review"}
    # the backup holds every item the transactions wrote, taken before they were sent
    assert {b["key_id"] for b in backup(sc)} == set(others)
    assert patch.verify(sc.ctx).conflicts == 2


def test_a_transaction_cancelled_by_a_concurrent_write_settles_each_item(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    target, same = sc.updated[0], sc.deleted[0]
    by_app = {**sc.corrupted[target], "status": {"S": "written by the app in between"}}
    other = sandbox.client("dynamodb")
    fired: list[bool] = []

    def meanwhile(params):
        keys = keys_in(sc.schema, params)
        if not fired and "TransactItems" in params and target in keys and same in keys:
            fired.append(True)
            other.put_item(TableName=sc.table, Item=by_app)  # a legitimate write between read and write
            other.put_item(TableName=sc.table, Item=sc.base[same])  # someone put back exactly the target

    before_call(sc.aws, "TransactWriteItems", meanwhile)
    calls = sandbox.calls
    report = patch.apply_plan(
        sc.ctx, dry_run=False, max_workers=1, write_mode="transact", transact_batch_size=100, progress=False
    )
    assert fired and report.transactions_cancelled == 1
    # the item someone else put back is "unchanged": not this run's write, so undo will leave it (issue 15 C)
    assert report.conflicts == 1 and report.unchanged == 1 and report.failed == 0
    assert report.patched == len(sc.changed_ids()) - 2
    assert items_equal(sc.get(target), by_app)  # not overwritten
    assert_recovered(sc, [k for k in sc.changed_ids() if k != target])
    conflict = report.conflict_items[0]
    assert conflict["key_id"] == target and conflict["reason"] == "changed between the read and the write"
    assert conflict["found"]["status"] == {"S": "written by the app in between"}
    # the items whose condition held were written one by one after the cancellation; the two whose condition
    # failed were settled from the items DynamoDB returned, without another write (+2: the other writer's)
    assert _calls(sandbox, calls, SINGLE_OPS) == (len(sc.changed_ids()) - 2) + 2
    lines = {j["key_id"]: j for j in journal(sc)}
    assert lines[same]["status"] == "unchanged" and "another writer" in lines[same]["note"]
    assert "cancelled" in lines[sc.created[0]]["note"]


def test_a_transaction_conflict_falls_back_to_single_writes(sandbox, aws, tmp_path, unique_name):
    """DynamoDB cancels a transaction when another transaction holds one of its items (TransactionConflict);
    the sandbox has no concurrent transactions, so that answer is given by the SDK hook, as AWS words it."""
    sc = make_scenario(aws, tmp_path, unique_name, n=18)
    sc.approve()

    def conflict_once(body):
        if answered:
            return None
        n = len(body["TransactItems"])
        return cancelled(
            [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            + [{"Code": "None"}] * (n - 1)
        )

    answered = answer_instead(sc.aws, "TransactWriteItems", conflict_once)
    calls = sandbox.calls
    report = patch.apply_plan(
        sc.ctx, dry_run=False, max_workers=1, write_mode="transact", transact_batch_size=5, progress=False
    )
    assert answered and report.transactions_cancelled == 1
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert_recovered(sc, sc.changed_ids())
    n = len(answered[0]["TransactItems"])
    assert _calls(sandbox, calls, SINGLE_OPS) == n  # the cancelled batch, one by one
    assert report.writes_by_path == {"transact": len(sc.changed_ids()) - n, "single": n}
    tokens = [b["ClientRequestToken"] for b in answered]
    assert all(len(t) == 36 for t in tokens)


def test_throttling_at_20_percent_in_transact_mode(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=30)
    rejected = sc.updated[0]
    sc.approve(reject=(rejected,))
    approved = [k for k in sc.changed_ids() if k != rejected]
    before = sc.snapshot()
    faults_before = sandbox.faults.get("throttle", 0)
    sandbox.configure(throttle_rate=0.2, fault_seed=5)
    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode="transact", progress=False)
    sandbox.configure(throttle_rate=0.0)
    assert sandbox.faults.get("throttle", 0) > faults_before
    assert report.ok and report.patched == len(approved), report.summary()
    assert_recovered(sc, approved)
    after = sc.snapshot()
    for k in set(before) | set(after):
        if k not in approved:
            assert items_equal(before.get(k), after.get(k)), k


def test_throttling_past_the_sdk_retries_pauses_and_resends_the_transaction(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name, n=18)
    sc.approve()
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    no_retries = Aws(
        region=sandbox.region,
        endpoint_url=sandbox.endpoint_url,
        session=session,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),  # no SDK retries at all
    )
    ctx = open_context("inc", sc.table, runs_dir=str(sc.runs_dir), aws=no_retries)
    _ = ctx.who

    # a transaction can also be cancelled for throttling: every reason is ThrottlingError or None
    def throttled_once(body):
        if throttled:
            return None
        return cancelled(
            [{"Code": "ThrottlingError", "Message": "Throughput exceeds the limit"}] * 2
            + [{"Code": "None"}] * (len(body["TransactItems"]) - 2)
        )

    throttled = answer_instead(no_retries, "TransactWriteItems", throttled_once)
    faults_before = sandbox.faults.get("throttle", 0)
    sandbox.configure(
        throttle_rate=0.3, fault_seed=4, fault_operations=["TransactWriteItems", "BatchGetItem"]
    )
    report = patch.apply_plan(ctx, dry_run=False, max_workers=2, write_mode="transact", progress=False)
    sandbox.configure(throttle_rate=0.0, fault_operations=[])
    # every throttle reached the engine (no SDK retries): each paused all workers and was tried again
    injected = sandbox.faults.get("throttle", 0) - faults_before
    assert len(throttled) == 1 and injected > 0
    assert report.throttled == injected + 1 == report.rate.pauses
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert report.writes_by_path["single"] == 0  # throttling is waited out, never turned into single writes
    assert_recovered(sc, sc.changed_ids())


def test_max_write_rate_counts_items_not_calls(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=36)
    sc.approve()
    calls = sandbox.calls
    rate = 10.0
    report = patch.apply_plan(
        sc.ctx, dry_run=False, max_write_rate=rate, max_workers=4, write_mode="transact", progress=False
    )
    assert report.ok
    stats = report.rate
    n = len(sc.changed_ids())
    assert stats.granted == n and writes(sandbox, calls) == report.transactions < n
    assert stats.observed_rate() <= rate * 1.10
    assert report.elapsed_seconds >= (n - int(rate)) / rate  # a transaction carries at most a second's worth


def test_auto_writes_one_by_one_under_a_rate_limit_and_in_transactions_without(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve(reject=(sc.updated[0],))
    limited = patch.apply_plan(sc.ctx, dry_run=False, max_write_rate=1000, max_workers=1, progress=False)
    assert limited.write_mode == "single" and limited.transactions == 0
    sc.approve()
    rest = patch.apply_plan(sc.ctx, dry_run=False, max_workers=1, progress=False)
    assert rest.write_mode == patch.DEFAULT_WRITE_MODE == "auto" and rest.patched == 1
    assert rest.writes_by_path == {"transact": 0, "single": 1}  # one item: a transaction would cost twice
    assert_recovered(sc, sc.changed_ids())


@pytest.mark.parametrize("hash_key,range_key", [(("id", "N"), None), (("bin", "B"), ("n", "N"))])
def test_number_and_binary_keys_in_transactions(sandbox, aws, tmp_path, unique_name, hash_key, range_key):
    sc = make_scenario(aws, tmp_path, unique_name, n=18, hash_key=hash_key, range_key=range_key)
    sc.approve()
    calls = sandbox.calls
    report = patch.apply_plan(sc.ctx, dry_run=False, max_workers=2, write_mode="transact", progress=False)
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert _calls(sandbox, calls, SINGLE_OPS) == 0 and report.transactions >= 1
    assert_recovered(sc, sc.changed_ids())
    assert patch.verify(sc.ctx).ok
    undone = patch.undo(sc.ctx, write_mode="transact", progress=False)
    assert undone.ok and undone.undone == len(sc.changed_ids()) and undone.transactions >= 1
    for k in sc.changed_ids():
        assert items_equal(sc.get(k), sc.corrupted[k])


def test_attribute_level_restore_in_transactions_keeps_other_attributes(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    k = sc.updated[1]
    legit = {**sc.corrupted[k], "flag": {"S": "changed by the app after the review"}}
    sc.ddb.put_item(TableName=sc.table, Item=legit)
    report = patch.apply_plan(
        sc.ctx, dry_run=False, attributes=["status", "price"], write_mode="transact", progress=False
    )
    assert report.ok and report.transactions >= 1, report.summary()
    now = sc.get(k)
    assert now["status"] == sc.base[k]["status"] and now["flag"] == legit["flag"]
    assert_recovered(sc, [*sc.deleted, *sc.created])
    assert patch.verify(sc.ctx).ok
    # undo puts back the items as they were before the patch, the app's change included
    assert patch.undo(sc.ctx, write_mode="transact", progress=False).ok
    assert items_equal(sc.get(k), legit)


def test_bad_write_modes_are_refused_before_anything_is_written(sandbox, aws, tmp_path, unique_name):
    from recovery_helpers.errors import InputError

    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve()
    calls = sandbox.calls
    for kwargs in ({"write_mode": "batch"}, {"transact_batch_size": 101}, {"transact_batch_size": 0}):
        with pytest.raises(InputError, match="write_mode|transact_batch_size"):
            patch.apply_plan(sc.ctx, dry_run=False, progress=False, **kwargs)
    assert writes(sandbox, calls) == 0
