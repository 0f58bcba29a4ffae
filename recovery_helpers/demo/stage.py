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
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..items import to_json_safe
from .app import DemoApp
from .names import (  # noqa: F401 - re-exported: stage's names before the split
    APP_ROLE,
    AUDIT_TABLE,
    CORRUPTED_ATTRIBUTES,
    DEFAULT,
    DENY_POLICY,
    KEY,
    LOG_GROUP,
    READ_ONLY_PARAMETER,
    TABLE,
    TENANT_ATTRIBUTE,
    Names,
)
from .simulation import Clock, _now_iso, _order, _Simulation  # noqa: F401 - re-exported


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


# -- the world -------------------------------------------------------------------------------------------------
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
