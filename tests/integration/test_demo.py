"""The demo incident is a faithful test bed: the table differs from the recovery model exactly on the ground truth."""

from __future__ import annotations

import json

import pytest

from recovery_helpers import demo
from recovery_helpers.items import KeySchema


@pytest.fixture(scope="module")
def staged(sandbox, tmp_path_factory):
    import boto3

    from recovery_helpers.aws import Aws

    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    admin = Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)
    out = tmp_path_factory.mktemp("demo")
    return admin, demo.stage(
        admin, out, orders_per_tenant=40, names=demo.Names.for_prefix("demotest"), clock=sandbox.clock.now
    )


def test_before_recovery_the_table_differs_exactly_on_the_ground_truth(staged):
    admin, incident = staged
    result = demo.check(admin, incident)
    truth = [json.loads(line) for line in open(incident.ground_truth_file)]
    assert not result.ok
    assert set(result.corrupted_left) == {t["key_id"] for t in truth}
    assert set(result.missing) == {t["key_id"] for t in truth if t["kind"] == "delete"}
    assert set(result.unexpected) == {t["key_id"] for t in truth if t["kind"] == "create"}
    assert set(result.different) == {t["key_id"] for t in truth if t["kind"] == "update"}
    assert {t["key"]["pk"] for t in truth} == set(incident.affected_tenants)


def test_change_log_covers_every_corrupted_key_inside_the_window(staged):
    _, incident = staged
    truth = {json.loads(line)["key_id"] for line in open(incident.ground_truth_file)}
    key = KeySchema("pk", "S", "sk", "S")
    start = incident.incident_start
    seen = set()
    import datetime as dt

    from recovery_helpers.incident import utc_now  # noqa: F401 - same ISO conventions

    lo = dt.datetime.fromisoformat(start).timestamp() * 1000
    hi = dt.datetime.fromisoformat(incident.incident_end).timestamp() * 1000
    for line in open(incident.log_file):
        record = json.loads(line)
        if lo <= record["timestamp"] < hi and record["ids"]["pk"] in incident.affected_tenants:
            seen.add(key.key_id(key.key_from_plain(record["ids"])))
    assert seen == truth


def test_demo_items_use_every_attribute_type(staged):
    admin, incident = staged
    item = admin.dynamodb.scan(TableName=incident.table_name, Limit=1)["Items"][0]
    types = {next(iter(v)) for v in item.values()}
    assert {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS"} <= types
