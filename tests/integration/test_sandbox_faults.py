"""Realism knobs: injected throttling, 5xx and dropped connections are retried by boto3; latency is added."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import create_table


def _client(sandbox, attempts):
    return sandbox.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": attempts}))


@pytest.mark.parametrize("fault", ["throttle_rate", "error_rate", "drop_rate"])
def test_injected_faults_are_retried_by_boto3(sandbox, aws, unique_name, fault):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    ddb = _client(sandbox, attempts=20)
    sandbox.reset_counters()
    sandbox.configure(**{fault: 0.2}, fault_seed=7)
    for i in range(40):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    sandbox.configure(**{fault: 0.0})
    injected = sum(sandbox.faults.values())
    assert injected > 0
    assert sandbox.calls["PutItem"] == 40 + injected  # every fault cost exactly one retry
    assert aws.dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 40


def test_throttling_without_retries_surfaces_aws_error(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    ddb = _client(sandbox, attempts=1)
    sandbox.configure(throttle_rate=1.0, fault_operations=["GetItem"])
    with pytest.raises(ClientError) as err:
        ddb.get_item(TableName=table, Key={"pk": {"S": "x"}})
    assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    ddb.put_item(TableName=table, Item={"pk": {"S": "x"}})  # not in fault_operations: untouched


def test_latency_is_added_to_every_request(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    sandbox.configure(latency_ms=50)
    start = time.perf_counter()
    for _ in range(4):
        aws.dynamodb.get_item(TableName=table, Key={"pk": {"S": "x"}})
    assert time.perf_counter() - start >= 4 * 0.050  # a lower bound: sleeping guarantees it


def test_control_api_over_http(sandbox):
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{sandbox.endpoint_url}/_sandbox/settings",
        method="POST",
        data=json.dumps({"latency_ms": 3}).encode(),
    )
    assert json.loads(urllib.request.urlopen(req).read())["latency_ms"] == 3
    assert sandbox.settings.latency_ms == 3
    bad = urllib.request.Request(
        f"{sandbox.endpoint_url}/_sandbox/settings",
        method="POST",
        data=json.dumps({"no_such_knob": 1}).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad)
    assert err.value.code == 400


def test_sandbox_refuses_a_second_instance_in_one_process(sandbox):
    from recovery_helpers.sandbox import Sandbox

    with pytest.raises(RuntimeError, match="already running"):
        Sandbox().start()
    assert boto3  # the running one is untouched
    sandbox.client("sts").get_caller_identity()


def test_faults_reach_control_calls_and_s3_when_named(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    bucket = unique_name.lower()[:60]
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    ddb, s3 = (
        _client(sandbox, attempts=20),
        sandbox.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 20})),
    )
    sandbox.reset_counters()
    sandbox.configure(
        throttle_rate=0.1,
        error_rate=0.05,
        drop_rate=0.05,
        fault_seed=11,
        fault_operations=["DescribeTable", "S3:GET"],
    )
    for _ in range(15):
        assert ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    injected = sum(sandbox.faults.values())
    assert injected > 0
    assert sandbox.calls["DescribeTable"] + sandbox.calls["S3:GET"] == 30 + injected


def test_iam_and_sts_faults_are_answered_in_their_own_protocol(sandbox):
    iam = sandbox.client("iam", config=Config(retries={"mode": "standard", "max_attempts": 20}))
    sandbox.reset_counters()
    sandbox.configure(throttle_rate=0.2, error_rate=0.1, fault_seed=5, fault_operations=["ListRoles"])
    for _ in range(10):
        iam.list_roles()  # every fault is parsed as a retryable AWS error and retried
    assert sum(sandbox.faults.values()) > 0
    assert sandbox.calls["ListRoles"] == 10 + sum(sandbox.faults.values())


def test_the_same_seed_replays_the_same_faults(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    ddb = _client(sandbox, attempts=1)

    def pattern():
        sandbox.configure(error_rate=0.5, fault_seed=3, fault_operations=["GetItem"])
        out = []
        for _ in range(12):
            try:
                ddb.get_item(TableName=table, Key={"pk": {"S": "x"}})
                out.append("ok")
            except ClientError:
                out.append("fault")
        return out

    first = pattern()
    assert "fault" in first and "ok" in first
    assert pattern() == first
