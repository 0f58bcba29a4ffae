"""The application-side kit: read-only guard, change logger, Streams handler, and its light imports."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys

import pytest

from recovery_helpers.appkit import ChangeLogger, ReadOnlyGuard
from recovery_helpers.appkit.streams_handler import AuditWriter
from recovery_helpers.changelog import parse_record
from recovery_helpers.items import KeySchema
from recovery_helpers.sources import audit_table
from tests.conftest import create_table


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- import isolation ----------------------------------------------------------------------------------------


def test_appkit_imports_only_boto3_and_stdlib():
    code = (
        "import sys; import recovery_helpers.appkit, recovery_helpers.appkit.streams_handler; "
        "heavy = [m for m in ('pandas', 'ipywidgets', 'papermill', 'nbformat', 'IPython', 'deepdiff', "
        "'tqdm', 'moto', 'yaml') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- read-only guard -----------------------------------------------------------------------------------------


def test_guard_reads_tenants_and_all(aws, unique_name):
    ssm = aws.ssm
    ssm.put_parameter(Name=unique_name, Value="t1,t2", Type="StringList")
    clock = FakeClock()
    guard = ReadOnlyGuard(unique_name, ssm_client=ssm, ttl_seconds=5, clock=clock)
    assert guard.is_read_only("t1") and guard.is_read_only("t2")
    assert not guard.is_read_only("t3") and not guard.is_read_only(None)

    ssm.put_parameter(Name=unique_name, Value="all", Type="StringList", Overwrite=True)
    clock.t += 5
    assert guard.is_read_only("t3") and guard.is_read_only(None)

    ssm.put_parameter(Name=unique_name, Value="none", Type="StringList", Overwrite=True)
    clock.t += 5
    assert not guard.is_read_only("t1")


def test_guard_caches_for_ttl(aws, unique_name, sandbox):
    ssm = aws.ssm
    ssm.put_parameter(Name=unique_name, Value="none", Type="String")
    clock = FakeClock()
    guard = ReadOnlyGuard(unique_name, ssm_client=ssm, ttl_seconds=5, clock=clock)
    sandbox.reset_counters()
    assert not guard.is_read_only("t1")
    ssm.put_parameter(Name=unique_name, Value="t1", Type="String", Overwrite=True)
    clock.t += 4.9
    assert not guard.is_read_only("t1"), "still the cached value inside the TTL"
    assert not guard.is_read_only("t1")
    assert sandbox.calls.get("GetParameter") == 1
    clock.t += 0.1
    assert guard.is_read_only("t1"), "read again once the TTL is over"
    assert sandbox.calls.get("GetParameter") == 2


def test_guard_missing_parameter_is_not_read_only_and_logged_once(aws, unique_name, caplog):
    clock = FakeClock()
    guard = ReadOnlyGuard(unique_name, ssm_client=aws.ssm, ttl_seconds=1, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert not guard.is_read_only("t1")
            clock.t += 1
    assert [r.getMessage() for r in caplog.records].count(
        f"read-only parameter {unique_name!r} does not exist: no tenant is read-only"
    ) == 1
    aws.ssm.put_parameter(Name=unique_name, Value="t1", Type="StringList")
    assert guard.is_read_only("t1")


def test_guard_keeps_last_value_when_ssm_fails(aws, unique_name, caplog):
    """A role allowed to read the parameter, then denied: the guard keeps answering with what it knew."""
    account = aws.account_id
    role = f"guard-{unique_name}"[:60]
    aws.iam.create_role(
        RoleName=role,
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
    aws.iam.put_role_policy(
        RoleName=role,
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}],
            }
        ),
    )
    aws.ssm.put_parameter(Name=unique_name, Value="t1", Type="StringList")
    as_app = aws.assume_role(f"arn:aws:iam::{account}:role/{role}")
    clock = FakeClock()
    guard = ReadOnlyGuard(unique_name, ssm_client=as_app.ssm, ttl_seconds=5, clock=clock)
    assert guard.is_read_only("t1")

    aws.iam.put_role_policy(
        RoleName=role,
        PolicyName="deny",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "Action": "ssm:GetParameter", "Resource": "*"}],
            }
        ),
    )
    clock.t += 5
    with caplog.at_level(logging.ERROR):
        assert guard.is_read_only("t1")
        assert not guard.is_read_only("t2")
    assert any("keeping the last known value ['t1']" in r.getMessage() for r in caplog.records)


# -- change logger -------------------------------------------------------------------------------------------


def test_change_logger_writes_the_seed_record(caplog):
    logger = logging.getLogger("test-change-log")
    changes = ChangeLogger(logger=logger, clock=lambda: 1714567890.1234)
    schema = KeySchema("pk", "B", "sk", "N")
    with caplog.at_level(logging.INFO, logger="test-change-log"):
        line = changes.log_change({"pk": b"\x00\xff", "sk": 7}, "delete")
    assert caplog.records[0].getMessage() == line
    obj = json.loads(line)
    assert obj == {
        "operation": "itemChange",
        "timestamp": 1714567890123,
        "ids": {"pk": "AP8=", "sk": 7},
        "action": "delete",
    }
    record = parse_record(line, schema)  # the runbook's one parser reads it back
    assert record.key == {"pk": {"B": b"\x00\xff"}, "sk": {"N": "7"}} and record.action == "delete"
    assert record.timestamp == dt.datetime(2024, 5, 1, 12, 51, 30, 123000, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        changes.log_change({"pk": "x"}, "upsert")


def test_change_logger_wrappers_log_what_happened(aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    aws.logs.create_log_group(logGroupName=unique_name)
    changes = ChangeLogger(logs_client=aws.logs, log_group=unique_name, log_stream="app")
    ddb = aws.dynamodb
    item = {"pk": {"S": "t1"}, "sk": {"S": "a"}, "v": {"N": "1"}}
    changes.put_item(ddb, ["pk", "sk"], TableName=table, Item=item)
    changes.put_item(ddb, ["pk", "sk"], TableName=table, Item={**item, "v": {"N": "2"}})
    changes.update_item(
        ddb,
        TableName=table,
        Key={"pk": {"S": "t1"}, "sk": {"S": "b"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "3"}},
    )
    changes.delete_item(ddb, TableName=table, Key={"pk": {"S": "t1"}, "sk": {"S": "a"}})
    changes.delete_item(ddb, TableName=table, Key={"pk": {"S": "t1"}, "sk": {"S": "nothing"}})
    events = aws.logs.get_log_events(logGroupName=unique_name, logStreamName="app", startFromHead=True)[
        "events"
    ]
    records = [json.loads(e["message"]) for e in events]
    assert [(r["ids"]["sk"], r["action"]) for r in records] == [
        ("a", "create"),
        ("a", "update"),
        ("b", "create"),
        ("a", "delete"),
    ]
    assert all(r["operation"] == "itemChange" for r in records)
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "t1"}, "sk": {"S": "b"}})["Item"]["v"] == {"N": "3"}


# -- Streams handler (end to end with the audit source: tests/unit/sources/test_sources_audit_table.py) -------------------


def test_streams_handler_can_skip_ttl_deletes(aws, unique_name):
    audit = f"{unique_name}-audit"
    audit_table.ensure_audit_table(aws, audit)
    writer = AuditWriter(audit, dynamodb=aws.dynamodb, record_ttl_deletes=False)
    record = {
        "eventID": "e1",
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        "dynamodb": {"ApproximateCreationDateTime": 1714567890, "Keys": {"pk": {"S": "a"}}},
    }
    assert writer.handle([record]) == {"written": 0, "skipped": 1}
    assert aws.dynamodb.scan(TableName=audit)["Count"] == 0
