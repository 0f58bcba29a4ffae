"""Helpers for tests/integration/test_faults_e2e.py: fault phases that count what the sandbox injected, a staged demo, the
big staged plan for the kill tests, a patch in a child process, and the live table's stream as a write count."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from recovery_helpers import demo
from recovery_helpers.aws import Aws
from recovery_helpers.items import KeySchema, iter_chunks

REPO = Path(__file__).resolve().parents[1]
#: 20% of the named calls fail, in the three ways AWS fails: throttled, 5xx, connection dropped.
RATES = {"throttle_rate": 0.1, "error_rate": 0.05, "drop_rate": 0.05}
NO_FAULTS = {"throttle_rate": 0.0, "error_rate": 0.0, "drop_rate": 0.0, "fault_operations": []}
#: The write paths containment probes (and lift probes again), as the sandbox names their calls.
PROBE_OPS = (
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
    "GetItem",
    "Scan",
)
ITEM_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def early_fault_seed(base: int, draws: int = 2) -> int:
    """The first seed from ``base`` whose first ``draws`` draws include a fault at RATES: a step that makes at least
    that many targeted calls meets a fault whatever order its calls come in (chosen, not fished for)."""
    total = sum(RATES.values())
    seed = base
    while True:
        rng = random.Random(seed)
        if any(rng.random() < total for _ in range(draws)):
            return seed
        seed += 1


def admin_aws(sandbox: Any) -> Aws:
    """Clients as the sandbox administrator (the test's own hands: staging, stray writes, checks)."""
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    return Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)


# -- fault phases ----------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    seed: int
    operations: list[str]
    faults: dict[str, int]
    calls: int
    seconds: float
    outcome: str = "ok"


