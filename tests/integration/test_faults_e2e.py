"""The runbook under faults, crashes and concurrent writers.

1. Every step of the runbook (the notebooks, headless) while the sandbox throttles, fails (5xx) or drops 20% of
   that step's calls; the table must end as the demo's ground truth says, or a step that stops must say what to
   do, and doing it must finish the recovery. IAM and STS calls are not faulted: the sandbox answers a fault
   on those (query-protocol, XML) services with a JSON body, which botocore cannot parse and does not retry;
   AWS answers them in XML.
2. 05_patch while the application keeps writing for the tenants that are not contained, and a stray writer
   changes contained items in the plan at chosen moments: legitimate writes survive, collisions are conflicts
   carrying both versions, every other planned item is patched.
3. A 2,000-item patch killed with SIGKILL at ~10%, ~50% and ~90% and run again: every approved change applied
   exactly once (counted on the table's stream), a backup of every touched item, verify() clean.
4. Lost answers and crashes around single requests: 03_restore's request (answer lost, or the kernel dying right
   after it), and 02_contain's first probes on a throttled table.

Faults are reproducible (fixed ``fault_seed`` per phase); each test prints what was injected (``-s`` shows it).
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections import Counter
from typing import Any

import pytest

from recovery_helpers import demo, diff, patch
from recovery_helpers import plan as planlib
from recovery_helpers.contain import contain
from recovery_helpers.context import open_context
from recovery_helpers.items import from_json_safe, items_equal
from recovery_helpers.patch.requests import project
from recovery_helpers.restore import restore_table
from recovery_helpers.runner import STEPS, run_steps
from tests.conftest import create_table, table_names
from tests.faults_support import (
    BIG_SCHEMA,
    PROBE_OPS,
    FaultLedger,
    admin_aws,
    batch_put,
    early_fault_seed,
    enable_stream,
    ground_truth,
    jsonl,
    live_items,
    run_child_until,
    stage_big_world,
    stage_demo,
    stream_writes,
)

#: The calls each step makes that faults are injected into (IAM and STS excepted: see the module docstring).
STEP_CALLS: dict[str, tuple[str, ...]] = {
    "prepare": (
        "DescribeTable",
        "DescribeContinuousBackups",
        "UpdateContinuousBackups",
        "GetParameter",
        "Scan",
        "DescribeLogGroups",
    ),
    "contain": ("DescribeTable", "GetParameter", "PutParameter", *PROBE_OPS),
    "restore": (
        "DescribeTable",
        "DescribeContinuousBackups",
        "RestoreTableToPointInTime",
        "ListTagsOfResource",
        "TagResource",
    ),
    "diff": ("DescribeTable", "BatchGetItem"),
    "patch": ("DescribeTable", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"),
    "lift": ("DescribeTable", "GetParameter", "PutParameter", "DeleteParameter", "DeleteTable", *PROBE_OPS),
}
#: A stopped step must say what to do next.
ACTIONABLE = re.compile(r"again|re-run|retry|later", re.IGNORECASE)
WRITE_MODES = (
    ("single", "transact") if "write_mode" in inspect.signature(patch.apply_plan).parameters else (None,)
)


def _run_step(
    sandbox: Any,
    ledger: FaultLedger,
    params: dict[str, Any],
    step: str,
    seed: int,
    operations: tuple[str, ...] | None = None,
) -> None:
    """Run one step's notebook under faults; if it stops, its message must say what to do, and running the step
    again (still under faults) must finish it."""
    operations = operations or STEP_CALLS[step]
    with ledger.phase(sandbox, step, operations, early_fault_seed(seed)) as phase:
        result = run_steps(params, [step], log=None)
        phase.outcome = "ok" if result.ok else f"stopped: {result.failed.error}"
    if result.ok:
        return
    error = result.failed.error or ""
    assert ACTIONABLE.search(error), f"step {step} stopped without saying what to do: {error}"
    with ledger.phase(sandbox, f"{step} (run again)", operations, early_fault_seed(seed + 500)) as phase:
        again = run_steps(params, [step], log=None)
        phase.outcome = "ok" if again.ok else f"stopped: {again.failed.error}"
    assert again.ok, again.summary()


# -- 1. faults on every step ------------------------------------------------------------------------------------
def test_every_step_under_faults_ends_with_the_ground_truth(sandbox, tmp_path):
    """Restore polls DescribeTable while the restored table is CREATING; the patch writes one item per call."""
    admin, incident, params = stage_demo(sandbox, tmp_path, "faultsteps")
    assert not demo.check(admin, incident).ok
    params = {**params, "poll_seconds": 0.2, "max_write_rate": 500.0}  # a rate limit: single writes
    sandbox.configure(restore_seconds=2.0)
    ledger = FaultLedger("every step, log_file source")
    # 01 also checks the change log's group and the audit table (more of its calls meet faults)
    names = incident.resources
    checks = {"log_group": names.log_group, "audit_table_name": names.audit_table}
    for n, step in enumerate(STEPS):
        _run_step(
            sandbox, ledger, {**params, **checks} if step == "prepare" else params, step, seed=6100 + 10 * n
        )
    print("\n" + ledger.report())

    outcome = demo.check(admin, incident)
    assert outcome.ok, outcome.lines()
    total = ledger.total()
    assert sum(total.values()) >= 20 and set(total) == {"throttle", "error", "drop"}, total
    assert all(p.faults for p in ledger.phases), "every step met faults (see early_fault_seed)"
    run_dir = tmp_path / "runs" / "faultsteps"
    journal = jsonl(run_dir / "journal.jsonl")
    assert {j["key_id"] for j in journal if j["status"] == "patched"} == ground_truth(incident)
    assert not [j for j in journal if j["status"] in ("failed", "conflict")]
    state = json.loads((run_dir / "incident.json").read_text())
    restore_done = next(e for e in state["timeline"] if e["action"] == "restore complete")
    assert restore_done["statuses"] == ["CREATING", "ACTIVE"]  # it polled through CREATING
    assert state["closed"]
    # lift put everything back: the parameter, the Deny, the restored table
    assert admin.ssm.get_parameter(Name=names.read_only_parameter)["Parameter"]["Value"] == "none"
    attached = admin.iam.list_attached_role_policies(RoleName=names.app_role)["AttachedPolicies"]
    assert not [p for p in attached if p["PolicyName"] == names.deny_policy]
    assert not [t for t in table_names(admin.dynamodb) if t.startswith(f"{names.table}-restored")]


def test_incremental_export_and_transactional_patch_under_faults(sandbox, tmp_path):
    """04_diff exports the incident window and reads it from S3 while DescribeExport and S3 GETs fail; the patch
    writes in transactions while they fail."""
    admin, incident, params = stage_demo(sandbox, tmp_path, "faultexport")
    bucket = "faultexport-exports"
    admin.s3.create_bucket(Bucket=bucket)
    params = {
        **params,
        "impacted_source": "incremental_export",
        "export_bucket": bucket,
        "source_options": {"export_min_window_seconds": 1},
    }
    params.pop("log_file")
    sandbox.configure(export_seconds=1.0)
    assert run_steps(
        params, ["prepare", "contain"], log=None
    ).ok  # no restored table: the export has both images
    polls = sandbox.calls.get("DescribeExport", 0)
    ledger = FaultLedger("incremental export + transactions")
    _run_step(
        sandbox,
        ledger,
        params,
        "diff",
        seed=6210,
        operations=(
            "DescribeTable",
            "DescribeContinuousBackups",
            "ExportTableToPointInTime",
            "DescribeExport",
            "S3:GET",
            "BatchGetItem",
        ),
    )
    _run_step(sandbox, ledger, params, "patch", seed=6220)
    _run_step(sandbox, ledger, params, "lift", seed=6230)
    print("\n" + ledger.report())

    outcome = demo.check(admin, incident)
    assert outcome.ok, outcome.lines()
    diff_phase = ledger.phases[0]
    assert diff_phase.faults and sandbox.calls.get("DescribeExport", 0) - polls >= 2  # it polled the export
    run_dir = tmp_path / "runs" / "faultexport"
    assert json.loads((run_dir / "plan.json").read_text())["sources"] == ["incremental_export"]
    journal = jsonl(run_dir / "journal.jsonl")
    patched = [j for j in journal if j["status"] == "patched"]
    assert {j["key_id"] for j in patched} == ground_truth(incident)
    assert any(j.get("via") == "TransactWriteItems" for j in patched)


# -- 2. concurrent writers during 05_patch ------------------------------------------------------------------------
class Interleaver:
    """Writes by others at exact moments of the patch, from the SDK's hooks on the patch's session and client
    (real writes to the sandbox through other clients, not mocks): a stray writer's change just before the patch
    reads or writes a chosen key, and one legitimate write by the application before each of the patch's calls."""

    def __init__(self, schema: Any, table: str) -> None:
        self.schema, self.table = schema, table
        self.before_read: dict[str, Any] = {}
        self.before_write: dict[str, Any] = {}
        self.app_writes: list[Any] = []
        self.fired: list[str] = []
        self.app_done = 0
        self.lock = threading.Lock()

    def keys(self, op: str, params: dict[str, Any]) -> list[str]:
        if op == "BatchGetItem":
            return [self.schema.key_id(k) for k in params["RequestItems"][self.table]["Keys"]]
        if op == "TransactWriteItems":
            out = []
            for element in params["TransactItems"]:
                (body,) = element.values()
                out.append(self.schema.key_id(body.get("Key") or self.schema.key_of(body["Item"])))
            return out
        return [self.schema.key_id(params.get("Key") or self.schema.key_of(params["Item"]))]

    def hook(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if context.setdefault(
            "interleaved", False
        ):  # registered on the session and the client: once per call
            return
        context["interleaved"] = True
        op = model.name
        moments = self.before_read if op == "BatchGetItem" else self.before_write
        with self.lock:
            for key_id in self.keys(op, params):
                change = moments.pop(key_id, None)
                if change is not None:
                    change()
                    self.fired.append(key_id)
            if self.app_done < len(self.app_writes):
                self.app_writes[self.app_done]()
                self.app_done += 1

    OPS = ("BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")

    def attach(self, aws: Any) -> None:
        """On the context's client and on its session, so that a client the engine makes from them has it too."""
        for emitter in (aws.session.events, aws.dynamodb.meta.events):
            for op in self.OPS:
                emitter.register(f"provide-client-params.dynamodb.{op}", self.hook)

    def detach(self, aws: Any) -> None:
        for emitter in (aws.session.events, aws.dynamodb.meta.events):
            for op in self.OPS:
                emitter.unregister(f"provide-client-params.dynamodb.{op}", self.hook)


@pytest.mark.parametrize("write_mode", WRITE_MODES)
def test_concurrent_writers_during_the_patch(sandbox, tmp_path, write_mode):
    prefix = f"race{write_mode or ''}"
    admin, incident, _params = stage_demo(sandbox, tmp_path, prefix)
    names = incident.resources
    ddb = admin.dynamodb
    # 02-04 in-process (the notebooks call these same functions; test 1 runs them as notebooks)
    ctx = open_context(
        prefix, incident.table_name, sandbox.region, sandbox.endpoint_url, str(tmp_path / "runs")
    )
    contain(
        ctx,
        tenants=incident.affected_tenants,
        app_role_name=names.app_role,
        read_only_parameter=names.read_only_parameter,
        deny_policy_name=names.deny_policy,
    )
    restore_table(
        ctx,
        restore_time=incident.restore_time,
        restore_indexes=False,
        incident_start=incident.incident_start,
        poll_seconds=0.1,
        progress=False,
    )
    diff.build_plan(
        ctx,
        impacted_source="log_file",
        log_file=incident.log_file,
        incident_start=incident.incident_start,
        incident_end=incident.incident_end,
        tenant_attribute="pk",
        tenants=incident.affected_tenants,
        progress=False,
    )
    diff.approve(ctx, approve=True)
    # The other tenants must keep working: the on-call detaches the role-wide Deny; the contained tenants stay
    # read-only through the parameter the application checks (its guard).
    admin.iam.detach_role_policy(RoleName=names.app_role, PolicyArn=ctx.incident.get("deny_policy_arn"))

    attrs = demo.CORRUPTED_ATTRIBUTES
    entries = {e.key_id: e for e in planlib.iter_plan(ctx.incident) if e.action != "none"}
    by_class: dict[str, list[str]] = {}
    for k, e in sorted(entries.items()):
        by_class.setdefault(e.classification, []).append(k)
    key = demo.KEY.key_from_id
    table = incident.table_name

    def get(k: str) -> dict[str, Any] | None:
        return ddb.get_item(TableName=table, Key=key(k), ConsistentRead=True).get("Item")

    before_patch = {
        demo.KEY.key_id(demo.KEY.key_of(i)): i
        for p in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for i in p["Items"]
    }
    stray: dict[str, dict[str, Any] | None] = {}  # key_id -> the item right after the stray write

    def stray_update(k: str, attribute: str, value: dict[str, Any]) -> Any:
        def run() -> None:
            ddb.update_item(
                TableName=table,
                Key=key(k),
                UpdateExpression="SET #a = :v",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": value},
            )
            stray[k] = get(k)

        return run

    def stray_put(k: str, item: dict[str, Any]) -> Any:
        def run() -> None:
            ddb.put_item(TableName=table, Item=item)
            stray[k] = get(k)

        return run

    changed, deleted, created = by_class["changed"], by_class["deleted"], by_class["created"]
    hooks = Interleaver(demo.KEY, table)
    # collisions: a reverted attribute changed before the write / before the read; a deleted order put back by
    # hand with other content; a duplicate order edited; and one change the patch must merge with (a note)
    hooks.before_write[changed[0]] = stray_update(changed[0], "currency", {"S": "CHF"})
    hooks.before_read[changed[1]] = stray_update(changed[1], "total", {"N": "12.5"})
    recreated = {**entries[deleted[0]].restored, "status": {"S": "recreated by support"}}
    hooks.before_write[deleted[0]] = stray_put(deleted[0], recreated)
    hooks.before_write[created[0]] = stray_update(created[0], "status", {"S": "kept by support"})
    hooks.before_write[changed[2]] = stray_update(changed[2], "notes", {"S": "support note"})
    collisions = {changed[0], changed[1], deleted[0], created[0]}
    merged = changed[2]

    # the application: writes for tenants that are not contained, one before each of the patch's calls
    app_aws = admin.assume_role(f"arn:aws:iam::{admin.account_id}:role/{names.app_role}", "orders-app")
    app = demo.DemoApp(
        app_aws, tmp_path / "app-changes.jsonl", names=names, cloudwatch=False, clock=sandbox.clock.now
    )
    app_state: dict[str, dict[str, Any] | None] = {}
    free = sorted(k for k, item in before_patch.items() if item["pk"]["S"] not in incident.affected_tenants)

    def app_write(n: int) -> Any:
        k = free[n]
        tenant = before_patch[k]["pk"]["S"]

        def run() -> None:
            if n % 3 == 0:
                assert app.update(key(k), "SET #s = :s", {":s": {"S": f"shipped-{n}"}}, {"#s": "status"})
                app_state[k] = get(k)
            elif n % 3 == 1:
                new = {
                    "pk": {"S": tenant},
                    "sk": {"S": f"order#7{n:04d}"},
                    "status": {"S": "open"},
                    "total": {"N": f"{n}.5"},
                    "currency": {"S": "EUR"},
                }
                assert app.put(new, "create")
                app_state[demo.KEY.key_id(demo.KEY.key_of(new))] = get(demo.KEY.key_id(demo.KEY.key_of(new)))
            else:
                assert app.delete(key(k))
                app_state[k] = None

        return run

    hooks.app_writes = [app_write(n) for n in range(30)]
    # a write for a contained tenant is refused by the application itself
    assert not app.update(key(changed[3]), "SET #s = :s", {":s": {"S": "should not land"}}, {"#s": "status"})
    assert app.refused == 1

    kwargs = {"write_mode": write_mode} if write_mode else {}
    hooks.attach(ctx.aws)
    try:
        report = patch.apply_plan(
            ctx, dry_run=False, max_workers=4, attributes=attrs, progress=False, **kwargs
        )
    finally:
        hooks.detach(ctx.aws)
    assert sorted(hooks.fired) == sorted(collisions | {merged}), "every stray write happened inside the patch"
    assert hooks.app_done >= 5, "the application wrote while the patch ran"
    print(
        f"\n[race] {write_mode}: {hooks.app_done} application writes and {len(hooks.fired)} stray writes "
        f"during the patch; report: patched {report.patched}, conflicts {report.conflicts}"
    )

    # every legitimate write survives, as its writer left it
    for k, item in app_state.items():
        assert items_equal(get(k), item), ("application write lost", k)
    for k in collisions:
        assert items_equal(get(k), stray[k]), ("stray write overwritten", k)
    merged_expected = {
        **stray[merged],
        **{a: entries[merged].restored[a] for a in attrs if a in entries[merged].restored},
    }
    assert items_equal(get(merged), merged_expected)  # the note kept, the corrupted attributes reverted
    # each collision is one conflict in the journal, with the reviewed and the found version
    journal = jsonl(ctx.incident.path / patch.JOURNAL_FILE)
    conflicts = {j["key_id"]: j for j in journal if j["status"] == "conflict"}
    assert set(conflicts) == collisions and report.conflicts == len(collisions)
    for k, line in conflicts.items():
        entry = entries[k]
        reviewed = project(entry.live, attrs if entry.classification == "changed" else None)
        assert items_equal(from_json_safe(line["reviewed"]), reviewed), k
        assert items_equal(from_json_safe(line["found"]), stray[k]), k
    # every other planned item is patched, and nothing else changed
    statuses = {j["key_id"]: j["status"] for j in journal}
    assert {statuses[k] for k in entries if k not in collisions} == {"patched"}
    assert report.patched == len(entries) - len(collisions) and report.failed == 0
    outcome = demo.check(admin, incident)
    off_truth = set(outcome.missing) | set(outcome.unexpected) | set(outcome.different)
    assert off_truth == collisions | {merged} | set(app_state), "only the other writers' items differ"
    check = patch.verify(ctx)
    assert check.conflicts == len(collisions) and not check.mismatched and check.pending == 0


# -- 3. killed and run again ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_world(sandbox, tmp_path_factory):
    """2,100 pre-incident items in a "restored" table (shared, never written by the tests), and the incident."""
    aws = admin_aws(sandbox)
    restored = create_table(
        aws.dynamodb, "faults-big-restored", hash_key=("account", "S"), range_key=("seq", "N"), pitr=False
    )
    return stage_big_world(aws.dynamodb, restored, tmp_path_factory.mktemp("big"))


KILL_POINTS = (0.10, 0.50, 0.90)
WORKERS = 4


@pytest.mark.parametrize("write_mode", WRITE_MODES)
def test_a_patch_killed_at_10_50_90_percent_ends_correct(sandbox, tmp_path, big_world, write_mode):
    """Killed (SIGKILL, a write in flight each time) after ~10%, ~50% and ~90% of the 2,000 approved items, then
    run again: each approved change applied exactly once, a backup of every touched item, verify() clean."""
    aws = admin_aws(sandbox)
    ddb = aws.dynamodb
    table = create_table(
        ddb,
        f"faults-big-live-{write_mode or 'default'}",
        hash_key=("account", "S"),
        range_key=("seq", "N"),
        pitr=False,
    )
    batch_put(ddb, table, live_items(big_world))
    runs = tmp_path / "runs"
    ctx = open_context("killed", table, sandbox.region, sandbox.endpoint_url, str(runs), aws=aws)
    ctx.incident.update(restored_table_name=big_world.restored)
    diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=str(big_world.keys_file),
        incident_start="2020-01-01T00:00:00+00:00",
        progress=False,
    )
    diff.approve(ctx, approve=True)
    approved = big_world.approved
    assert len(approved) == 2000
    enable_stream(ddb, table)  # from here on, one stream record per applied write
    calls = sandbox.calls

    kills = []
    for fraction in KILL_POINTS:
        kills.append(
            run_child_until(
                sandbox,
                runs,
                "killed",
                table,
                patched_at=int(fraction * len(approved)),
                write_mode=write_mode,
                max_workers=WORKERS,
            )
        )
    report = patch.apply_plan(
        ctx, dry_run=False, progress=False, **({"write_mode": write_mode} if write_mode else {})
    )
    writes = {
        op: sandbox.calls.get(op, 0) - calls.get(op, 0)
        for op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
    }
    print(
        f"\n[kill] {write_mode}: killed at {[k.patched for k in kills]} journaled items, "
        f"{[len(k.in_flight) for k in kills]} writes in flight; the last run patched {report.patched} "
        f"(already done {report.already_done}); write calls {writes}"
    )

    assert [k.patched for k in kills] == sorted(k.patched for k in kills)
    assert all(k.at <= k.patched < len(approved) for k in kills)
    assert report.failed == 0 and report.conflicts == 0, report.summary()
    assert report.already_done + report.patched + report.ambiguous == len(approved)
    journal = jsonl(runs / "killed" / patch.JOURNAL_FILE)
    ambiguous = {j["key_id"]: j for j in journal if j["status"] == "ambiguous"}
    in_flight = {k for kill in kills for k in kill.in_flight}
    # transactions in flight are replayed with their ClientRequestToken (DynamoDB tells whether they ran);
    # single writes in flight cannot be told from another writer's: reported, both versions, never guessed
    if write_mode != "single":
        assert not ambiguous, sorted(ambiguous)[:5]
    assert set(ambiguous) <= in_flight
    live = {
        BIG_SCHEMA.key_id(BIG_SCHEMA.key_of(i)): i
        for p in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for i in p["Items"]
    }
    for k, line in ambiguous.items():
        assert items_equal(from_json_safe(line["found"]), live.get(k))
        assert items_equal(from_json_safe(line["before"]), big_world.corrupted[k])
        assert items_equal(live.get(k), big_world.corrupted[k]) or items_equal(
            live.get(k), big_world.base.get(k)
        )
    # each approved change applied at most once (one stream record per applied write), none elsewhere; only
    # an ambiguous key may be unwritten (its write never landed)
    applied = stream_writes(aws, table, BIG_SCHEMA)
    assert set(applied) <= set(approved) and set(approved) - set(applied) <= set(ambiguous)
    assert set(applied.values()) == {1}, Counter(applied.values())
    if write_mode == "single":
        # one call per approved key, plus at most one per worker and kill: a request the kill cut between its
        # headers and its body (botocore sends them apart) is counted by the sandbox, never applied
        sent = writes["PutItem"] + writes["DeleteItem"]
        assert len(approved) - len(ambiguous) <= sent <= len(approved) + len(kills) * WORKERS
        assert writes["TransactWriteItems"] == 0
    # the journal: one final outcome per key, patched unless ambiguous
    finals = Counter(j["key_id"] for j in journal if j["status"] in patch.FINAL)
    assert set(finals) == set(approved) and set(finals.values()) == {1}
    assert {j["status"] for j in journal if j["status"] in patch.FINAL} <= {"patched", "ambiguous"}
    # the backup: every touched item, as the incident left it
    reads = [b for b in jsonl(runs / "killed" / patch.BACKUP_FILE) if b["source"] == "read"]
    assert {b["key_id"] for b in reads} == set(approved)
    for b in reads:
        assert items_equal(from_json_safe(b["item"]), big_world.corrupted[b["key_id"]]), b["key_id"]
    # the table: the pre-incident items, the junk gone (ambiguous keys as found)
    expected = {k: v for k, v in big_world.base.items() if k not in ambiguous}
    expected.update({k: live[k] for k in ambiguous if k in live})
    assert set(live) == set(expected)
    assert all(items_equal(live[k], expected[k]) for k in live)
    verification = patch.verify(ctx)
    assert verification.ambiguous == len(ambiguous) and not verification.mismatched, verification.summary()
    assert verification.matching == len(approved) - len(ambiguous)
    assert in_flight and in_flight <= set(approved)


