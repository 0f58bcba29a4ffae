"""Every AWS call a step makes is on record with the caller's identity, and nothing secret is."""

from __future__ import annotations

import json

from recovery_helpers.context import open_context
from tests.conftest import create_table


def test_every_call_is_recorded_with_the_caller(sandbox, aws, unique_name, tmp_path):
    create_table(aws.dynamodb, unique_name)
    ctx = open_context("calls", unique_name, sandbox.region, sandbox.endpoint_url, str(tmp_path), aws=aws)
    ctx.aws.dynamodb.describe_table(TableName=unique_name)
    ctx.aws.dynamodb.put_item(TableName=unique_name, Item={"pk": {"S": "secret-value"}, "sk": {"S": "1"}})
    try:
        ctx.aws.dynamodb.describe_table(TableName="no-such-table-here")
    except ctx.aws.dynamodb.exceptions.ResourceNotFoundException:
        pass
    ctx.record("done")  # any timeline write also saves the call counts

    lines = [json.loads(x) for x in (tmp_path / "calls" / "aws-calls.jsonl").read_text().splitlines()]
    admin = aws.caller_arn
    calls = [(x["operation"], x.get("TableName"), x["result"]) for x in lines]
    assert ("DescribeTable", unique_name, "ok") in calls
    assert ("PutItem", unique_name, "ok") in calls
    assert ("DescribeTable", "no-such-table-here", "error") in calls
    assert all(x["who"] == admin for x in lines if x["operation"] != "GetCallerIdentity")

    data = json.loads((tmp_path / "calls" / "incident.json").read_text())
    counts = {(c["who"], c["call"], c["result"]): c["count"] for c in data["aws_calls"]}
    assert counts[(admin, "dynamodb:DescribeTable", "ok")] == 1
    assert counts[(admin, "dynamodb:PutItem", "ok")] == 1

    text = "".join(p.read_text() for p in (tmp_path / "calls").iterdir())
    assert "secret-value" not in text  # item contents are never recorded
    assert sandbox.admin_secret_access_key not in text and sandbox.admin_access_key_id not in text
