"""The estimates the notebooks show before a restore, a whole-table diff and a patch, from sandbox tables."""

from __future__ import annotations

import json
import math

import pytest

from recovery_helpers import costs, estimate, patch
from recovery_helpers.context import CallRecorder, open_context
from recovery_helpers.plan import iter_plan
from tests.conftest import create_table
from tests.unit.patch.test_patch import before_call, make_scenario


def _fill(ddb, table: str, n: int = 20) -> None:
    for i in range(n):
        ddb.put_item(
            TableName=table, Item={"pk": {"S": f"p{i:02d}"}, "sk": {"S": "x"}, "g": {"S": "a" * 2000}}
        )


def _ctx(aws, tmp_path, table):
    return open_context("costs", table, aws.region, aws.endpoint_url, str(tmp_path / "runs"), aws=aws)


def _estimates(ctx) -> list[dict]:
    ctx.incident.reload()
    return [e for e in ctx.incident.timeline if e["action"] == costs.ACTION]


def test_restore_time_grows_with_the_indexes_restored_and_is_recorded(aws, tmp_path, unique_name):
    table = create_table(aws.dynamodb, unique_name, gsi=("g", "S"))
    _fill(aws.dynamodb, table)
    ctx = _ctx(aws, tmp_path, table)
    figures = estimate.table_figures(aws.dynamodb, table)
    assert figures.items == 20 and figures.indexes == 1 and figures.read_capacity is None

    shown = costs.before_restore(ctx, source="pitr")
    (restore,) = shown.estimates
    one_pass = figures.bytes / 1e9 / estimate.RESTORE_GB_PER_MINUTE
    assert restore.minutes == pytest.approx(estimate.RESTORE_STARTUP_MINUTES + 2 * one_pass)
    assert (restore.items, restore.bytes, restore.read_units, restore.write_units) == (
        20,
        figures.bytes,
        0,
        0,
    )
    without = costs.before_restore(ctx, source="pitr", restore_indexes=False).estimates[0]
    assert without.minutes == pytest.approx(estimate.RESTORE_STARTUP_MINUTES + one_pass)
    assert f"restore: items=20 bytes={figures.bytes}" in shown.text() and "basis:" in shown.text()
    recorded = _estimates(ctx)
    assert [(e["step"], e["items"], e["bytes"]) for e in recorded] == [("restore", 20, figures.bytes)] * 2

    existing = costs.before_restore(ctx, source="existing", restored_table_name="t-restored")
    assert not existing.estimates and "nothing is restored" in existing.text()
    assert len(_estimates(ctx)) == 2, "nothing recorded when nothing is restored"


def test_restore_from_a_backup_takes_the_backups_figures(aws, tmp_path, unique_name):
    table = create_table(aws.dynamodb, unique_name)
    _fill(aws.dynamodb, table, 5)
    arn = aws.dynamodb.create_backup(TableName=table, BackupName="before-growth")["BackupDetails"][
        "BackupArn"
    ]
    _fill(aws.dynamodb, table, 15)  # the live table grew since: the backup's size counts
    ctx = _ctx(aws, tmp_path, table)
    (restore,) = costs.before_restore(ctx, source="backup", backup_arn=arn).estimates
    live = estimate.table_figures(aws.dynamodb, table)
    # the sandbox's DescribeBackup gives the item count, no size: the live table's average size fills in
    assert (restore.items, live.items) == (5, 15)
    assert restore.bytes == round(5 * live.average_item_bytes) and restore.bytes > 0
    assert "figures from DescribeBackup items x the live table's average item size" in restore.notes[0]


