"""05_patch on the sandbox: dry run, approvals, conflicts, attribute-level restore, key shapes, refusals.

Each test stages a small incident (a live table, a "restored" copy with the pre-incident items, a keys file),
builds the plan through diff.build_plan, approves it through diff.approve, and drives patch over HTTP.
The helpers here are shared by the other test_patch*/test_undo files.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from recovery_helpers import diff, patch
from recovery_helpers import plan as planlib
from recovery_helpers.aws import Aws
from recovery_helpers.context import Context, open_context
from recovery_helpers.errors import ApprovalError, InputError
from recovery_helpers.items import KeySchema, items_equal
from recovery_helpers.journal import iter_jsonl
from tests.conftest import create_table

WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


# -- scenario helpers (used by the other patch test files too) ---------------------------------------------
def key_value(type_: str, i: int) -> dict[str, Any]:
    if type_ == "S":
        return {"S": f"tenant-{i % 3}#doc-{i:04d}"}
    if type_ == "N":
        return {"N": str(1000 + i)}
    return {"B": f"key-{i}".encode()}


def rich_item(schema: KeySchema, i: int) -> dict[str, Any]:
    """An item with every attribute type DynamoDB has."""
    item = {schema.hash_name: key_value(schema.hash_type, i)}
    if schema.range_name:
        item[schema.range_name] = key_value(schema.range_type or "S", i)
    item.update(
        {
            "status": {"S": "active"},
            "price": {"N": f"{i}.50"},
            "blob": {"B": bytes([i % 256, 1, 2])},
            "flag": {"BOOL": i % 2 == 0},
            "nothing": {"NULL": True},
            "profile": {"M": {"name": {"S": f"user {i}"}, "tags": {"L": [{"S": "a"}, {"N": "1"}]}}},
            "history": {"L": [{"N": str(i)}, {"M": {"x": {"S": "y"}}}]},
            "labels": {"SS": ["red", "blue", f"l{i}"]},
            "sizes": {"NS": ["1", "2.5", str(i + 3)]},
            "chunks": {"BS": [b"\x00", bytes([i % 256 or 7])]},
        }
    )
    return item


@dataclass
class Scenario:
    """A staged incident: pre-incident items (also in the restored table) and what the incident did."""

    aws: Aws
    ctx: Context
    table: str
    restored: str
    schema: KeySchema
    runs_dir: Path
    base: dict[str, dict] = field(default_factory=dict)  # key_id -> pre-incident item
    corrupted: dict[str, dict | None] = field(default_factory=dict)  # key_id -> live item after the incident
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)

    @property
    def ddb(self) -> Any:
        return self.aws.dynamodb

    def key(self, key_id: str) -> dict:
        return self.schema.key_from_id(key_id)

    def get(self, key_id: str) -> dict | None:
        return self.ddb.get_item(TableName=self.table, Key=self.key(key_id), ConsistentRead=True).get("Item")

    def snapshot(self) -> dict[str, dict]:
        out = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page["Items"]:
                out[self.schema.key_id(self.schema.key_of(item))] = item
        return out

    def changed_ids(self) -> list[str]:
        return [*self.updated, *self.deleted, *self.created]

    def approve(self, approver: str | None = None, reject: tuple[str, ...] = ()) -> planlib.Approvals:
        approvals = diff.approve(self.ctx, approve=True, approver=approver)
        if reject:
            approvals.decisions.update({k: False for k in reject})
            planlib.save_approvals(self.ctx.incident, approvals)
        return approvals


def make_scenario(
    aws: Aws,
    tmp_path: Path,
    name: str,
    *,
    n: int = 24,
    hash_key: tuple[str, str] = ("pk", "S"),
    range_key: tuple[str, str] | None = ("sk", "S"),
    incident_id: str = "inc",
    build: bool = True,
) -> Scenario:
    """Live + restored tables with ``n`` items; the incident updates, deletes and creates some of them."""
    ddb = aws.dynamodb
    table = create_table(ddb, name, hash_key=hash_key, range_key=range_key, pitr=False)
    restored = create_table(ddb, f"{name}-restored", hash_key=hash_key, range_key=range_key, pitr=False)
    schema = KeySchema.of_table(ddb, table)
    ctx = open_context(incident_id, table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws)
    sc = Scenario(aws=aws, ctx=ctx, table=table, restored=restored, schema=schema, runs_dir=tmp_path / "runs")
    for i in range(n):
        item = rich_item(schema, i)
        for t in (table, restored):
            ddb.put_item(TableName=t, Item=item)
        sc.base[schema.key_id(schema.key_of(item))] = ddb.get_item(
            TableName=restored, Key=schema.key_of(item), ConsistentRead=True
        )["Item"]
    ids = sorted(sc.base)
    third = n // 3
    for k in ids[:third]:  # the bug rewrote status and price
        item = {**sc.base[k], "status": {"S": "corrupted"}, "price": {"N": "0"}}
        ddb.put_item(TableName=table, Item=item)
        sc.corrupted[k] = item
        sc.updated.append(k)
    for k in ids[third : third + n // 6]:  # ... deleted some
        ddb.delete_item(TableName=table, Key=sc.key(k))
        sc.corrupted[k] = None
        sc.deleted.append(k)
    for j in range(n // 6):  # ... and created junk
        item = rich_item(schema, 500 + j)
        item["status"] = {"S": "junk"}
        ddb.put_item(TableName=table, Item=item)
        k = schema.key_id(schema.key_of(item))
        sc.corrupted[k] = item
        sc.created.append(k)
    sc.untouched = ids[third + n // 6 :]
    if build:
        keys_file = tmp_path / f"{name}-keys.jsonl"
        with open(keys_file, "w") as f:
            for k in [*sc.changed_ids(), *sc.untouched[:2]]:  # two untouched keys give "unchanged" entries
                f.write(json.dumps(schema.key_to_plain(sc.key(k))) + "\n")
        ctx.incident.update(restored_table_name=restored)
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        diff.build_plan(
            ctx, impacted_source="keys_file", keys_file=str(keys_file), incident_start=start, progress=False
        )
    return sc


def writes(sandbox: Any, before: dict[str, int]) -> int:
    now = sandbox.calls
    return sum(now.get(op, 0) - before.get(op, 0) for op in WRITE_OPS)


def journal(sc: Scenario) -> list[dict]:
    return list(iter_jsonl(sc.ctx.incident.path / patch.JOURNAL_FILE))


def backup(sc: Scenario) -> list[dict]:
    return list(iter_jsonl(sc.ctx.incident.path / patch.BACKUP_FILE))


def enable_stream(sc: Scenario) -> None:
    """Turn the live table's stream on: from now on every applied write is one stream record."""
    sc.ddb.update_table(
        TableName=sc.table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def stream_writes(sc: Scenario) -> Counter[str]:
    """How many writes were applied to each key since enable_stream (whatever API carried them)."""
    arn = sc.ddb.describe_table(TableName=sc.table)["Table"]["LatestStreamArn"]
    streams = sc.aws.client("dynamodbstreams")
    counts: Counter[str] = Counter()
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            for record in page["Records"]:
                counts[sc.schema.key_id(record["dynamodb"]["Keys"])] += 1
            iterator = page.get("NextShardIterator")
    return counts


def before_call(aws: Aws, op: str, hook: Callable[[dict[str, Any]], None]) -> None:
    """Run ``hook(params)`` before every ``op`` call of the DynamoDB clients made from now on with ``aws``'s
    session (the patch engine makes its own client from it), through the SDK's event hooks."""
    aws.session.events.register(f"provide-client-params.dynamodb.{op}", lambda params, **_: hook(params))


def keys_in(schema: KeySchema, params: dict[str, Any]) -> list[str]:
    """The key_ids a write call names (PutItem, DeleteItem, UpdateItem or TransactWriteItems)."""
    if "TransactItems" in params:
        ops = [next(iter(e.values())) for e in params["TransactItems"]]
        return [schema.key_id(op.get("Key") or schema.key_of(op["Item"])) for op in ops]
    return [schema.key_id(params.get("Key") or schema.key_of(params["Item"]))]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def answer_instead(
    aws: Aws, op: str, answer: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> list[dict]:
    """Answer ``op`` calls the way DynamoDB answers an error, without sending them, whenever
    ``answer(request_body)`` returns an error body (None: send the call as usual). Returns the bodies answered.
    """
    answered: list[dict] = []

    def hook(request: Any, **_: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith(f".{op}"):
            return None
        body = json.loads(request.body)
        error = answer(body)
        if error is None:
            return None
        answered.append(body)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": f"fake-{len(answered)}"}
        return AWSResponse(request.url, 400, headers, _Raw(json.dumps(error).encode()))

    aws.session.events.register("before-send.dynamodb", hook)
    return answered


def cancelled(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of a TransactionCanceledException with these CancellationReasons, as DynamoDB sends it."""
    codes = ", ".join(r["Code"] for r in reasons)
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        "CancellationReasons": reasons,
    }


def assert_recovered(sc: Scenario, ids: list[str]) -> None:
    for k in ids:
        live = sc.get(k)
        expected = sc.base.get(k)  # None for created-by-incident keys
        assert items_equal(live, expected), (k, live, expected)


# -- tests --------------------------------------------------------------------------------------------------
def test_dry_run_lists_the_writes_and_writes_nothing(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name)
    sc.approve()
    before_items, before_calls = sc.snapshot(), sandbox.calls
    report = patch.apply_plan(sc.ctx, progress=False)  # dry_run=True is the default
    assert writes(sandbox, before_calls) == 0
    assert sc.snapshot() == before_items
    assert not (sc.ctx.incident.path / patch.BACKUP_FILE).exists()
    frame = report.to_frame()
    assert len(frame) == len(sc.changed_ids())
    assert sorted(frame["action"].value_counts().items()) == [
        ("delete", len(sc.created)),
        ("put", len(sc.updated) + len(sc.deleted)),
    ]
    assert set(frame.columns) >= {"pk", "sk", "action", "condition"}
    assert "DRY RUN" in report.summary()
    assert report.would_write == {"put": len(sc.updated) + len(sc.deleted), "delete": len(sc.created)}


def test_approved_changes_are_patched_verified_and_unapproved_never_written(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name)
    rejected = (sc.updated[0], sc.deleted[0], sc.created[0])
    sc.approve(reject=rejected)
    approved = [k for k in sc.changed_ids() if k not in rejected]
    report = patch.apply_plan(sc.ctx, dry_run=False, max_workers=4, progress=False)
    assert report.ok, report.summary()
    assert report.patched == len(approved) and report.not_approved == len(rejected)
    assert_recovered(sc, approved)
    for k in rejected:  # still as the incident left it
        assert items_equal(sc.get(k), sc.corrupted[k])
    for k in sc.untouched:
        assert items_equal(sc.get(k), sc.base[k])
    # the backup holds every touched item as it was before the write (absent for deleted-by-incident keys)
    backed_up = {line["key_id"]: line["item"] for line in backup(sc)}
    assert set(backed_up) == set(approved)
    for k in approved:
        assert (backed_up[k] is None) == (sc.corrupted[k] is None)
    statuses = {line["key_id"]: line["status"] for line in journal(sc)}
    assert {statuses[k] for k in approved} == {"patched"}
    assert {statuses[k] for k in rejected} == {"skipped"}
    verification = patch.verify(sc.ctx)
    assert verification.ok and verification.matching == len(approved), verification.summary()
    events = {e["action"]: e for e in sc.ctx.incident.timeline}
    assert events["patch started"]["executor"] == aws.caller_arn
    assert events["patch finished"]["patched"] == len(approved)
    # running it again changes nothing: everything is final in the journal
    before = sandbox.calls
    again = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert writes(sandbox, before) == 0 and again.already_done == len(approved) and again.patched == 0


def test_a_legitimate_write_after_the_review_is_a_conflict_and_survives(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name)
    sc.approve()
    legit_update, legit_create = sc.updated[1], sc.deleted[1]
    fixed_by_app = {**sc.corrupted[legit_update], "status": {"S": "edited by a customer"}}
    sc.ddb.put_item(TableName=sc.table, Item=fixed_by_app)
    recreated = {**sc.base[legit_create], "status": {"S": "recreated by a customer"}}
    sc.ddb.put_item(TableName=sc.table, Item=recreated)
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert report.conflicts == 2 and not report.ok
    assert items_equal(sc.get(legit_update), fixed_by_app)
    assert items_equal(sc.get(legit_create), recreated)
    others = [k for k in sc.changed_ids() if k not in (legit_update, legit_create)]
    assert_recovered(sc, others)
    frame = report.to_frame()
    assert len(frame) == 2 and set(frame["status"]) == {"conflict"}
    conflict = next(c for c in report.conflict_items if c["key_id"] == legit_update)
    assert conflict["found"]["status"] == {"S": "edited by a customer"}
    assert conflict["reviewed"]["status"] == {"S": "corrupted"}
    verification = patch.verify(sc.ctx)
    assert verification.conflicts == 2 and verification.matching == len(others)


def test_attribute_level_restore_keeps_an_unrelated_legitimate_change(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name)
    sc.approve()
    k = sc.updated[0]
    legit = {**sc.corrupted[k], "flag": {"S": "changed by the app after the review"}}
    sc.ddb.put_item(TableName=sc.table, Item=legit)
    report = patch.apply_plan(sc.ctx, dry_run=False, attributes=["status", "price"], progress=False)
    assert report.ok, report.summary()
    now = sc.get(k)
    assert now["status"] == sc.base[k]["status"] and now["price"] == sc.base[k]["price"]
    assert now["flag"] == {"S": "changed by the app after the review"}
    for other in sc.updated[1:]:
        assert items_equal(sc.get(other), sc.base[other])
    assert_recovered(sc, [*sc.deleted, *sc.created])  # put back whole / deleted as usual
    actions = {line["key_id"]: line["action"] for line in journal(sc) if line["status"] == "patched"}
    assert {actions[x] for x in sc.updated} == {"revert-attributes"}
    assert {actions[x] for x in sc.deleted} == {"put"} and {actions[x] for x in sc.created} == {"delete"}
    assert patch.verify(sc.ctx).ok


def test_attribute_restore_removes_an_attribute_the_incident_added(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6, build=False)
    k = sc.untouched[0]
    sc.ddb.put_item(TableName=sc.table, Item={**sc.base[k], "debug": {"S": "added by the bug"}})
    keys_file = tmp_path / "keys.jsonl"
    keys_file.write_text(json.dumps(sc.schema.key_to_plain(sc.key(k))) + "\n")
    sc.ctx.incident.update(restored_table_name=sc.restored)
    diff.build_plan(
        sc.ctx,
        impacted_source="keys_file",
        keys_file=str(keys_file),
        incident_start="2020-01-01T00:00:00+00:00",
        progress=False,
    )
    sc.approve()
    report = patch.apply_plan(sc.ctx, dry_run=False, attributes=["debug"], progress=False)
    assert report.patched == 1
    assert items_equal(sc.get(k), sc.base[k])


@pytest.mark.parametrize("hash_key,range_key", [(("id", "N"), None), (("bin", "B"), ("n", "N"))])
def test_other_key_shapes(sandbox, aws, tmp_path, unique_name, hash_key, range_key):
    sc = make_scenario(aws, tmp_path, unique_name, n=12, hash_key=hash_key, range_key=range_key)
    sc.approve()
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert_recovered(sc, sc.changed_ids())
    frame = patch.apply_plan(sc.ctx, progress=False).writes
    assert list(frame.columns[: len(sc.schema.names)]) == list(sc.schema.names)


def test_refusals_come_before_any_write(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6, build=False)
    before = sandbox.calls
    with pytest.raises(InputError, match="04_diff"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    keys_file = tmp_path / "keys.jsonl"
    keys_file.write_text(
        "".join(json.dumps(sc.schema.key_to_plain(sc.key(k))) + "\n" for k in sc.changed_ids())
    )
    sc.ctx.incident.update(restored_table_name=sc.restored)
    diff.build_plan(
        sc.ctx,
        impacted_source="keys_file",
        keys_file=str(keys_file),
        incident_start="2020-01-01T00:00:00Z",
        progress=False,
    )
    with pytest.raises(ApprovalError, match="nothing .* is approved"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    sc.approve()
    with pytest.raises(ApprovalError, match="another person"):
        patch.apply_plan(sc.ctx, dry_run=False, require_distinct_approver=True, progress=False)
    for bad in ("status", ["pk"], ["sk", "status"], [""], []):
        with pytest.raises(InputError):
            patch.apply_plan(sc.ctx, dry_run=False, attributes=bad, progress=False)
    for kwargs in ({"max_workers": 0}, {"max_write_rate": -1}, {"segments": (3, 2)}, {"dry_run": "no"}):
        with pytest.raises(InputError):
            patch.apply_plan(sc.ctx, progress=False, **kwargs)
    # approvals for another plan: the live table changed, the plan was rebuilt, the old approval is stale
    approvals_file = sc.ctx.incident.path / planlib.APPROVALS_FILE
    stale = json.loads(approvals_file.read_text())
    stale["digest"] = "0" * 64
    approvals_file.write_text(json.dumps(stale))
    with pytest.raises(ApprovalError, match="re-approve"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    # an edited plan.jsonl (item changed, digests kept) is refused
    sc.approve()
    plan_file = sc.ctx.incident.path / planlib.PLAN_FILE
    lines = plan_file.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["restored"] = {**(entry["restored"] or entry["live"]), "status": {"S": "sneaky"}}
    plan_file.write_text("\n".join([json.dumps(entry), *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="edited"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert writes(sandbox, before) == 0
    assert not (sc.ctx.incident.path / patch.BACKUP_FILE).exists()


def test_a_distinct_approver_is_accepted(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve(approver="arn:aws:iam::123456789012:user/second-engineer")
    report = patch.apply_plan(sc.ctx, dry_run=False, require_distinct_approver=True, progress=False)
    assert report.ok and report.approved_by.endswith("second-engineer")
    assert_recovered(sc, sc.changed_ids())


def test_segments_split_one_plan_between_runs(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=18)
    sc.approve()
    first = patch.apply_plan(sc.ctx, dry_run=False, segments=(0, 2), progress=False)
    second = patch.apply_plan(sc.ctx, dry_run=False, segments=(1, 2), progress=False)
    assert first.patched + second.patched == len(sc.changed_ids()) and first.patched and second.patched
    assert_recovered(sc, sc.changed_ids())
    assert patch.verify(sc.ctx).ok


def test_binary_values_survive_the_backup_file(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    line = next(b for b in backup(sc) if b["item"] is not None)
    assert base64.b64decode(line["item"]["blob"]["B"])  # base64 text in the file, bytes again when read


def test_an_entry_approved_after_a_patch_is_patched_by_the_next_run(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    late = sc.updated[0]
    sc.approve(reject=(late,))
    first = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert first.not_approved == 1 and items_equal(sc.get(late), sc.corrupted[late])
    sc.approve()  # the same plan, now everything approved
    second = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert second.patch_id == first.patch_id and second.patched == 1
    assert_recovered(sc, sc.changed_ids())
    assert sum(1 for line in journal(sc) if line["key_id"] == late and line["status"] == "skipped") == 1


def test_big_items_are_split_into_transactions_under_4_mb(sandbox, aws, tmp_path, unique_name):
    # 15 items of ~300 KB: one transaction of them all would carry 4.5 MB of items (DynamoDB refuses over 4 MB)
    sc = make_scenario(aws, tmp_path, unique_name, n=3, build=False)
    blob = "b" * 300_000
    ids = []
    for i in range(15):
        item = {**rich_item(sc.schema, 900 + i), "blob": {"S": blob}}
        sc.ddb.put_item(TableName=sc.restored, Item=item)
        sc.ddb.put_item(TableName=sc.table, Item={**item, "status": {"S": "corrupted"}})
        ids.append(sc.schema.key_id(sc.schema.key_of(item)))
        sc.base[ids[-1]] = item
    keys_file = tmp_path / "big-keys.jsonl"
    keys_file.write_text("".join(json.dumps(sc.schema.key_to_plain(sc.key(k))) + "\n" for k in ids))
    sc.ctx.incident.update(restored_table_name=sc.restored)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    diff.build_plan(
        sc.ctx, impacted_source="keys_file", keys_file=str(keys_file), incident_start=start, progress=False
    )
    sc.approve()
    # one worker: all 15 keys reach it in one unit, so only the engine's sizes split them
    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode="transact", max_workers=1, progress=False)
    assert report.ok and report.patched == 15, report
    # the sandbox refuses a transaction over 4 MB of items: every item went by a transaction all the same
    assert report.writes_by_path == {"transact": 15, "single": 0}
    assert report.transactions >= 3 and report.transactions_cancelled == 0
    for k in ids:
        assert sc.get(k)["status"] == sc.base[k]["status"] and sc.get(k)["blob"] == {"S": blob}


def test_a_patch_leaves_the_kernels_garbage_collector_as_it_found_it(sandbox, aws, tmp_path, unique_name):
    # the engine collects less often while it runs (patch/gc_tuning.py); a notebook kernel must get its own
    # settings back after a patch and after an undo
    import gc

    sc = make_scenario(aws, tmp_path, unique_name, n=6)
    sc.approve()
    settings, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert patch.apply_plan(sc.ctx, dry_run=False, progress=False).ok
    assert (gc.get_threshold(), gc.get_freeze_count()) == (settings, frozen)
    patch.undo(sc.ctx, progress=False)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (settings, frozen)


def test_a_plan_edited_with_its_digests_recomputed_is_refused(sandbox, aws, tmp_path, unique_name):
    # the items of an entry and its digests edited together: each entry still matches its own digests, but
    # the plan no longer adds up to the digest the approvals are for
    from recovery_helpers.items import item_digest

    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    before = dict(sandbox.calls)
    plan_file = sc.ctx.incident.path / planlib.PLAN_FILE
    lines = plan_file.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if json.loads(line)["action"] == "put")
    entry = json.loads(lines[index])
    entry["restored"] = {**entry["restored"], "status": {"S": "sneaky"}}
    entry["restored_digest"] = item_digest(entry["restored"])
    lines[index] = json.dumps(entry, separators=(",", ":"))
    plan_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="plan digest"):
        patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert writes(sandbox, before) == 0
    assert all(sc.get(k) is None or sc.get(k)["status"] != {"S": "sneaky"} for k in sc.changed_ids())
