"""Restores: bad requests refused before anything exists; the past comes back; waiting resumes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from recovery_helpers.errors import InputError, NotReadyError
from recovery_helpers.restore import default_restored_name, restore_table
from tests.conftest import create_table, table_names
from tests.containment_support import context


def _second_boundary(sandbox) -> dt.datetime:
    """A whole-second time strictly after everything written so far, and strictly before what comes next."""
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


def _tables(aws):
    return set(table_names(aws.dynamodb))


@pytest.fixture
def live(aws, unique_name, tmp_path, sandbox):
    table = create_table(aws.dynamodb, unique_name, gsi=("status", "S"))
    aws.dynamodb.put_item(
        TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "status": {"S": "good"}}
    )
    t = _second_boundary(sandbox)
    aws.dynamodb.put_item(
        TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "status": {"S": "BROKEN"}}
    )
    return {"table": table, "t": t, "ctx": context(aws, tmp_path, table)}


def _refused(aws, ctx, error, match, **kw):
    before = _tables(aws)
    with pytest.raises(error, match=match):
        restore_table(ctx, progress=False, poll_seconds=0.05, **kw)
    assert _tables(aws) == before, "nothing may be created when a restore is refused"
    assert not [e for e in ctx.incident.timeline if "Restore" in e["action"]]


def test_pitr_restore_between_two_writes_brings_back_the_earlier_data(aws, live, sandbox):
    result = restore_table(live["ctx"], restore_time=live["t"].isoformat(), poll_seconds=0.05, progress=False)
    assert result.restored_table_name == default_restored_name(live["table"], live["t"])
    assert result.restored_table_name == f"{live['table']}-restored-{live['t']:%Y%m%dT%H%M%S}"
    assert result.status == "ACTIVE" and result.started and not result.resumed
    item = aws.dynamodb.get_item(
        TableName=result.restored_table_name, Key={"pk": {"S": "t1"}, "sk": {"S": "a"}}
    )["Item"]
    assert item["status"] == {"S": "good"}
    assert result.indexes == ["by-status"]
    state = live["ctx"].incident.data["state"]
    assert state["restored_table_name"] == result.restored_table_name
    assert state["restore_source"] == "pitr" and state["restore_time"] == live["t"].isoformat()
    arn = aws.dynamodb.describe_table(TableName=result.restored_table_name)["Table"]["TableArn"]
    assert {"Key": "incident", "Value": "inc-1"} in aws.dynamodb.list_tags_of_resource(ResourceArn=arn)[
        "Tags"
    ]
    actions = [e["action"] for e in live["ctx"].incident.timeline]
    assert actions == ["dynamodb:RestoreTableToPointInTime", "dynamodb:TagResource", "restore complete"]


def test_sub_second_times_are_rounded_down_and_said_so(aws, live):
    t = live["t"] + dt.timedelta(milliseconds=700)
    result = restore_table(live["ctx"], restore_time=t.isoformat(), poll_seconds=0.05, progress=False)
    assert result.restore_time == live["t"].isoformat()
    assert any("rounded down" in n for n in result.notes)


def test_other_offsets_are_the_same_instant(aws, live):
    local = live["t"].astimezone(dt.timezone(dt.timedelta(hours=-5)))
    result = restore_table(live["ctx"], restore_time=local.isoformat(), poll_seconds=0.05, progress=False)
    assert result.restore_time == live["t"].isoformat()


def test_without_indexes_the_restored_table_has_no_gsi(aws, live):
    result = restore_table(
        live["ctx"],
        restore_time=live["t"].isoformat(),
        restore_indexes=False,
        restored_table_name=f"{live['table']}-restored-noidx",
        poll_seconds=0.05,
        progress=False,
    )
    desc = aws.dynamodb.describe_table(TableName=result.restored_table_name)["Table"]
    assert not desc.get("GlobalSecondaryIndexes")
    assert result.indexes == [] and any("WITHOUT secondary indexes" in n for n in result.notes)


def test_time_without_offset_is_refused(aws, live):
    _refused(
        aws,
        live["ctx"],
        InputError,
        r"no timezone offset.*\+00:00",
        restore_time=live["t"].replace(tzinfo=None).isoformat(),
    )


def test_time_outside_the_window_is_refused_with_the_window(aws, live):
    _refused(
        aws,
        live["ctx"],
        InputError,
        "outside the point-in-time window.*restorable from",
        restore_time="2001-01-01T00:00:00+00:00",
    )
    future = (live["t"] + dt.timedelta(days=1)).isoformat()
    _refused(aws, live["ctx"], InputError, "outside the point-in-time window", restore_time=future)


def test_time_after_the_incident_start_is_refused(aws, live):
    _refused(
        aws,
        live["ctx"],
        InputError,
        "after incident_start",
        restore_time=live["t"].isoformat(),
        incident_start=(live["t"] - dt.timedelta(seconds=1)).isoformat(),
    )


def test_pitr_disabled_is_refused_saying_how_to_enable_it(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = context(aws, tmp_path, table)
    _refused(
        aws,
        ctx,
        NotReadyError,
        "not enabled.*Only times after enabling",
        restore_time="2024-01-01T00:00:00+00:00",
    )


def test_backup_without_arn_is_refused(aws, live):
    _refused(
        aws, live["ctx"], InputError, "needs backup_arn", source="backup", restore_time=live["t"].isoformat()
    )


def test_unknown_source_and_missing_time_are_refused(aws, live):
    _refused(aws, live["ctx"], InputError, "not one of", source="s3", restore_time=live["t"].isoformat())
    _refused(aws, live["ctx"], InputError, "restore_time is required")


def test_existing_table_with_another_key_schema_is_refused(aws, live, unique_name):
    other = create_table(
        aws.dynamodb, f"{unique_name}-other", hash_key=("id", "N"), range_key=None, pitr=False
    )
    _refused(
        aws,
        live["ctx"],
        InputError,
        "has key id \\(N, partition\\).*not a restore of this table",
        source="existing",
        restored_table_name=other,
    )
    _refused(aws, live["ctx"], InputError, "needs restored_table_name", source="existing")


def test_existing_table_with_the_same_key_is_used(aws, live, unique_name):
    copy = create_table(aws.dynamodb, f"{unique_name}-copy", pitr=False)
    result = restore_table(
        live["ctx"],
        source="existing",
        restored_table_name=copy,
        restore_time=live["t"].isoformat(),
        progress=False,
    )
    assert result.status == "ACTIVE" and result.restored_table_name == copy
    assert live["ctx"].incident.get("restore_source") == "existing"


def test_backup_restore(aws, live):
    arn = aws.dynamodb.create_backup(TableName=live["table"], BackupName="before")["BackupDetails"][
        "BackupArn"
    ]
    result = restore_table(
        live["ctx"],
        source="backup",
        backup_arn=arn,
        poll_seconds=0.05,
        progress=False,
        restored_table_name=f"{live['table']}-restored-bk",
    )
    assert result.status == "ACTIVE" and result.source == "backup"
    assert (
        aws.dynamodb.describe_table(TableName=result.restored_table_name)["Table"]["TableStatus"] == "ACTIVE"
    )


def test_backup_taken_after_the_incident_started_is_refused(aws, live):
    details = aws.dynamodb.create_backup(TableName=live["table"], BackupName="after")["BackupDetails"]
    start = details["BackupCreationDateTime"] - dt.timedelta(seconds=1)
    _refused(
        aws,
        live["ctx"],
        InputError,
        "after incident_start",
        source="backup",
        backup_arn=details["BackupArn"],
        incident_start=start.isoformat(),
    )


def test_wait_loop_reports_creating_then_active(aws, live, sandbox):
    sandbox.configure(restore_seconds=600)
    creating = threading.Event()
    box: dict = {}

    def run():
        try:
            box["result"] = restore_table(
                live["ctx"],
                restore_time=live["t"].isoformat(),
                poll_seconds=0.02,
                progress=False,
                timeout_seconds=30,
                on_status=lambda status, _: status == "CREATING" and creating.set(),
            )
        except Exception as exc:  # noqa: BLE001
            box["error"] = exc
            creating.set()

    worker = threading.Thread(target=run)
    worker.start()
    assert creating.wait(timeout=10)
    target = default_restored_name(live["table"], live["t"])
    assert aws.dynamodb.describe_table(TableName=target)["Table"]["TableStatus"] == "CREATING"
    sandbox.advance(601)  # the sandbox's restore takes 600 s of its clock; no wall-clock wait
    worker.join(timeout=10)
    assert "error" not in box, box.get("error")
    result = box["result"]
    assert result.statuses == ["CREATING", "ACTIVE"]
    assert result.status_history[1]["elapsed_seconds"] > result.status_history[0]["elapsed_seconds"]


def test_a_timeout_keeps_the_restore_and_a_rerun_resumes_it(aws, live, sandbox):
    sandbox.configure(restore_seconds=3600)
    sandbox.reset_counters()
    with pytest.raises(NotReadyError, match="still CREATING.*run this step again"):
        restore_table(
            live["ctx"],
            restore_time=live["t"].isoformat(),
            poll_seconds=0.02,
            timeout_seconds=0.1,
            progress=False,
        )
    target = default_restored_name(live["table"], live["t"])
    assert live["ctx"].incident.get("restored_table_name") == target
    sandbox.advance(3601)
    result = restore_table(live["ctx"], restore_time=live["t"].isoformat(), poll_seconds=0.02, progress=False)
    assert result.resumed and not result.started and result.status == "ACTIVE"
    assert sandbox.calls.get("RestoreTableToPointInTime") == 1


def test_a_table_of_that_name_not_started_by_the_incident_is_refused(aws, live):
    name = create_table(aws.dynamodb, default_restored_name(live["table"], live["t"]), pitr=False)
    _refused(
        aws,
        live["ctx"],
        InputError,
        "already exists and this incident did not create it",
        restore_time=live["t"].isoformat(),
    )
    assert name