def test_full_compare_spends_read_units_at_the_provisioned_rate_full_export_none(aws, tmp_path, unique_name):
    ddb = aws.dynamodb
    ddb.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
    )
    _fill(ddb, unique_name)
    ctx = _ctx(aws, tmp_path, unique_name)
    shown = costs.before_diff(
        ctx, impacted_source=["log_file", "full_compare", "full_export"], export_arns=["arn:before"]
    )
    compare, export = shown.estimates
    figures = estimate.table_figures(ddb, unique_name)
    assert (figures.read_capacity, figures.write_capacity) == (2.0, 3.0)
    # 2 KB items: one read unit each; half for each eventually consistent scan, one for the consistent read
    assert compare.read_units == 20 * 2 and compare.capped_by.startswith("max_workers")
    assert compare.minutes == pytest.approx(2 * 20 / (2 / 2) / 60)  # 2 read units/s at 2 units per item
    assert export.read_units == 0 and export.export_gb == pytest.approx(figures.bytes / 1e9)  # one reused
    assert "1 new export(s), 1 reused (export_arns)" in export.notes
    assert [(e["step"], e["estimate"]) for e in _estimates(ctx)] == [
        ("diff", "full_compare diff"),
        ("diff", "full_export diff"),
    ]

    keys_only = costs.before_diff(ctx, impacted_source="log_file")
    assert not keys_only.estimates and "only the impacted keys are read" in keys_only.text()


def test_an_unreadable_table_gives_no_estimate_instead_of_failing_the_step(aws, tmp_path, unique_name):
    ctx = _ctx(aws, tmp_path, f"{unique_name}-missing")
    shown = costs.before_diff(ctx, impacted_source="full_compare")
    assert not shown.estimates and "could not be read" in shown.text() and "ResourceNotFound" in shown.text()
    assert _estimates(ctx) == []


