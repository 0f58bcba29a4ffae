"""The runbook end to end: all six notebooks headless against the sandbox, on the demo incident."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from recovery_helpers import demo
from recovery_helpers.aws import Aws
from recovery_helpers.runner import STEPS, run_steps
from tests.conftest import table_names


def _admin(sandbox) -> Aws:
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    return Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)


def _stage(sandbox, tmp_path: Path, prefix: str):
    admin = _admin(sandbox)
    incident = demo.stage(
        admin,
        tmp_path / "world",
        orders_per_tenant=25,
        names=demo.Names.for_prefix(prefix),
        clock=sandbox.clock.now,
    )
    params = demo.demo_parameters(
        incident, incident_id=prefix, endpoint_url=sandbox.endpoint_url, runs_dir=str(tmp_path / "runs")
    )
    return admin, incident, params


def _journal(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines() if x.strip()]


def test_full_run_recovers_every_corrupted_item_and_keeps_every_legitimate_write(sandbox, tmp_path):
    admin, incident, params = _stage(sandbox, tmp_path, "e2efull")
    assert not demo.check(admin, incident).ok  # the incident is real
    result = run_steps(params)
    assert result.ok, result.summary()
    outcome = demo.check(admin, incident)
    assert outcome.ok, outcome.lines()

    run_dir = tmp_path / "runs" / "e2efull"
    for number, step in enumerate(STEPS, start=1):
        assert (run_dir / f"0{number}_{step}.ipynb").exists()
        assert (run_dir / f"0{number}_{step}.html").exists()
    record = json.loads((run_dir / "incident.json").read_text())
    assert record["closed"] and record["timeline"]
    assert all({"time", "who", "action", "result"} <= set(event) for event in record["timeline"])
    truth = {json.loads(x)["key_id"] for x in Path(incident.ground_truth_file).read_text().splitlines()}
    touched = {e["key_id"] for e in _journal(run_dir) if e["status"] == "patched"}
    assert touched == truth  # exactly the corrupted items were written, nothing else
    backed_up = {json.loads(x)["key_id"] for x in (run_dir / "backup.jsonl").read_text().splitlines() if x}
    assert touched <= backed_up
    # lift put things back: the app can write, the parameter is what it was, the restored table is gone
    assert (
        admin.ssm.get_parameter(Name=incident.resources.read_only_parameter)["Parameter"]["Value"] == "none"
    )
    attached = admin.iam.list_attached_role_policies(RoleName=incident.resources.app_role)["AttachedPolicies"]
    assert not any(p["PolicyName"] == incident.resources.deny_policy for p in attached)
    assert not [t for t in table_names(admin.dynamodb) if t.startswith(f"{incident.table_name}-restored")]


def test_a_write_made_after_review_is_a_conflict_and_survives(sandbox, tmp_path):
    admin, incident, params = _stage(sandbox, tmp_path, "e2econflict")
    assert run_steps(params, ["prepare", "contain", "restore", "diff"]).ok
    truth = [json.loads(x) for x in Path(incident.ground_truth_file).read_text().splitlines()]
    victim = next(t for t in truth if t["kind"] == "update")
    key = demo.KEY.key_from_plain(victim["key"])
    # a support engineer (not the contained app) fixes one order by hand between review and patch
    admin.dynamodb.update_item(
        TableName=incident.table_name,
        Key=key,
        UpdateExpression="SET currency = :c",
        ExpressionAttributeValues={":c": {"S": "CHF"}},
    )
    assert run_steps(params, ["patch", "lift"]).ok
    statuses = {e["key_id"]: e["status"] for e in _journal(tmp_path / "runs" / "e2econflict")}
    assert statuses[victim["key_id"]] == "conflict"
    item = admin.dynamodb.get_item(TableName=incident.table_name, Key=key, ConsistentRead=True)["Item"]
    assert item["currency"] == {"S": "CHF"}  # not overwritten
    others = demo.check(admin, incident)
    assert set(others.corrupted_left) == {victim["key_id"]}  # every other corrupted item is recovered


def test_nothing_unapproved_is_written(sandbox, tmp_path):
    admin, incident, params = _stage(sandbox, tmp_path, "e2enoapprove")
    params = {**params, "approve": False}
    before = admin.dynamodb.scan(TableName=incident.table_name, Select="COUNT")["Count"]
    result = run_steps(params, ["prepare", "contain", "restore", "diff", "patch"])
    assert not result.ok and result.failed_step == "patch"
    assert "approv" in (result.failed.error or "").lower()
    assert admin.dynamodb.scan(TableName=incident.table_name, Select="COUNT")["Count"] == before
    assert not demo.check(admin, incident).ok
    assert run_steps(params, ["lift"]).ok
