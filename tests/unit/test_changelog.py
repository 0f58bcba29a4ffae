"""The change log parser: one reader for log files and CloudWatch events, lenient per line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recovery_helpers.changelog import ChangeLogReader, MalformedRecord, iter_change_log, parse_record
from recovery_helpers.errors import InputError
from recovery_helpers.items import KeySchema

HASH_RANGE = KeySchema("pk", "S", "sk", "S")
NUMBER_KEY = KeySchema("id", "N")
UTC = dt.UTC


def test_epoch_milliseconds_and_iso_timestamps_parse_to_the_same_utc_instant():
    ms = parse_record(
        {
            "operation": "itemChange",
            "timestamp": 1714557600123,
            "ids": {"pk": "t", "sk": "1"},
            "action": "update",
        },
        HASH_RANGE,
    )
    iso = parse_record(
        json.dumps(
            {
                "operation": "itemChange",
                "timestamp": "2024-05-01T12:00:00.123+02:00",
                "ids": {"pk": "t", "sk": "1"},
                "action": "update",
            }
        ),
        HASH_RANGE,
    )
    assert ms.timestamp == iso.timestamp == dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert ms.key == {"pk": {"S": "t"}, "sk": {"S": "1"}} and ms.action == "update"


def test_number_keys_are_read_as_dynamodb_numbers():
    record = parse_record(
        {
            "operation": "itemChange",
            "timestamp": "2024-05-01T10:00:00Z",
            "ids": {"id": 7.50},
            "action": "delete",
        },
        NUMBER_KEY,
    )
    assert record.key == {"id": {"N": "7.5"}} and record.action == "delete"


def test_other_log_lines_are_not_change_records():
    assert parse_record('{"level": "info", "message": "started"}', HASH_RANGE) is None
    assert parse_record({"operation": "read", "ids": {"pk": "t", "sk": "1"}}, HASH_RANGE) is None


@pytest.mark.parametrize(
    "line, reason",
    [
        ("not json at all", "not JSON"),
        (
            {
                "operation": "itemChange",
                "timestamp": "yesterday",
                "ids": {"pk": "t", "sk": "1"},
                "action": "update",
            },
            "timestamp",
        ),
        (
            {
                "operation": "itemChange",
                "timestamp": "2024-05-01T10:00:00",
                "ids": {"pk": "t", "sk": "1"},
                "action": "update",
            },
            "no timezone",
        ),
        (
            {"operation": "itemChange", "timestamp": 1714557600000, "ids": {"pk": "t"}, "action": "update"},
            r"the table.s key is pk \(S, partition\) \+ sk \(S, sort\)",
        ),
        (
            {
                "operation": "itemChange",
                "timestamp": 1714557600000,
                "ids": {"pk": "t", "sk": 5},
                "action": "update",
            },
            "must be a non-empty string",
        ),
        (
            {
                "operation": "itemChange",
                "timestamp": 1714557600000,
                "ids": {"pk": "t", "sk": "1"},
                "action": "upsert",
            },
            "action",
        ),
    ],
)
def test_malformed_change_records_say_why(line, reason):
    text = line if isinstance(line, str) else json.dumps(line)
    with pytest.raises(MalformedRecord, match=reason):
        parse_record(text, HASH_RANGE)


def test_reader_counts_and_keeps_going_but_refuses_a_file_with_nothing_readable(tmp_path):
    good = {
        "operation": "itemChange",
        "timestamp": 1714557600000,
        "ids": {"pk": "t", "sk": "1"},
        "action": "create",
    }
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([json.dumps(good), "{broken", json.dumps({"msg": "other"}), ""]) + "\n")
    reader = ChangeLogReader(HASH_RANGE)
    records = [
        r
        for r in (
            reader.parse(line, f"line {i}") for i, line in enumerate(mixed.read_text().splitlines()[:3], 1)
        )
        if r
    ]
    reader.finish()
    assert len(records) == 1 and (reader.read, reader.malformed, reader.skipped) == (3, 1, 1)
    assert reader.problems == ["line 2: not JSON"]

    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\nworld\n\n")
    with pytest.raises(InputError, match="not a change log.*all 2 lines are malformed"):
        list(iter_change_log(garbage, HASH_RANGE))


def test_a_missing_log_file_is_refused_with_its_path(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(iter_change_log(tmp_path / "nope.jsonl", HASH_RANGE))