@dataclass
class FaultLedger:
    """Every fault phase of one test: which calls were targeted, what was injected, how it ended."""

    test: str
    phases: list[Phase] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(
        self, sandbox: Any, name: str, operations: Sequence[str], seed: int, **rates: float
    ) -> Iterator[Phase]:
        """Inject faults into ``operations`` (reproducibly: ``seed``) for the duration of the block."""
        if seed == sandbox.settings.fault_seed:
            # the sandbox reseeds its fault generator only when the seed changes
            raise ValueError(f"fault_seed {seed} is the current one: give each phase its own seed")
        faults0, calls0 = sandbox.faults, sandbox.calls
        sandbox.configure(**{**RATES, **rates}, fault_seed=seed, fault_operations=list(operations))
        started = time.monotonic()
        phase = Phase(name, seed, list(operations), {}, 0, 0.0)
        try:
            yield phase
        finally:
            sandbox.configure(**NO_FAULTS)
            faults1, calls1 = sandbox.faults, sandbox.calls
            phase.faults = {
                k: faults1.get(k, 0) - faults0.get(k, 0)
                for k in faults1
                if faults1.get(k, 0) != faults0.get(k, 0)
            }
            phase.calls = sum(calls1.get(op, 0) - calls0.get(op, 0) for op in operations)
            phase.seconds = time.monotonic() - started
            self.phases.append(phase)

    def total(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for p in self.phases:
            out.update(p.faults)
        return out

    def report(self) -> str:
        total = self.total()
        lines = [f"[faults] {self.test}: injected {dict(total)} ({sum(total.values())} in all)"]
        for p in self.phases:
            lines.append(
                f"[faults]   {p.name:<22} seed={p.seed:<5} {p.calls:>4} targeted calls, injected "
                f"{p.faults or '{}'}, {p.seconds:5.1f}s, {p.outcome}"
            )
        return "\n".join(lines)


# -- the demo incident -------------------------------------------------------------------------------------------
def stage_demo(sandbox: Any, tmp_path: Path, prefix: str) -> tuple[Aws, demo.DemoIncident, dict[str, Any]]:
    """The demo incident (25 orders per tenant) under its own names, and its parameters for all six steps."""
    admin = admin_aws(sandbox)
    incident = demo.stage(
        admin,
        tmp_path / "world",
        orders_per_tenant=25,
        names=demo.Names.for_prefix(prefix),
        clock=sandbox.clock.now,
    )
    params = demo.demo_parameters(
        incident, incident_id=prefix, endpoint_url=sandbox.endpoint_url, runs_dir=str(tmp_path / "runs")
    )
    return admin, incident, params


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def ground_truth(incident: demo.DemoIncident) -> set[str]:
    return {line["key_id"] for line in jsonl(Path(incident.ground_truth_file))}


# -- a big staged plan (kill tests) -------------------------------------------------------------------------------
BIG_SCHEMA = KeySchema("account", "S", "seq", "N")


def big_item(i: int, **changes: Any) -> dict[str, Any]:
    """An item of the big table: string hash key, number range key, several attribute types."""
    item = {
        "account": {"S": f"acct-{i % 13:02d}"},
        "seq": {"N": str(i)},
        "state": {"S": "ok"},
        "balance": {"N": f"{i}.25"},
        "tags": {"SS": ["a", f"t{i % 5}"]},
        "meta": {"M": {"rev": {"N": "1"}, "blob": {"B": bytes([i % 256, 7])}}},
        "hist": {"L": [{"N": str(i)}, {"BOOL": i % 2 == 0}, {"NULL": True}]},
    }
    item.update(changes)
    return item


def batch_put(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for chunk in iter_chunks(items, 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


@dataclass
class BigWorld:
    """The pre-incident items (in a "restored" table) and what the incident did to the live copy."""

    restored: str
    base: dict[str, dict[str, Any]]  # key_id -> pre-incident item
    corrupted: dict[str, dict[str, Any] | None]  # key_id -> the live item after the incident (None: deleted)
    keys_file: Path
    untouched: list[str]

    @property
    def approved(self) -> list[str]:
        return sorted(self.corrupted)


def stage_big_world(
    ddb: Any,
    restored: str,
    directory: Path,
    *,
    items: int = 2100,
    updated: int = 1500,
    deleted: int = 300,
    created: int = 200,
) -> BigWorld:
    """The restored table with ``items`` items; the incident updates, deletes and creates 2,000 of them."""
    schema = BIG_SCHEMA
    base_items = [big_item(i) for i in range(items)]
    batch_put(ddb, restored, base_items)
    base = {schema.key_id(schema.key_of(it)): it for it in base_items}
    ids = [schema.key_id(schema.key_of(it)) for it in base_items]
    corrupted: dict[str, dict[str, Any] | None] = {}
    for k in ids[:updated]:
        corrupted[k] = {**base[k], "state": {"S": "CORRUPTED"}, "balance": {"N": "0"}}
    for k in ids[updated : updated + deleted]:
        corrupted[k] = None
    for j in range(created):
        junk = big_item(100_000 + j, state={"S": "junk"})
        corrupted[schema.key_id(schema.key_of(junk))] = junk
    untouched = ids[updated + deleted :]
    keys_file = directory / "impacted-keys.jsonl"
    directory.mkdir(parents=True, exist_ok=True)
    with keys_file.open("w") as fh:
        for k in [*sorted(corrupted), *untouched[:5]]:  # five untouched keys: "unchanged" entries
            fh.write(json.dumps(schema.key_to_plain(schema.key_from_id(k))) + "\n")
    return BigWorld(restored, base, corrupted, keys_file, untouched)


def live_items(world: BigWorld) -> list[dict[str, Any]]:
    """The live table right after the incident."""
    out = [it for k, it in world.corrupted.items() if it is not None]
    out += [world.base[k] for k in world.base if k not in world.corrupted]
    return out


# -- a patch in a child process, and watching its files --------------------------------------------------------
CHILD = """
import sys
from recovery_helpers.context import open_context
from recovery_helpers.patch import apply_plan
incident_id, table, endpoint, runs_dir, workers, mode = sys.argv[1:7]
ctx = open_context(incident_id, table, "us-east-1", endpoint, runs_dir)
kwargs = {"write_mode": mode} if mode != "-" else {}
apply_plan(ctx, dry_run=False, max_workers=int(workers), progress=False, **kwargs)
"""


class LineCounter:
    """Counts the complete lines of a growing JSON-lines file, reading only what was appended since last time."""

    def __init__(self, path: Path, predicate: Any = None) -> None:
        self.path, self.predicate = path, predicate
        self.offset, self.count, self.keys = 0, 0, set()
        self._partial = b""

    def poll(self) -> int:
        if not self.path.exists():
            return self.count
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if self.predicate is None or self.predicate(line):
                self.count += 1
                self.keys.add(line.get("key_id"))
        return self.count


@dataclass
class Kill:
    at: int  # patched lines the test waited for
    patched: int  # patched lines when the child was killed
    in_flight: list[str]  # key_ids backed up by the killed run without an outcome (written or not: unknown)


def run_child_until(
    sandbox: Any,
    run_dir: Path,
    incident_id: str,
    table: str,
    *,
    patched_at: int,
    write_mode: str | None,
    max_workers: int = 4,
    deadline_seconds: float = 60.0,
) -> Kill:
    """Start the patch in a child process; SIGKILL it once ``patched_at`` keys are journaled as patched and
    some backed-up keys have no outcome yet (a write in flight). Fails if the child finishes first."""
    journal = LineCounter(
        run_dir / incident_id / "journal.jsonl",
        lambda x: x.get("status") in ("patched", "unchanged", "conflict", "failed"),
    )
    backups = LineCounter(run_dir / incident_id / "backup.jsonl", lambda x: x.get("source") == "read")
    journal.poll(), backups.poll()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            incident_id,
            table,
            sandbox.endpoint_url,
            str(run_dir),
            str(max_workers),
            write_mode or "-",
        ],
        cwd=REPO,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + deadline_seconds
    try:
        while child.poll() is None and time.monotonic() < deadline:
            journal.poll()
            backups.poll()
            if journal.count >= patched_at and backups.keys - journal.keys:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)  # a poll interval, not a wait for luck: the condition decides
    finally:
        if child.poll() is None and time.monotonic() >= deadline:
            child.kill()
        child.wait()
    err = child.stderr.read().decode() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL, (
        f"the child patch was to be killed after {patched_at} items, but it ended with {child.returncode} "
        f"at {journal.count} journaled items: {err[-2000:]}"
    )
    # what the files hold after the kill (a torn last line is not complete, and is not counted)
    journal.poll()
    backups.poll()
    return Kill(patched_at, journal.count, sorted(backups.keys - journal.keys))


# -- the stream as a count of applied writes -----------------------------------------------------------------
def enable_stream(ddb: Any, table: str) -> None:
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )


def stream_writes(aws: Aws, table: str, schema: KeySchema) -> Counter[str]:
    """How many times each key was written since the stream was enabled (one record per applied write)."""
    arn = aws.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = aws.client("dynamodbstreams")
    counts: Counter[str] = Counter()
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page.get("Records"):
                break
            for record in page["Records"]:
                counts[schema.key_id(record["dynamodb"]["Keys"])] += 1
            iterator = page.get("NextShardIterator")
    return counts
