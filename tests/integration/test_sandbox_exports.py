"""The sandbox's exports look like AWS's and match the table's history record for record."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from recovery_helpers.items import canonical_json
from tests.conftest import create_table


def _boundary(sandbox):
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


def _read_export(s3, bucket, manifest_key):
    summary = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    files = s3.get_object(Bucket=bucket, Key=summary["manifestFilesS3Key"])["Body"].read().decode()
    lines = []
    for entry in map(json.loads, files.splitlines()):
        data = s3.get_object(Bucket=bucket, Key=entry["dataFileS3Key"])["Body"].read()
        assert base64.b64encode(hashlib.md5(data).digest()).decode() == entry["md5Checksum"]
        chunk = [json.loads(x) for x in gzip.decompress(data).decode().splitlines() if x]
        assert len(chunk) == entry["itemCount"]
        lines.extend(chunk)
    assert summary["itemCount"] == len(lines)
    return summary, lines


def _scan_canonical(ddb, table):
    items = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return sorted(canonical_json(i) for i in items)


@pytest.fixture
def history(sandbox, aws, unique_name):
    """A table with writes before t0, inside [t0, t1), and after t1; plus the bucket."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    aws.s3.create_bucket(Bucket=unique_name.lower()[:60])
    for i in range(1500):  # more than one data file
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"p{i % 7}"},
                "sk": {"S": f"{i:05d}"},
                "n": {"N": str(i)},
                "b": {"B": bytes([i % 256])},
            },
        )
    t0 = _boundary(sandbox)
    at_t0 = _scan_canonical(ddb, table)
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "p0"}, "sk": {"S": "00000"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "-1"}},
    )
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p1"}, "sk": {"S": "00001"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "new"}, "sk": {"S": "x"}})
    # changed, then changed back: still a write in the window
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "p2"}, "sk": {"S": "00002"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "77"}},
    )
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "p2"}, "sk": {"S": "00002"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    t1 = _boundary(sandbox)
    at_t1 = _scan_canonical(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "later"}, "sk": {"S": "y"}})
    _boundary(sandbox)
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    return {
        "table": table,
        "arn": arn,
        "bucket": unique_name.lower()[:60],
        "t0": t0,
        "t1": t1,
        "at_t0": at_t0,
        "at_t1": at_t1,
    }


def test_full_export_is_the_table_as_of_export_time(sandbox, aws, history):
    ddb, s3 = aws.dynamodb, aws.s3
    out = ddb.export_table_to_point_in_time(
        TableArn=history["arn"],
        ExportTime=history["t0"],
        S3Bucket=history["bucket"],
        S3Prefix="exports/full",
        ExportFormat="DYNAMODB_JSON",
    )["ExportDescription"]
    desc = ddb.describe_export(ExportArn=out["ExportArn"])["ExportDescription"]
    assert desc["ExportStatus"] == "COMPLETED"
    assert desc["ExportManifest"].startswith("exports/full/AWSDynamoDB/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=history["bucket"])["Contents"]]
    root = desc["ExportManifest"].rsplit("/", 1)[0]
    assert f"{root}/_started" in keys and f"{root}/manifest-files.json" in keys
    assert sum(1 for k in keys if k.startswith(f"{root}/data/") and k.endswith(".json.gz")) >= 2
    summary, lines = _read_export(s3, history["bucket"], desc["ExportManifest"])
    assert summary["exportType"] == "FULL_EXPORT" and desc["ItemCount"] == len(lines)
    assert sorted(canonical_json(line["Item"]) for line in lines) == history["at_t0"]


def test_incremental_export_is_the_window_compacted(sandbox, aws, history):
    ddb, s3 = aws.dynamodb, aws.s3
    spec = {
        "ExportFromTime": history["t0"],
        "ExportToTime": history["t1"],
        "ExportViewType": "NEW_AND_OLD_IMAGES",
    }
    out = ddb.export_table_to_point_in_time(
        TableArn=history["arn"],
        S3Bucket=history["bucket"],
        S3Prefix="inc",
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification=spec,
    )["ExportDescription"]
    desc = ddb.describe_export(ExportArn=out["ExportArn"])["ExportDescription"]
    summary, lines = _read_export(s3, history["bucket"], desc["ExportManifest"])
    assert summary["exportType"] == "INCREMENTAL_EXPORT"
    by_key = {(line["Keys"]["pk"]["S"], line["Keys"]["sk"]["S"]): line for line in lines}
    assert set(by_key) == {("p0", "00000"), ("p1", "00001"), ("new", "x"), ("p2", "00002")}
    assert by_key[("p0", "00000")]["OldImage"]["n"] == {"N": "0"}
    assert by_key[("p0", "00000")]["NewImage"]["n"] == {"N": "-1"}
    assert "NewImage" not in by_key[("p1", "00001")] and "OldImage" in by_key[("p1", "00001")]
    assert "OldImage" not in by_key[("new", "x")] and "NewImage" in by_key[("new", "x")]
    for line in lines:
        micros = int(line["Metadata"]["WriteTimestampMicros"]["N"])
        assert history["t0"].timestamp() * 1e6 <= micros < history["t1"].timestamp() * 1e6
    # applying the new images over the state at t0 gives the state at t1: record for record
    state = {}
    for text in history["at_t0"]:
        item = json.loads(text)
        state[(item["pk"]["S"], item["sk"]["S"])] = text
    for key, line in by_key.items():
        if "NewImage" in line:
            state[key] = canonical_json(line["NewImage"])
        else:
            state.pop(key, None)
    assert sorted(state.values()) == history["at_t1"]


def test_export_rules_match_aws(sandbox, aws, history):
    ddb = aws.dynamodb
    sandbox.configure(export_min_window_seconds=900)
    spec = {"ExportFromTime": history["t0"], "ExportToTime": history["t1"]}
    with pytest.raises(ClientError) as err:
        ddb.export_table_to_point_in_time(
            TableArn=history["arn"],
            S3Bucket=history["bucket"],
            ExportType="INCREMENTAL_EXPORT",
            IncrementalExportSpecification=spec,
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "900" in err.value.response["Error"]["Message"]
    sandbox.configure(export_min_window_seconds=1, export_seconds=300)
    out = ddb.export_table_to_point_in_time(
        TableArn=history["arn"],
        S3Bucket=history["bucket"],
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification=spec,
        ClientToken="same-token",
    )["ExportDescription"]
    assert out["ExportStatus"] == "IN_PROGRESS"
    again = ddb.export_table_to_point_in_time(
        TableArn=history["arn"],
        S3Bucket=history["bucket"],
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification=spec,
        ClientToken="same-token",
    )["ExportDescription"]
    assert again["ExportArn"] == out["ExportArn"]
    sandbox.advance(301)
    assert ddb.describe_export(ExportArn=out["ExportArn"])["ExportDescription"]["ExportStatus"] == "COMPLETED"
    missing = ddb.export_table_to_point_in_time(
        TableArn=history["arn"], S3Bucket="no-such-bucket-here", ExportTime=history["t0"]
    )["ExportDescription"]
    failed = ddb.describe_export(ExportArn=missing["ExportArn"])["ExportDescription"]
    assert failed["ExportStatus"] == "FAILED" and failed["FailureCode"] == "S3NoSuchBucket"
