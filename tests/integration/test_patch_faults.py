"""The patch under throttling and with a write-rate limit: slower, never wrong."""

from __future__ import annotations

import boto3
from botocore.config import Config

from recovery_helpers import patch
from recovery_helpers.aws import Aws
from recovery_helpers.context import open_context
from recovery_helpers.items import items_equal
from tests.unit.patch.test_patch import assert_recovered, make_scenario, writes


def _unchanged_except(sc, before, changed):
    after = sc.snapshot()
    for k in set(before) | set(after):
        if k not in changed:
            assert items_equal(before.get(k), after.get(k)), k


def test_throttling_at_20_percent_still_patches_every_approved_item_and_nothing_else(
    sandbox, aws, tmp_path, unique_name
):
    sc = make_scenario(aws, tmp_path, unique_name, n=30)
    rejected = sc.updated[0]
    sc.approve(reject=(rejected,))
    approved = [k for k in sc.changed_ids() if k != rejected]
    before = sc.snapshot()
    sandbox.configure(throttle_rate=0.2, fault_seed=7)
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    sandbox.configure(throttle_rate=0.0)
    assert sandbox.faults.get("throttle", 0) > 0
    assert report.ok and report.patched == len(approved), report.summary()
    assert_recovered(sc, approved)
    _unchanged_except(sc, before, set(approved))


def test_throttling_past_the_sdk_retries_slows_the_engine_down(sandbox, aws, tmp_path, unique_name):
    """With the SDK's retries off, every throttle reaches the engine, which pauses all workers and retries."""
    sc = make_scenario(aws, tmp_path, unique_name, n=18)
    sc.approve()
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    no_retries = Aws(
        region=sandbox.region,
        endpoint_url=sandbox.endpoint_url,
        session=session,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),  # no SDK retries at all
    )
    ctx = open_context("inc", sc.table, runs_dir=str(sc.runs_dir), aws=no_retries)
    _ = ctx.who  # resolve the caller before faults start (STS is not throttled, but keep it out of the way)
    sandbox.configure(
        throttle_rate=0.3,
        fault_seed=3,
        fault_operations=["PutItem", "DeleteItem", "BatchGetItem", "TransactWriteItems"],
    )
    report = patch.apply_plan(ctx, dry_run=False, max_workers=4, progress=False)
    sandbox.configure(throttle_rate=0.0, fault_operations=[])
    assert report.throttled > 0 and report.rate.pauses == report.throttled
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert_recovered(sc, sc.changed_ids())


def test_max_write_rate_is_respected_over_the_run(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=30)
    sc.approve()
    calls = sandbox.calls
    rate = 25.0
    # write_mode="auto" (the default) writes one item per call under a rate limit: calls == items
    report = patch.apply_plan(sc.ctx, dry_run=False, max_write_rate=rate, max_workers=8, progress=False)
    assert report.ok
    stats = report.rate
    assert stats.granted == writes(sandbox, calls) == len(sc.changed_ids())  # every write went through it
    assert stats.observed_rate() <= rate * 1.10
    # the whole run cannot have been faster than the rate allows (sleep never returns early)
    assert report.elapsed_seconds >= (stats.granted - 1) / rate


def test_server_errors_and_dropped_connections_still_end_correct(sandbox, aws, tmp_path, unique_name):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    before = sc.snapshot()
    sandbox.configure(error_rate=0.1, drop_rate=0.1, fault_seed=11)
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    faults = dict(sandbox.faults)
    sandbox.configure(error_rate=0.0, drop_rate=0.0)
    assert faults.get("error", 0) + faults.get("drop", 0) > 0
    if (
        not report.ok
    ):  # anything that outlived the SDK's retries is journaled as failed; a second run finishes
        report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert report.failed == 0 and report.conflicts == 0, report.summary()
    assert_recovered(sc, sc.changed_ids())
    _unchanged_except(sc, before, set(sc.changed_ids()))
    assert patch.verify(sc.ctx).ok


def test_a_denied_write_stops_the_run_and_a_later_run_finishes(sandbox, aws, tmp_path, unique_name):
    import json

    import pytest

    from recovery_helpers.errors import PermissionDeniedError

    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    iam = aws.iam
    user = f"{unique_name}-ro"[:64]
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    denied = aws.with_credentials(
        {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    )
    ctx = open_context("inc", sc.table, runs_dir=str(sc.runs_dir), aws=denied)
    before = sc.snapshot()
    with pytest.raises(PermissionDeniedError, match="PutItem|DeleteItem"):
        patch.apply_plan(ctx, dry_run=False, max_workers=2, progress=False)
    assert sc.snapshot() == before
    finished = [e for e in ctx.incident.timeline if e["action"] == "patch finished"][-1]
    assert finished["result"] == "stopped" and "denied" in finished["error"]
    # with write permission the same patch resumes (backups taken before the denied writes are used) and ends
    report = patch.apply_plan(sc.ctx, dry_run=False, progress=False)
    assert report.failed == 0 and report.conflicts == 0
    assert report.patched + report.already_done == len(sc.changed_ids())
    assert_recovered(sc, sc.changed_ids())
