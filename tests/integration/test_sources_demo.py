"""Every impacted-item source, driven through the diff on the demo incident, finds exactly the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from recovery_helpers import demo, diff, restore
from recovery_helpers.aws import Aws
from recovery_helpers.context import open_context
from recovery_helpers.plan import iter_plan


@pytest.fixture(scope="module")
def world(sandbox, tmp_path_factory):
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    admin = Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)
    base = tmp_path_factory.mktemp("sources-demo")
    names = demo.Names.for_prefix("srcdemo")
    incident = demo.stage(admin, base / "world", orders_per_tenant=40, names=names, clock=sandbox.clock.now)
    bucket = "srcdemo-exports"
    admin.s3.create_bucket(Bucket=bucket)
    ctx = open_context(
        "srcdemo-restore",
        incident.table_name,
        sandbox.region,
        sandbox.endpoint_url,
        str(base / "runs"),
        aws=admin,
    )
    restored = restore.restore_table(
        ctx, restore_time=incident.restore_time, progress=False, poll_seconds=0.05
    )
    truth = [json.loads(x) for x in Path(incident.ground_truth_file).read_text().splitlines()]
    keys_file = base / "keys.jsonl"
    keys_file.write_text("".join(json.dumps(t["key"]) + "\n" for t in truth))
    return {
        "admin": admin,
        "incident": incident,
        "names": names,
        "bucket": bucket,
        "base": base,
        "restored": restored.restored_table_name,
        "truth": truth,
        "keys_file": str(keys_file),
        "sandbox": sandbox,
    }


def _plan(world, source: str, *, with_restored: bool = True) -> dict[str, str]:
    incident = world["incident"]
    ctx = open_context(
        f"srcdemo-{source}",
        incident.table_name,
        world["sandbox"].region,
        world["sandbox"].endpoint_url,
        str(world["base"] / "runs"),
        aws=world["admin"],
    )
    if with_restored:
        ctx.incident.set("restored_table_name", world["restored"])
    diff.build_plan(
        ctx,
        impacted_source=source,
        keys_file=world["keys_file"],
        log_file=incident.log_file,
        log_group=world["names"].log_group,
        audit_table_name=world["names"].audit_table,
        updated_attribute="updatedAt",
        incident_start=incident.incident_start,
        incident_end=incident.incident_end,
        tenant_attribute=demo.TENANT_ATTRIBUTE,
        tenants=incident.affected_tenants,
        progress=False,
        source_options={"export_bucket": world["bucket"], "export_min_window_seconds": 1},
    )
    return {entry.key_id: entry.classification for entry in iter_plan(ctx.incident)}


EXPECTED_CLASS = {"update": "changed", "delete": "deleted", "create": "created"}


@pytest.mark.parametrize(
    "source", ["keys_file", "log_file", "cloudwatch_logs", "audit_table", "full_compare"]
)
def test_source_finds_exactly_the_corrupted_items(world, source):
    plan = _plan(world, source)
    assert plan == {t["key_id"]: EXPECTED_CLASS[t["kind"]] for t in world["truth"]}


def test_incremental_export_needs_no_restored_table(world):
    plan = _plan(world, "incremental_export", with_restored=False)
    assert plan == {t["key_id"]: EXPECTED_CLASS[t["kind"]] for t in world["truth"]}


def test_updated_attribute_misses_only_deletes(world):
    plan = _plan(world, "updated_attribute")
    expected = {t["key_id"]: EXPECTED_CLASS[t["kind"]] for t in world["truth"] if t["kind"] != "delete"}
    assert plan == expected  # deletes leave no attribute behind: the report warns about exactly this


def test_sources_combined_report_what_only_each_found(world):
    incident = world["incident"]
    ctx = open_context(
        "srcdemo-combined",
        incident.table_name,
        world["sandbox"].region,
        world["sandbox"].endpoint_url,
        str(world["base"] / "runs"),
        aws=world["admin"],
    )
    ctx.incident.set("restored_table_name", world["restored"])
    result = diff.build_plan(
        ctx,
        impacted_source=["log_file", "updated_attribute"],
        log_file=incident.log_file,
        updated_attribute="updatedAt",
        incident_start=incident.incident_start,
        incident_end=incident.incident_end,
        tenant_attribute=demo.TENANT_ATTRIBUTE,
        tenants=incident.affected_tenants,
        progress=False,
    )
    deletes = sum(1 for t in world["truth"] if t["kind"] == "delete")
    assert {e.key_id for e in iter_plan(ctx.incident)} == {t["key_id"] for t in world["truth"]}
    rows = result.sources.reset_index().to_dict("records")
    only = {r["source"]: r["only this source"] for r in rows}
    assert only == {"log_file": deletes, "updated_attribute": 0}
    warning = next(r["problems"] for r in rows if r["source"] == "updated_attribute")
    assert "deletes are invisible" in warning
