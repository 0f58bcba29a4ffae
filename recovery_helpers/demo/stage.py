"""The demo incident: a multi-tenant orders table, a buggy deploy, and the ground truth to check recovery against.

``stage`` builds the world in an AWS endpoint (the sandbox): a table with PITR, a GSI and every attribute type; an
application role; the read-only parameter; a CloudWatch log group, an audit table fed by the table's stream. The
simulated application (``DemoApp``) writes through the app-side kit (read-only guard, change logger) as the app
role. Then deploy "v2.3.1" corrupts orders of two tenants for a while (multiplies ``total`` by 100, sets
``currency`` to ``XXX``, drops ``shipping.address``; deletes some orders; creates duplicates) while every tenant
keeps writing legitimately, some of them to orders the bug touched (a ``notes`` attribute). The model of what the
table must look like after a correct recovery is written beside the change log.

``demo.run.main`` (what ``recovery demo`` and ``make demo`` run): a sandbox, the incident, the six notebooks
headless, and ``demo.check``'s comparison of the whole table against the model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..items import KeySchema, from_json_safe, iter_chunks, to_json_safe

TENANT_ATTRIBUTE = "pk"
CORRUPTED_ATTRIBUTES = ["total", "currency", "shipping"]
KEY = KeySchema("pk", "S", "sk", "S")


@dataclass(frozen=True)
class Names:
    """The demo's AWS resource names; the default prefix gives the contract's defaults."""

    table: str = "demo-orders"
    app_role: str = "demo-app"
    read_only_parameter: str = "read-only-customers"
    deny_policy: str = "DenyWrite"
    log_group: str = "/demo/orders-app"
    audit_table: str = "demo-orders-audit"

    @classmethod
    def for_prefix(cls, prefix: str = "demo") -> Names:
        if prefix == "demo":
            return cls()
        return cls(
            f"{prefix}-orders",
            f"{prefix}-app",
            f"{prefix}-read-only-customers",
            f"{prefix}-DenyWrite",
            f"/{prefix}/orders-app",
            f"{prefix}-orders-audit",
        )


DEFAULT = Names()
TABLE, APP_ROLE, READ_ONLY_PARAMETER = DEFAULT.table, DEFAULT.app_role, DEFAULT.read_only_parameter
DENY_POLICY, LOG_GROUP, AUDIT_TABLE = DEFAULT.deny_policy, DEFAULT.log_group, DEFAULT.audit_table


@dataclass
class DemoIncident:
    """What stage() produced: the facts an on-call engineer would have, and where the ground truth is."""

    table_name: str
    affected_tenants: list[str]
    restore_time: str
    incident_start: str
    incident_end: str
    log_file: str
    ground_truth_file: str
    expected_file: str
    corrupted: dict[str, int] = field(default_factory=dict)
    items: int = 0
    legitimate_writes: int = 0
    names: dict[str, str] = field(default_factory=lambda: asdict(DEFAULT))

    @property
    def resources(self) -> Names:
        return Names(**self.names)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> DemoIncident:
        return cls(**json.loads(path.read_text()))


# -- the simulated application -------------------------------------------------------------------------------
class DemoApp:
    """The orders service: writes as the app role, logs every change, refuses writes for read-only tenants."""

    def __init__(
        self,
        app: Aws,
        log_file: Path,
        *,
        names: Names = DEFAULT,
        cloudwatch: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from ..appkit.change_logger import ChangeLogger
        from ..appkit.guard import ReadOnlyGuard

        self.ddb = app.dynamodb
        self.table = names.table
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.file_log = logging.getLogger(f"demo-changes-{id(self)}")
        self.file_log.propagate = False
        self.file_log.setLevel(logging.INFO)
        self.file_log.addHandler(handler)
        self.changes = ChangeLogger(self.file_log, clock)
        self.cloudwatch = (
            ChangeLogger(
                None, clock, logs_client=app.logs, log_group=names.log_group, log_stream="orders-app"
            )
            if cloudwatch
            else None
        )
        self.guard = ReadOnlyGuard(names.read_only_parameter, ssm_client=app.ssm, ttl_seconds=1)
        self.refused = 0

    def _log(self, key: dict[str, Any], action: str, ship: bool = True) -> None:
        plain = {name: value["S"] for name, value in key.items()}
        self.changes.log_change(plain, action)
        if ship and self.cloudwatch is not None:
            self.cloudwatch.log_change(plain, action)

    def load(self, items: Iterable[dict[str, Any]]) -> None:
        """Initial data, batched (logged as creates to the file only: before log shipping was set up)."""
        for chunk in iter_chunks(items, 25):
            request = {self.table: [{"PutRequest": {"Item": item}} for item in chunk]}
            while request:
                request = self.ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            for item in chunk:
                self._log(KEY.key_of(item), "create", ship=False)

    def put(self, item: dict[str, Any], action: str) -> bool:
        if self.guard.is_read_only(item["pk"]["S"]):
            self.refused += 1
            return False
        self.ddb.put_item(TableName=self.table, Item=item)
        self._log(KEY.key_of(item), action)
        return True

    def update(
        self,
        key: dict[str, Any],
        expression: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        if self.guard.is_read_only(key["pk"]["S"]):
            self.refused += 1
            return False
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": key, "UpdateExpression": expression}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        self.ddb.update_item(**kwargs)
        self._log(key, "update")
        return True

    def delete(self, key: dict[str, Any]) -> bool:
        if self.guard.is_read_only(key["pk"]["S"]):
            self.refused += 1
            return False
        self.ddb.delete_item(TableName=self.table, Key=key)
        self._log(key, "delete")
        return True


# -- the world -------------------------------------------------------------------------------------------------
def _order(rng: random.Random, tenant: str, n: int, when: str) -> dict[str, Any]:
    cents = rng.randrange(100, 10_000_000)
    total = Decimal(cents) / 100 + Decimal(rng.randrange(0, 10**12)) / Decimal(10**20)
    item: dict[str, Any] = {
        "pk": {"S": tenant},
        "sk": {"S": f"order#{n:05d}"},
        "status": {"S": rng.choice(["open", "paid", "shipped", "closed"])},
        "total": {"N": str(total)},
        "currency": {"S": rng.choice(["EUR", "USD", "GBP"])},
        "shipping": {
            "M": {
                "method": {"S": rng.choice(["post", "courier"])},
                "weightKg": {"N": str(Decimal(rng.randrange(1, 5000)) / 100)},
                "address": {
                    "M": {
                        "street": {"S": f"{rng.randrange(1, 300)} Main St"},
                        "zip": {"S": f"{rng.randrange(10000, 99999)}"},
                        "city": {"S": rng.choice(["Lyon", "Porto", "Graz", "Turku"])},
                    }
                },
            }
        },
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"SKU-{rng.randrange(1000)}"}, "qty": {"N": str(rng.randrange(1, 9))}}}
                for _ in range(rng.randrange(1, 4))
            ]
        },
        "labels": {"SS": rng.sample(["gift", "priority", "fragile", "b2b", "promo"], k=2)},
        "scores": {"NS": [str(rng.randrange(1, 50)), str(Decimal(rng.randrange(1, 500)) / 10)]},
        "thumb": {"B": bytes(rng.randrange(256) for _ in range(12))},
        "paid": {"BOOL": rng.random() < 0.5},
        "coupon": {"NULL": True},
        "updatedAt": {"S": when},
    }
    if item["scores"]["NS"][0] == item["scores"]["NS"][1]:
        item["scores"]["NS"].pop()
    return item


Clock = Callable[[], float]


def _now_iso(clock: Clock) -> str:
    return dt.datetime.fromtimestamp(clock(), tz=dt.UTC).isoformat(timespec="milliseconds")


def _next_second(clock: Clock) -> dt.datetime:
    """The next whole second, once the clock has passed it (at most a second's wait): everything written before
    is strictly earlier, everything after strictly later. Restore times are chosen on such boundaries."""
    boundary = int(clock()) + 1
    while clock() <= boundary + 0.01:
        time.sleep(0.02)
    return dt.datetime.fromtimestamp(boundary, tz=dt.UTC)


def _ensure_world(admin: Aws, names: Names) -> Aws:
    """Table, PITR, app role, read-only parameter, log group, audit table + stream; returns the app's identity."""
    account = admin.account_id
    ddb = admin.dynamodb
    ddb.create_table(
        TableName=names.table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "status")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_continuous_backups(
        TableName=names.table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    admin.ssm.put_parameter(Name=names.read_only_parameter, Type="StringList", Value="none", Overwrite=True)
    admin.logs.create_log_group(logGroupName=names.log_group)
    admin.logs.put_retention_policy(logGroupName=names.log_group, retentionInDays=365)
    from ..sources.audit_table import enable_stream, ensure_audit_table

    ensure_audit_table(admin, names.audit_table)
    enable_stream(admin, names.table)
    arn = f"arn:aws:dynamodb:{admin.region}:{account}:table/{names.table}"
    admin.iam.create_role(
        RoleName=names.app_role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    admin.iam.put_role_policy(
        RoleName=names.app_role,
        PolicyName="orders-app",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": [arn, f"{arn}/index/*"]},
                    {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "*"},
                    {
                        "Effect": "Allow",
                        "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    return admin.assume_role(f"arn:aws:iam::{account}:role/{names.app_role}", "orders-app")


def stage(
    admin: Aws,
    out_dir: Path,
    *,
    tenants: int = 6,
    orders_per_tenant: int = 400,
    seed: int = 7,
    affected: tuple[str, ...] = ("tenant-2", "tenant-4"),
    names: Names = DEFAULT,
    clock: Clock = time.time,
) -> DemoIncident:
    """Build the world and run the incident; write the change log, ground truth and expected table to out_dir.

    ``clock`` is the time AWS keeps (the sandbox's clock, which tests may have advanced): the application's
    change log, its updatedAt stamps and the incident's times all follow it, as they would follow AWS's.
    """
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = out_dir / "changes.jsonl"
    log_file.write_text("")
    app = DemoApp(_ensure_world(admin, names), log_file, names=names, clock=clock)
    tenant_ids = [f"tenant-{i}" for i in range(1, tenants + 1)]
    sim = _Simulation(app, rng, clock)
    baseline = [_order(rng, t, n, sim.now_iso()) for t in tenant_ids for n in range(orders_per_tenant)]
    app.load(baseline)
    for item in baseline:
        sim.model[KEY.key_id(KEY.key_of(item))] = item
    pre_bug = dict(sim.model)

    restore_at = _next_second(clock)  # everything so far is strictly before it; the bug starts after it
    victims = {t: [k for k in sim.model if json.loads(k)[0]["S"] == t] for t in affected}
    others = [t for t in tenant_ids if t not in affected]
    sim.run_bug(affected, victims, others)
    incident_end = _next_second(clock)
    for n in range(30):  # after the incident window, unaffected tenants go on writing
        sim.legit_other(rng.choice(others), 100_000 + n)
    _drain_stream_into_audit_table(admin, names)  # the audit table's Lambda, as AWS would run it

    truth_file, expected_file = _write_truth(out_dir, *sim.outcome(pre_bug))
    incident = DemoIncident(
        table_name=names.table,
        names=asdict(names),
        affected_tenants=list(affected),
        restore_time=restore_at.isoformat(),
        incident_start=restore_at.isoformat(),
        incident_end=incident_end.isoformat(),
        log_file=str(log_file),
        ground_truth_file=str(truth_file),
        expected_file=str(expected_file),
        corrupted={
            "update": len(sim.bug_updated),
            "delete": len(sim.bug_deleted),
            "create": len(sim.bug_created),
        },
        items=sum(1 for v in sim.model.values() if v is not None),
        legitimate_writes=sim.legit,
    )
    incident.save(out_dir / "incident-facts.json")
    return incident


class _Simulation:
    """The bug's writes and the tenants' legitimate ones, through the app, with the table mirrored in ``model``
    (key_id -> the live item, None once deleted) so that the ground truth is known exactly."""

    def __init__(self, app: DemoApp, rng: random.Random, clock: Clock) -> None:
        self.app, self.rng, self.clock = app, rng, clock
        self.model: dict[str, dict[str, Any] | None] = {}
        self.bug_updated: set[str] = set()
        self.bug_deleted: set[str] = set()
        self.bug_created: set[str] = set()
        self.legit = 0

    def now_iso(self) -> str:
        return _now_iso(self.clock)

    def run_bug(self, affected: tuple[str, ...], victims: dict[str, list[str]], others: list[str]) -> None:
        """The incident: bug writes for the affected tenants, interleaved with legitimate writes everywhere."""
        rng, step = self.rng, 0
        for tenant in affected:
            pool = victims[tenant]
            rng.shuffle(pool)
            updates, deletes = max(4, len(pool) // 10), max(2, len(pool) * 3 // 100)
            for k in pool[:updates]:
                self.bug_update(k)
                step += 1
                if step % 3 == 0:
                    self.legit_other(rng.choice(others), step)
            for k in pool[updates : updates + deletes]:
                self.app.delete(KEY.key_from_id(k))
                self.model[k] = None
                self.bug_deleted.add(k)
                self.legit_other(rng.choice(others), step)
                step += 1
            for n in range(max(3, len(pool) // 50)):
                dup = _order(rng, tenant, 90_000 + n, self.now_iso())
                dup["status"] = {"S": "duplicate"}
                self.app.put(dup, "create")
                k = KEY.key_id(KEY.key_of(dup))
                self.model[k] = dup
                self.bug_created.add(k)
            for k in pool[: min(6, updates // 2)]:  # customers edit orders the bug already corrupted
                self.legit_update(k)

    def bug_update(self, k: str) -> None:
        key = KEY.key_from_id(k)
        item = self.model[k]
        assert item is not None
        total = Decimal(item["total"]["N"]) * 100
        stamp = {"S": self.now_iso()}
        self.app.update(
            key,
            "SET #t = :t, currency = :c, updatedAt = :u REMOVE shipping.address",
            {":t": {"N": str(total)}, ":c": {"S": "XXX"}, ":u": stamp},
            {"#t": "total"},
        )
        new = json.loads(json.dumps(to_json_safe(item)))
        new = from_json_safe(new)
        new["total"] = {"N": str(total)}
        new["currency"] = {"S": "XXX"}
        new["updatedAt"] = stamp
        new["shipping"]["M"].pop("address", None)
        self.model[k] = new
        self.bug_updated.add(k)

    def legit_update(self, k: str) -> None:
        key = KEY.key_from_id(k)
        note = {"S": f"customer called at {self.now_iso()}"}
        self.app.update(key, "SET notes = :n", {":n": note})
        item = dict(self.model[k] or {})
        item["notes"] = note
        self.model[k] = item
        self.legit += 1

    def legit_other(self, tenant: str, n: int) -> None:
        rng, model = self.rng, self.model
        choice = rng.random()
        existing = [k for k in model if json.loads(k)[0]["S"] == tenant and model[k] is not None]
        if choice < 0.5 and existing:
            k = rng.choice(existing)
            status = {"S": rng.choice(["paid", "shipped", "closed"])}
            stamp = {"S": self.now_iso()}
            self.app.update(
                KEY.key_from_id(k),
                "SET #s = :s, updatedAt = :u",
                {":s": status, ":u": stamp},
                {"#s": "status"},
            )
            item = dict(model[k] or {})
            item["status"] = status
            item["updatedAt"] = stamp
            model[k] = item
        elif choice < 0.8:
            item = _order(rng, tenant, 50_000 + n, self.now_iso())
            self.app.put(item, "create")
            model[KEY.key_id(KEY.key_of(item))] = item
        elif existing:
            k = rng.choice(existing)
            self.app.delete(KEY.key_from_id(k))
            model[k] = None
        self.legit += 1

    def outcome(
        self, pre_bug: dict[str, Any]
    ) -> tuple[dict[str, dict[str, Any] | None], list[dict[str, Any]]]:
        """The table a correct recovery leaves, and the ground truth (one line per corrupted item)."""
        expected: dict[str, dict[str, Any] | None] = dict(self.model)
        truth = []
        for k in sorted(self.bug_updated | self.bug_deleted | self.bug_created):
            if k in self.bug_created:
                expected[k], kind = None, "create"
            elif k in self.bug_deleted:
                expected[k], kind = pre_bug[k], "delete"
            else:
                item = dict(self.model[k] or {})
                for name in CORRUPTED_ATTRIBUTES:
                    if name in pre_bug[k]:
                        item[name] = pre_bug[k][name]
                    else:
                        item.pop(name, None)
                expected[k], kind = item, "update"
            truth.append(
                {
                    "key": KEY.key_to_plain(KEY.key_from_id(k)),
                    "key_id": k,
                    "kind": kind,
                    "expected": to_json_safe(expected[k]),
                }
            )
        return expected, truth


def _write_truth(
    out_dir: Path, expected: dict[str, dict[str, Any] | None], truth: list[dict[str, Any]]
) -> tuple[Path, Path]:
    """ground-truth.jsonl and expected-table.jsonl (what `demo.check` compares the live table with)."""
    truth_file = out_dir / "ground-truth.jsonl"
    truth_file.write_text("".join(json.dumps(t) + "\n" for t in truth))
    expected_file = out_dir / "expected-table.jsonl"
    with expected_file.open("w") as fh:
        for k in sorted(expected):
            if expected[k] is not None:
                fh.write(json.dumps(to_json_safe(expected[k])) + "\n")
    return truth_file, expected_file


def _drain_stream_into_audit_table(admin: Aws, names: Names) -> int:
    """Read every record of the table's stream and hand them to the audit Streams handler."""
    from ..appkit.streams_handler import AuditWriter
    from ..tenancy import Tenancy

    stream_arn = admin.dynamodb.describe_table(TableName=names.table)["Table"].get("LatestStreamArn")
    if not stream_arn:
        return 0
    streams = admin.client("dynamodbstreams")
    writer = AuditWriter(
        names.audit_table,
        tenancy=Tenancy.parse(TENANT_ATTRIBUTE),
        dynamodb=admin.dynamodb,
        default_table=names.table,
    )
    count = 0
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            if not records:
                break
            writer.handle(records)
            count += len(records)
            iterator = page.get("NextShardIterator")
    return count
