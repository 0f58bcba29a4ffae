"""04_diff refuses bad input and unready tables before reading or writing anything."""

from __future__ import annotations

import pytest

from recovery_helpers import diff
from recovery_helpers.errors import InputError, NotReadyError
from tests.conftest import create_table
from tests.diff_support import END, START, context, put_items, twin_tables, write_lines


@pytest.fixture
def tables(aws, unique_name):
    return twin_tables(
        aws, unique_name, restored=[{"pk": "a", "sk": "1", "v": 1}], live=[{"pk": "a", "sk": "1", "v": 2}]
    )


def run(ctx, tmp_path, **kw):
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "a", "sk": "1"}])
    params = {
        "impacted_source": "keys_file",
        "keys_file": keys,
        "incident_start": START,
        "incident_end": END,
        "progress": False,
        **kw,
    }
    return diff.build_plan(ctx, **params)


@pytest.mark.parametrize(
    "start, end, message",
    [
        (
            "2024-05-01T10:00:00",
            None,
            r"incident_start '2024-05-01T10:00:00' has no timezone offset.*\+00:00",
        ),
        ("yesterday", None, "not an ISO 8601 time"),
        (None, None, "incident_start is required"),
        (START, "2024-05-01T09:00:00+00:00", "is not after incident_start"),
    ],
)
def test_times_must_be_iso_with_an_offset_and_in_order(aws, tables, tmp_path, start, end, message):
    ctx = context(aws, tmp_path, *tables)
    with pytest.raises(InputError, match=message):
        run(ctx, tmp_path, incident_start=start, incident_end=end)
    assert not (ctx.incident.path / "plan.json").exists()


def test_the_restore_step_must_have_run(aws, tables, tmp_path):
    ctx = context(aws, tmp_path, tables[0])
    with pytest.raises(InputError, match="no 'restored_table_name' yet: run the 03_restore step first"):
        run(ctx, tmp_path)


def test_a_missing_restored_table_is_refused(aws, tables, tmp_path):
    ctx = context(aws, tmp_path, tables[0], "no-such-restored-table")
    with pytest.raises(
        InputError, match="restored table 'no-such-restored-table' does not exist: run 03_restore"
    ):
        run(ctx, tmp_path)


def test_a_restored_table_with_another_key_schema_is_refused_naming_both(aws, tables, unique_name, tmp_path):
    other = create_table(
        aws.dynamodb, unique_name + "-other", hash_key=("id", "N"), range_key=None, pitr=False
    )
    ctx = context(aws, tmp_path, tables[0], other)
    with pytest.raises(
        InputError, match=r"has the key id \(N, partition\).*has pk \(S, partition\) \+ sk \(S, sort\)"
    ):
        run(ctx, tmp_path)


def test_a_restore_still_creating_says_to_wait(aws, sandbox, unique_name, tmp_path):
    live = create_table(aws.dynamodb, unique_name)
    put_items(aws, live, [{"pk": "a", "sk": "1", "v": 1}])
    sandbox.advance(2)
    sandbox.configure(restore_seconds=600)
    restored = unique_name + "-restored"
    aws.dynamodb.restore_table_to_point_in_time(
        SourceTableName=live, TargetTableName=restored, UseLatestRestorableTime=True
    )
    ctx = context(aws, tmp_path, live, restored)
    with pytest.raises(
        NotReadyError, match="still CREATING.*wait and run this step again, or re-run 03_restore"
    ):
        run(ctx, tmp_path)
    sandbox.advance(601)
    assert run(ctx, tmp_path).counts["unchanged"] == 1


def test_tenants_without_tenant_attribute_and_unknown_sources_are_refused(aws, tables, tmp_path):
    ctx = context(aws, tmp_path, *tables)
    with pytest.raises(InputError, match="needs tenant_attribute"):
        run(ctx, tmp_path, tenants=["acme"])
    with pytest.raises(InputError, match="available sources are"):
        run(ctx, tmp_path, impacted_source="kafka")
    with pytest.raises(InputError, match="keys_file '/nope.jsonl' does not exist"):
        run(ctx, tmp_path, keys_file="/nope.jsonl")