# -- 4. the restore request's answer lost, or the kernel dying right after it ---------------------------------
def _restore_world(aws, sandbox, tmp_path, name):
    """A table with PITR whose only item was good before ``t`` and broken after it."""
    ddb = aws.dynamodb
    table = create_table(ddb, name)
    ddb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "status": {"S": "good"}})
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    ddb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "status": {"S": "BROKEN"}})
    ctx = open_context("restore-faults", table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws)
    return table, t, ctx


def _restored_status(aws, result) -> dict[str, Any]:
    return aws.dynamodb.get_item(
        TableName=result.restored_table_name, Key={"pk": {"S": "t1"}, "sk": {"S": "a"}}
    )["Item"]["status"]


def test_a_lost_answer_to_the_restore_request_does_not_stop_the_restore(sandbox, tmp_path, unique_name):
    """AWS started the restore but its answer was lost, so the SDK asked again: AWS answers the second request
    with TableAlreadyExistsException. That table is the restore this step asked for: wait for it."""
    aws = admin_aws(sandbox)
    _table, t, ctx = _restore_world(aws, sandbox, tmp_path, unique_name)
    resent = []

    def lose_first_answer(attempts: int, response: Any = None, **_: Any) -> float | None:
        if attempts == 1 and not resent and response and response[0].status_code == 200:
            resent.append(True)
            return 0.0  # as if the answer never arrived: botocore sends the request again
        return None

    ctx.aws.dynamodb.meta.events.register_first(
        "needs-retry.dynamodb.RestoreTableToPointInTime", lose_first_answer
    )
    calls = sandbox.calls
    sandbox.configure(restore_seconds=0.5)
    result = restore_table(ctx, restore_time=t.isoformat(), poll_seconds=0.1, progress=False)
    assert (
        resent and sandbox.calls["RestoreTableToPointInTime"] - calls.get("RestoreTableToPointInTime", 0) == 2
    )
    assert result.status == "ACTIVE" and _restored_status(aws, result) == {"S": "good"}
    assert ctx.incident.get("restored_table_name") == result.restored_table_name
    assert ctx.incident.get("restore_status") == "ACTIVE"


