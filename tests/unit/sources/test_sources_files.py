"""Impacted keys from local files: a keys file the user wrote, and the application's change log."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import InputError
from recovery_helpers.items import KeySchema
from recovery_helpers.sources import SourceRequest, find_impacted
from recovery_helpers.tenancy import Tenancy
from tests.diff_support import END, START, context, twin_tables, write_lines

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T_END = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def request(aws, tmp_path, schema, **kw) -> SourceRequest:
    return SourceRequest(
        aws=aws,
        table_name="t",
        key_schema=schema,
        restored_table_name=None,
        window_start=T0,
        window_end=T_END,
        scratch_dir=tmp_path,
        **kw,
    )


def change(ids, when, action="update"):
    stamp = when if isinstance(when, str) else int(when.timestamp() * 1000)
    return {"operation": "itemChange", "timestamp": stamp, "ids": ids, "action": action}


@pytest.mark.parametrize(
    "line, message",
    [
        ({"pk": "a", "sort": "1"}, r"line 3.*pk \(S, partition\) \+ sk \(S, sort\)"),
        ({"pk": "a", "sk": 1}, r"'sk' \(keys.jsonl line 3\) must be a non-empty string.*pk \(S, partition\)"),
        ("{not json", r"keys.jsonl line 3 is not JSON.*pk \(S, partition\) \+ sk \(S, sort\)"),
    ],
)
def test_a_bad_keys_file_is_refused_with_its_line_and_nothing_is_written(
    aws, unique_name, tmp_path, line, message
):
    live, restored = twin_tables(
        aws, unique_name, restored=[{"pk": "a", "sk": "1", "v": 1}], live=[{"pk": "a", "sk": "1", "v": 2}]
    )
    ctx = context(aws, tmp_path, live, restored)
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "a", "sk": "1"}, "", line])
    with pytest.raises(InputError, match=message):
        diff.build_plan(
            ctx, impacted_source="keys_file", keys_file=keys, incident_start=START, progress=False
        )
    assert not (ctx.incident.path / "plan.jsonl").exists() and not (ctx.incident.path / "plan.json").exists()
    assert not (ctx.incident.path / "impacted-work").exists()


def test_keys_files_carry_number_and_binary_keys(aws, tmp_path):
    numbers = write_lines(tmp_path / "n.jsonl", [{"id": 7}, {"id": 7.0}, {"id": "0.50"}])
    found = list(find_impacted(request(aws, tmp_path, KeySchema("id", "N"), keys_file=numbers), "keys_file"))
    assert sorted(k.key["id"]["N"] for k in found) == ["0.5", "7"]  # 7 and 7.0 are one key

    blob = base64.b64encode(b"\x00\xffkey").decode()
    binary = write_lines(tmp_path / "b.jsonl", [{"k": blob}])
    found = list(find_impacted(request(aws, tmp_path, KeySchema("k", "B"), keys_file=binary), "keys_file"))
    assert [k.key for k in found] == [{"k": {"B": b"\x00\xffkey"}}]
    bad = write_lines(tmp_path / "bad.jsonl", [{"k": "not base64!"}])
    with pytest.raises(InputError, match=r"bad.jsonl line 1\) is not valid base64"):
        find_impacted(request(aws, tmp_path, KeySchema("k", "B"), keys_file=bad), "keys_file")


def test_change_log_window_is_start_inclusive_end_exclusive_and_keeps_first_change(aws, tmp_path):
    schema = KeySchema("pk", "S", "sk", "S")
    log = write_lines(
        tmp_path / "log.jsonl",
        [
            change({"pk": "t", "sk": "before"}, T0 - dt.timedelta(milliseconds=1)),
            change({"pk": "t", "sk": "at-start"}, T0),
            change({"pk": "t", "sk": "twice"}, "2024-05-01T11:30:00+00:00", "update"),
            change({"pk": "t", "sk": "twice"}, "2024-05-01T10:30:00+00:00", "create"),
            change({"pk": "t", "sk": "at-end"}, T_END),
        ],
    )
    found = find_impacted(request(aws, tmp_path, schema, log_file=log), "log_file")
    merged = {k.key["sk"]["S"]: k for k in found}
    assert sorted(merged) == ["at-start", "twice"]
    assert merged["twice"].action == "create"
    assert merged["twice"].first_change == dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert found.stats["log_file"].counters["outside_window"] == 2


def test_malformed_log_lines_are_counted_and_reported_not_fatal(aws, unique_name, tmp_path):
    live, restored = twin_tables(
        aws, unique_name, restored=[{"pk": "a", "sk": "1", "v": 1}], live=[{"pk": "a", "sk": "1", "v": 2}]
    )
    ctx = context(aws, tmp_path, live, restored)
    log = write_lines(
        tmp_path / "app.log",
        [
            change({"pk": "a", "sk": "1"}, "2024-05-01T10:05:00Z"),
            "2024-05-01 10:06:00 INFO plain text line",
            change({"pk": "a"}, "2024-05-01T10:07:00Z"),
            {"level": "info", "msg": "request done"},
        ],
    )
    result = diff.build_plan(
        ctx, impacted_source="log_file", log_file=log, incident_start=START, incident_end=END, progress=False
    )
    assert result.counts["changed"] == 1
    report = result.sources.set_index("source").loc["log_file"]
    assert (report["lines/records read"], report["malformed"], report["skipped"], report["found"]) == (
        4,
        2,
        1,
        1,
    )
    assert "line 2: not JSON" in report["problems"] and "line 3: ids" in report["problems"]


def test_tenant_in_the_key_filters_at_the_source(aws, tmp_path):
    keys = write_lines(tmp_path / "k.jsonl", [{"pk": "acme#1", "sk": "x"}, {"pk": "globex#1", "sk": "x"}])
    req = request(
        aws,
        tmp_path,
        KeySchema("pk", "S", "sk", "S"),
        keys_file=keys,
        tenancy=Tenancy.parse("pk:^([^#]+)#"),
        tenants=["acme"],
    )
    found = find_impacted(req, "keys_file")
    assert [k.key["pk"]["S"] for k in found] == ["acme#1"]
    assert found.stats["keys_file"].counters["filtered_tenant"] == 1


def test_sources_combine_and_report_what_only_each_found(aws, tmp_path):
    schema = KeySchema("pk", "S", "sk", "S")
    keys = write_lines(tmp_path / "k.jsonl", [{"pk": "a", "sk": "1"}, {"pk": "b", "sk": "1"}])
    log = write_lines(
        tmp_path / "l.jsonl",
        [change({"pk": "b", "sk": "1"}, T0, "delete"), change({"pk": "c", "sk": "1"}, T0, "create")],
    )
    found = find_impacted(
        request(aws, tmp_path, schema, keys_file=keys, log_file=log), ["keys_file", "log_file"], segments=3
    )
    merged = {k.key["pk"]["S"]: k for k in found}
    assert merged["b"].sources == ["keys_file", "log_file"] and merged["b"].action == "delete"
    report = found.report()
    assert (report["keys_file"]["found"], report["keys_file"]["only"]) == (2, 1)
    assert (report["log_file"]["found"], report["log_file"]["only"]) == (2, 1)


def test_unknown_or_incomplete_sources_are_refused_by_name(aws, tmp_path):
    schema = KeySchema("pk", "S")
    with pytest.raises(
        InputError, match=r"unknown impacted_source 'splunk'.*available sources are .*keys_file"
    ):
        find_impacted(request(aws, tmp_path, schema), "splunk")
    with pytest.raises(InputError, match="needs the `log_file` parameter"):
        find_impacted(request(aws, tmp_path, schema), "log_file")
