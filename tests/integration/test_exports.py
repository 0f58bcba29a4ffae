"""Reading DynamoDB exports: windows AWS accepts, waiting with backoff, manifests, checked streamed data."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from boto3.dynamodb.types import Binary

from recovery_helpers.errors import InputError, NotReadyError, RecoveryError, VerificationError
from recovery_helpers.items import canonical_json, from_python, iter_chunks
from recovery_helpers.resources import exports
from tests.conftest import create_table

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=dt.UTC)


def test_windows_are_whole_seconds_covering_the_request():
    plan = exports.plan_windows(T0, T0 + dt.timedelta(hours=1, microseconds=1))
    assert [(w.start, w.end) for w in plan.windows] == [
        (T0.replace(microsecond=0), T0.replace(microsecond=0) + dt.timedelta(hours=1, seconds=1))
    ]
    assert plan.notes == []


def test_short_windows_widen_backwards_to_the_minimum():
    plan = exports.plan_windows(T0, T0 + dt.timedelta(minutes=2))
    (w,) = plan.windows
    assert w.end == T0.replace(microsecond=0) + dt.timedelta(minutes=2, seconds=1)
    assert w.end - w.start == dt.timedelta(seconds=900)
    assert "widened backwards" in plan.notes[0]
    (w,) = exports.plan_windows(T0, T0 + dt.timedelta(minutes=2), min_seconds=60).windows
    assert w.end - w.start == dt.timedelta(minutes=2, seconds=1)


def test_long_windows_become_a_chain_of_equal_exports_within_24h():
    start = T0.replace(microsecond=0)
    plan = exports.plan_windows(start, start + dt.timedelta(hours=50))
    assert len(plan.windows) == 3
    assert plan.windows[0].start == start and plan.windows[-1].end == start + dt.timedelta(hours=50)
    for a, b in zip(plan.windows, plan.windows[1:], strict=False):
        assert a.end == b.start
    assert all(w.end - w.start <= dt.timedelta(hours=24) for w in plan.windows)
    # 24h + 5 min must not leave a 5-minute tail (below the minimum)
    plan = exports.plan_windows(start, start + dt.timedelta(hours=24, minutes=5))
    assert [w.end - w.start for w in plan.windows] == [dt.timedelta(hours=12, seconds=150)] * 2


def test_pitr_range_clamps_and_refuses_what_cannot_be_exported():
    start = T0.replace(microsecond=0)
    plan = exports.plan_windows(start, start + dt.timedelta(hours=2), latest=start + dt.timedelta(hours=1))
    assert plan.windows[0].end == start + dt.timedelta(hours=1) and "latest restorable" in plan.notes[0]
    with pytest.raises(NotReadyError, match="Wait a few minutes"):
        exports.plan_windows(start, start + dt.timedelta(hours=2), latest=start - dt.timedelta(seconds=1))
    with pytest.raises(NotReadyError, match="another impacted_source"):
        exports.plan_windows(start, start + dt.timedelta(minutes=5), earliest=start)
    with pytest.raises(InputError, match="empty"):
        exports.plan_windows(start, start)
    with pytest.raises(InputError, match="time zone"):
        exports.plan_windows(start.replace(tzinfo=None), start.replace(tzinfo=None) + dt.timedelta(hours=1))


@pytest.fixture
def exported(aws, sandbox, unique_name):
    """A table of 2,300 items of every type (three data files), exported in full; returns what is needed."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("id", "N"), range_key=("b", "B"))
    bucket = unique_name.lower()[:50]
    aws.s3.create_bucket(Bucket=bucket)
    items = [
        from_python(
            {
                "id": i,
                "b": Binary(bytes([i % 256, 1])),
                "s": f"x{i}",
                "ss": {"a", "b"},
                "m": {"l": [1, None, True]},
                "bs": {Binary(b"\x00")},
            }
        )
        for i in range(2300)
    ]
    for chunk in iter_chunks(items, 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in chunk]})
    sandbox.advance(2)
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    desc = exports.start_full_export(aws, arn, bucket, "full")
    done = exports.wait_for_exports(aws, [desc["ExportArn"]], timeout_seconds=60)
    return {"table": table, "bucket": bucket, "items": items, "desc": done[desc["ExportArn"]], "arn": arn}


def test_full_export_streams_every_item(aws, exported):
    manifest = exports.read_manifest(aws, exported["desc"])
    assert manifest.export_type == "FULL_EXPORT" and manifest.item_count == 2300
    assert len(manifest.files) >= 2
    got = sorted(canonical_json(i) for i in exports.iter_items(aws, manifest))
    assert got == sorted(canonical_json(i) for i in exported["items"])
    assert (
        exports.manifest_summary_key({**exported["desc"], "ExportManifest": None})
        == exported["desc"]["ExportManifest"]
    ), "the manifest location is derivable from the ARN too"


def test_a_tampered_data_file_is_detected(aws, exported):
    manifest = exports.read_manifest(aws, exported["desc"])
    key = manifest.files[0]["dataFileS3Key"]
    original = gzip.decompress(aws.s3.get_object(Bucket=exported["bucket"], Key=key)["Body"].read())
    lines = original.splitlines(keepends=True)
    aws.s3.put_object(Bucket=exported["bucket"], Key=key, Body=gzip.compress(b"".join(lines[:-1])))
    with pytest.raises(VerificationError, match="MD5"):
        list(exports.iter_items(aws, manifest))
    unchecked = exports.Manifest(
        manifest.bucket, manifest.summary, [{**manifest.files[0], "md5Checksum": None}]
    )
    with pytest.raises(VerificationError, match="manifest says"):
        list(exports.iter_items(aws, unchecked))
    aws.s3.delete_object(Bucket=exported["bucket"], Key=key)
    with pytest.raises(VerificationError, match="missing"):
        list(exports.iter_items(aws, manifest))


def test_waiting_backs_off_until_completed_and_respects_the_timeout(aws, sandbox, exported):
    sandbox.configure(export_seconds=100)
    desc = exports.start_full_export(aws, exported["arn"], exported["bucket"], "slow")
    clock = lambda: sandbox.now().timestamp()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        sandbox.advance(seconds)

    with pytest.raises(NotReadyError, match="Run the step again"):
        exports.wait_for_exports(
            aws, [desc["ExportArn"]], timeout_seconds=20, clock=clock, sleep=sleep, max_interval=8
        )
    assert sum(sleeps) <= 20 + 1e-6
    sleeps.clear()
    done = exports.wait_for_exports(
        aws, [desc["ExportArn"]], timeout_seconds=600, clock=clock, sleep=sleep, max_interval=8
    )
    assert done[desc["ExportArn"]]["ExportStatus"] == "COMPLETED"
    assert sleeps[0] < sleeps[2] and max(sleeps) <= 8 * 1.25


def test_a_failed_export_says_what_to_do(aws, exported):
    desc = exports.start_full_export(aws, exported["arn"], "no-such-bucket-for-exports", "x")
    with pytest.raises(RecoveryError, match="export_prefix"):
        exports.wait_for_exports(aws, [desc["ExportArn"]], timeout_seconds=60, sleep=lambda s: None)