def test_patch_cost_counts_the_dry_runs_writes_twice_through_transactions(aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    preview = patch.apply_plan(sc.ctx, dry_run=True, progress=False)
    sizes = [
        max(estimate.item_size(e.restored or {}), estimate.item_size(e.live or {}))
        for e in iter_plan(sc.ctx.incident)
        if e.action != "none"
    ]
    per_item = math.ceil(sum(sizes) / len(sizes) / 1024)

    (auto,) = costs.before_patch(sc.ctx, preview).estimates
    assert auto.items == preview.to_do == len(sc.changed_ids())
    assert auto.write_units == auto.items * per_item * 2 and auto.capped_by == "max_processes/max_workers"
    (capped,) = costs.before_patch(sc.ctx, preview, max_write_rate=2).estimates  # auto turns single
    assert capped.write_units == auto.items * per_item and capped.minutes == pytest.approx(
        auto.items / 2 / 60
    )
    (transact,) = costs.before_patch(sc.ctx, preview, max_write_rate=2, write_mode="transact").estimates
    assert transact.write_units == 2 * capped.write_units
    assert [e["write_units"] for e in _estimates(sc.ctx)] == [
        auto.write_units,
        capped.write_units,
        transact.write_units,
    ]
    frame = costs.Costs("patch", [auto]).to_frame()
    assert list(frame["figure"]) == [label for label, _ in costs.ROWS]
    shown = frame.set_index("figure")["patch"]
    assert shown["write units"] == f"{auto.write_units:,.0f}" and shown["export GB"] == "0"
    assert shown["minutes"] == "<0.1", "a few seconds are not shown as 0.0 minutes"
    # the line under the table says the same (it said minutes=0.0 beside the table's <0.1)
    assert " export_gb=0 minutes=<0.1 " in auto.line() and auto.line() in costs.Costs("patch", [auto]).text()


def _patch_estimate(sc, preview, **shape) -> estimate.Estimate:
    (shown,) = costs.before_patch(sc.ctx, preview, write_mode="single", **shape).estimates
    return shown


def test_patch_minutes_follow_the_processes_and_workers_of_the_run(aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    preview = patch.apply_plan(sc.ctx, dry_run=True, progress=False)
    one = _patch_estimate(sc, preview)
    four = _patch_estimate(sc, preview, max_processes=4)
    assert one.minutes == pytest.approx(preview.to_do / estimate.PATCH_WRITES_PER_SECOND / 60)
    assert four.minutes == pytest.approx(one.minutes / 4), "4 processes: about 4x fewer minutes"
    assert (one.write_units, one.read_units) == (four.write_units, four.read_units), "same writes either way"
    assert four.capped_by == "max_processes/max_workers"
    assert "4 process(es) x 500 writes/s with max_workers=8" in four.notes[0]
    assert "our planning figure" in four.notes[0] and "not an AWS figure" in four.notes[0]
    half = _patch_estimate(sc, preview, max_workers=4)
    assert half.minutes == pytest.approx(2 * one.minutes), "half the default workers: half the speed"
    assert _patch_estimate(sc, preview, max_workers=32).minutes == pytest.approx(one.minutes)
    assert "capped_by=max_processes/max_workers" in costs.Costs("patch", [four]).text()
    # a bad shape never fails the estimate (the patch itself refuses it, before writing): the defaults are shown
    odd = _patch_estimate(sc, preview, max_processes="four", max_workers=0, segments=[3, 2])
    assert odd.minutes == pytest.approx(one.minutes) and not any("segments" in n for n in odd.notes)


def test_max_write_rate_caps_the_patch_however_many_processes_share_it(aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    preview = patch.apply_plan(sc.ctx, dry_run=True, progress=False)
    one = _patch_estimate(sc, preview, max_write_rate=50)
    four = _patch_estimate(sc, preview, max_write_rate=50, max_processes=4)
    assert one.minutes == pytest.approx(four.minutes) == pytest.approx(preview.to_do / 50 / 60)
    assert one.capped_by == four.capped_by == "max_write_rate"
    assert "max_write_rate=50 writes/s, shared out: 12.5 per process" in four.notes
    assert "capped by max_write_rate: 50 writes/s" in four.notes
    # a rate above what the processes reach caps nothing: the processes do
    fast = _patch_estimate(sc, preview, max_write_rate=5000, max_processes=2)
    assert fast.capped_by == "max_processes/max_workers"
    assert fast.minutes == pytest.approx(preview.to_do / 1000 / 60)


def test_provisioned_write_capacity_caps_the_patch_and_is_shared_by_segments(aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    aws.dynamodb.update_table(
        TableName=sc.table,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 100, "WriteCapacityUnits": 10},
    )
    preview = patch.apply_plan(sc.ctx, dry_run=True, progress=False)
    four = _patch_estimate(sc, preview, max_processes=4, max_write_rate=2000)
    per_item = four.write_units / four.items  # single writes: one unit per KB
    assert four.capped_by == "provisioned write capacity"
    assert four.minutes == pytest.approx(preview.to_do / (10 / per_item) / 60)
    assert f"limited by the table's 10 provisioned write units/s: {10 / per_item:g} writes/s" in four.notes

    machine = patch.apply_plan(sc.ctx, dry_run=True, progress=False, segments=[1, 2])
    assert 0 < machine.to_do < preview.to_do
    mine = _patch_estimate(sc, machine, segments=[1, 2])
    assert mine.items == machine.to_do and mine.capped_by == "provisioned write capacity"
    # the two machines share the table's 10 units/s when run at once
    assert mine.minutes == pytest.approx(machine.to_do / (5 / per_item) / 60)
    assert any("(50% of it for this machine)" in n for n in mine.notes)
    assert any("the 2 machines together take about the same minutes if run at once" in n for n in mine.notes)


def test_the_estimates_read_describe_table_and_at_most_one_small_scan_page(aws, tmp_path, unique_name):
    scans: list[dict] = []
    before_call(aws, "Scan", scans.append)  # every Scan the runbook's clients send from now on
    table = create_table(aws.dynamodb, unique_name)
    _fill(aws.dynamodb, table, estimate.SAMPLE_ITEMS + 50)
    ctx = _ctx(aws, tmp_path, table)
    scans.clear()
    calls = ctx.incident.file(CallRecorder.FILE)
    already = len(calls.read_text().splitlines()) if calls.is_file() else 0

    costs.before_restore(ctx)
    costs.before_diff(ctx, impacted_source=["full_compare", "full_export"])
    lines = [json.loads(x) for x in calls.read_text().splitlines()[already:]]
    # the sandbox reports no TableSizeBytes, so each estimate samples one page; on AWS only DescribeTable
    assert [x["operation"] for x in lines] == ["DescribeTable", "Scan", "DescribeTable", "Scan"]
    assert [s.get("Limit") for s in scans] == [estimate.SAMPLE_ITEMS] * 2