class _Crash(BaseException):
    """The kernel dying (not an exception any code catches)."""


def test_a_kernel_dying_right_after_the_restore_request_resumes_on_rerun(sandbox, tmp_path, unique_name):
    """The restore was started, then the process died before it noted anything: running the step again must wait
    for that restore, not refuse it as someone else's table nor start another."""
    aws = admin_aws(sandbox)
    table, t, ctx = _restore_world(aws, sandbox, tmp_path, unique_name)

    def die(**_: Any) -> None:
        raise _Crash()

    ctx.aws.dynamodb.meta.events.register("after-call.dynamodb.RestoreTableToPointInTime", die)
    calls = sandbox.calls
    sandbox.configure(restore_seconds=0.5)
    with pytest.raises(_Crash):
        restore_table(ctx, restore_time=t.isoformat(), poll_seconds=0.1, progress=False)
    ctx.aws.dynamodb.meta.events.unregister("after-call.dynamodb.RestoreTableToPointInTime", die)
    again = open_context(
        "restore-faults", table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws
    )
    result = restore_table(again, restore_time=t.isoformat(), poll_seconds=0.1, progress=False)
    assert result.resumed and result.status == "ACTIVE" and _restored_status(aws, result) == {"S": "good"}
    assert sandbox.calls["RestoreTableToPointInTime"] - calls.get("RestoreTableToPointInTime", 0) == 1
    assert again.incident.get("restored_table_name") == result.restored_table_name


