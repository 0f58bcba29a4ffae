"""The cloudwatch_logs source finds exactly the keys whose change records fall in the window."""

from __future__ import annotations

import datetime as dt
import json

from recovery_helpers.appkit import ChangeLogger
from recovery_helpers.sources import cloudwatch_logs
from tests.conftest import create_table
from tests.sources_support import by_key, request


def _event(when: dt.datetime, message: str | dict) -> dict:
    text = message if isinstance(message, str) else json.dumps(message)
    return {"timestamp": int(when.timestamp() * 1000), "message": text}


def _record(when: dt.datetime, pk: str, sk: str, action: str) -> dict:
    return {
        "operation": "itemChange",
        "timestamp": int(when.timestamp() * 1000),
        "ids": {"pk": pk, "sk": sk},
        "action": action,
    }


def test_finds_changes_in_window_with_first_change_and_action(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    logs = aws.logs
    logs.create_log_group(logGroupName=unique_name)
    logs.create_log_stream(logGroupName=unique_name, logStreamName="app")
    # log events must be recent for CloudWatch: an hour ago, minute by minute
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    at = [base + dt.timedelta(minutes=m) for m in range(12)]
    start, end = at[3], at[8]
    events = [
        _event(at[1], _record(at[1], "t1#a", "1", "update")),  # before the window
        _event(at[3], _record(at[3], "t1#a", "2", "create")),  # first instant of the window
        _event(at[4], _record(at[4], "t1#a", "2", "update")),  # same key later: first change wins
        _event(at[5], _record(at[5], "t2#b", "1", "delete")),
        _event(at[5], "not json at all"),  # malformed
        _event(
            at[5],
            {
                "operation": "itemChange",
                "timestamp": "yesterday",
                "ids": {"pk": "x", "sk": "y"},
                "action": "update",
            },
        ),  # malformed timestamp
        _event(at[5], {"operation": "itemChange", "timestamp": 1, "ids": {"pk": "x"}, "action": "update"}),
        _event(at[6], {"operation": "somethingElse", "ids": {"pk": "z", "sk": "z"}}),  # not a change record
        # Lambda's text format puts a prefix before the JSON
        _event(
            at[6], "[INFO]\t2024-01-01T00:00:00Z\treq-1\t" + json.dumps(_record(at[6], "t1#c", "9", "update"))
        ),
        # the event was stamped before the window but the change itself is inside it
        _event(at[2], _record(at[7], "t2#d", "4", "create")),
        _event(at[8], _record(at[8], "t1#a", "3", "delete")),  # window end is exclusive
        _event(at[10], _record(at[10], "t1#e", "5", "update")),  # after the window
    ]
    logs.put_log_events(
        logGroupName=unique_name, logStreamName="app", logEvents=sorted(events, key=lambda e: e["timestamp"])
    )

    req = request(aws, table, start, end, tmp_path, log_group=unique_name)
    found = by_key(req.key_schema, list(cloudwatch_logs.find(req)))

    assert set(found) == {("t1#a", "2"), ("t2#b", "1"), ("t1#c", "9"), ("t2#d", "4")}
    assert found[("t1#a", "2")].action == "create" and found[("t1#a", "2")].first_change == at[3]
    assert found[("t2#b", "1")].action == "delete"
    assert found[("t2#d", "4")].first_change == at[7]
    assert all(f.source == "cloudwatch_logs" and not f.has_images for f in found.values())
    assert req.stats.malformed == 3
    assert len(req.stats.problems) == 3 and any("not JSON" in p for p in req.stats.problems)


def test_filters_tenants_from_the_key(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    aws.logs.create_log_group(logGroupName=unique_name)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
    # the app-side ChangeLogger writes the records the source reads
    clock = iter([now.timestamp() + i for i in range(10)])
    writer = ChangeLogger(
        clock=lambda: next(clock), logs_client=aws.logs, log_group=unique_name, log_stream="s1"
    )
    writer.log_change({"pk": "t1#doc", "sk": "1"}, "update")
    writer.log_change({"pk": "t2#doc", "sk": "1"}, "update")
    writer.log_change({"pk": "t3#doc", "sk": "1"}, "delete")

    req = request(
        aws,
        table,
        now,
        now + dt.timedelta(minutes=1),
        tmp_path,
        log_group=unique_name,
        tenancy="pk:^([^#]+)#",
        tenants=["t1", "t3"],
    )
    found = by_key(req.key_schema, list(cloudwatch_logs.find(req)))
    assert set(found) == {("t1#doc", "1"), ("t3#doc", "1")}
    assert req.stats.counters.get("filtered_tenant") == 1


def test_missing_log_group_is_a_clear_error(aws, unique_name, tmp_path):
    import pytest

    from recovery_helpers.errors import InputError

    table = create_table(aws.dynamodb, unique_name, pitr=False)
    now = dt.datetime.now(dt.UTC)
    req = request(aws, table, now - dt.timedelta(hours=1), now, tmp_path, log_group="no-such-group")
    with pytest.raises(InputError, match="no-such-group"):
        list(cloudwatch_logs.find(req))