# -- 5. containment's first look at the write paths, on a throttled table ----------------------------------------
def _seed_for(pattern: str, rate: float, base: int) -> int:
    """The first seed from ``base`` whose first draws follow ``pattern`` ("F": a fault at ``rate``, ".": none)."""
    import random

    seed = base
    while True:
        rng = random.Random(seed)
        if all((rng.random() < rate) == (c == "F") for c in pattern):
            return seed
        seed += 1


def test_a_throttled_probe_before_containment_is_probed_again(sandbox, tmp_path, unique_name):
    """02_contain first learns which write paths the application uses (06_lift checks it gets them back). On a
    table that throttles (a runaway writer is often the incident), a probe whose retries all meet throttling
    is asked again instead of leaving that path out of what lift verifies."""
    from recovery_helpers.lift import lift
    from tests.containment_support import make_app_role

    aws = admin_aws(sandbox)
    table = create_table(aws.dynamodb, unique_name)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "1"}})
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    ctx = open_context("contain-faults", table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws)
    ledger = FaultLedger("throttled baseline probe")
    # the first 3 BatchWriteItem calls (the baseline probe and its 2 SDK retries) are throttled, the 4th is not,
    # then 30% of them
    seed = _seed_for("FFF.", 0.3, 6400)
    with ledger.phase(
        sandbox, "contain", ("BatchWriteItem",), seed, throttle_rate=0.3, error_rate=0.0, drop_rate=0.0
    ):
        report = contain(
            ctx,
            app_role_name=role,
            read_only_parameter=f"ro-{unique_name}",
            deny_policy_name=f"deny-{unique_name}"[:120],
            verify_timeout_seconds=20,
            poll_initial_seconds=0.05,
        )
    print("\n" + ledger.report())
    assert ledger.total()["throttle"] >= 3
    assert report.verification is not None and report.verification.ok
    before = ctx.incident.get("write_paths_before")
    assert "BatchWriteItem" in before, before
    lifted = lift(ctx, verify_timeout_seconds=5, poll_initial_seconds=0.05)
    assert "BatchWriteItem" in {r.path for r in lifted.verification.results if r.outcome == "allowed"}
