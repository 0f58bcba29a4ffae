"""The sandbox refuses what DynamoDB refuses (issue 14): a rehearsal that passes here must not fail on AWS.

Each test sends, through boto3 over HTTP, a request DynamoDB answers with a 400, and checks the code a client
branches on, the message where the runbook shows it, and that nothing was written.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table


def _code(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Code"], response["Error"]["Message"]


def _put(i: int) -> dict:
    return {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}}


def test_a_batch_of_26_writes_is_refused_and_writes_nothing(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    other = create_table(ddb, unique_name + "-b", range_key=None, pitr=False)
    code, _ = _code(ddb.batch_write_item, RequestItems={table: [_put(i) for i in range(26)]})
    assert code == "ValidationException"
    code, message = _code(
        ddb.batch_write_item,
        RequestItems={table: [_put(i) for i in range(13)], other: [_put(i) for i in range(13)]},
    )
    assert (code, message) == ("ValidationException", "Too many items requested for the BatchWriteItem call")
    assert ddb.scan(TableName=table)["Count"] == 0 and ddb.scan(TableName=other)["Count"] == 0
    ddb.batch_write_item(RequestItems={table: [_put(i) for i in range(25)]})
    assert ddb.scan(TableName=table)["Count"] == 25


def test_a_put_and_a_delete_of_one_key_in_one_batch_are_refused(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"S": "old"}})
    for requests in (
        [{"PutRequest": {"Item": {**key, "v": {"S": "new"}}}}, {"DeleteRequest": {"Key": key}}],
        [{"DeleteRequest": {"Key": key}}, {"DeleteRequest": {"Key": key}}],
    ):
        code, message = _code(ddb.batch_write_item, RequestItems={table: requests})
        assert (code, message) == ("ValidationException", "Provided list of item keys contains duplicates")
    assert ddb.get_item(TableName=table, Key=key)["Item"]["v"] == {"S": "old"}


def test_keys_over_dynamodbs_sizes_are_refused_on_every_path(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    big_hash, big_range = "h" * 2049, "r" * 1025
    ok_hash, ok_range = "é" * 1024, "r" * 1024  # 2048 and 1024 bytes: the limits themselves are allowed
    ddb.put_item(TableName=table, Item={"pk": {"S": ok_hash}, "sk": {"S": ok_range}})
    for key, word in (
        ({"pk": {"S": big_hash}, "sk": {"S": "a"}}, "hashkey"),
        ({"pk": {"S": "a"}, "sk": {"S": big_range}}, "range keys"),
    ):
        for call, kwargs in (
            (ddb.put_item, {"Item": key}),
            (ddb.get_item, {"Key": key}),
            (ddb.delete_item, {"Key": key}),
            (
                ddb.update_item,
                {
                    "Key": key,
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "x"}},
                },
            ),
            ("batch", None),
        ):
            if call == "batch":
                code, message = _code(
                    ddb.batch_write_item, RequestItems={table: [{"PutRequest": {"Item": key}}]}
                )
            else:
                code, message = _code(call, TableName=table, **kwargs)
            assert code == "ValidationException" and word in message, (call, message)
    assert ddb.scan(TableName=table)["Count"] == 1


def test_a_key_that_does_not_match_the_schema_is_refused(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    for key in (
        {"pk": {"S": "a"}},
        {"pk": {"S": "a"}, "sk": {"N": "1"}},
        {"pk": {"S": "a"}, "sk": {"S": "1"}, "x": {"S": "extra"}},
    ):
        code, message = _code(ddb.get_item, TableName=table, Key=key)
        assert (code, message) == (
            "ValidationException",
            "The provided key element does not match the schema",
        )
    code, message = _code(ddb.put_item, TableName=table, Item={"pk": {"S": "a"}, "sk": {"N": "1"}})
    assert "Type mismatch for key sk" in message


def test_the_item_size_limit_is_409600_bytes_as_dynamodb_counts_them(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    # pk (2) + "a" (1) + data (4) + value: exactly 409,600 bytes is allowed, one more is not
    room = 409_600 - (2 + 1) - 4
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "data": {"S": "x" * room}})
    code, message = _code(
        ddb.put_item, TableName=table, Item={"pk": {"S": "b"}, "data": {"S": "x" * (room + 1)}}
    )
    assert (code, message) == ("ValidationException", "Item size has exceeded the maximum allowed size")
    code, message = _code(
        ddb.update_item,
        TableName=table,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET more = :m",
        ExpressionAttributeValues={":m": {"S": "y"}},
    )
    assert code == "ValidationException" and "Item size to update" in message
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]
    assert set(item) == {"pk", "data"}, "a refused update changes nothing"
    assert ddb.scan(TableName=table)["Count"] == 1


def test_wrongly_typed_json_is_a_serialization_exception_not_a_500(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None, pitr=False)
    cases = [
        ({"TableName": table, "Key": "not a map"}, "Unexpected field type"),
        ({"TableName": table, "Key": {"pk": {"S": 5}}}, "NUMBER_VALUE cannot be converted to String"),
        (
            {"TableName": table, "Key": {"pk": {"S": "a"}}, "ConsistentRead": 23},
            "NUMBER_VALUE cannot be converted to Boolean",
        ),
        ({"TableName": False, "Key": {"pk": {"S": "a"}}}, "FALSE_VALUE cannot be converted to String"),
    ]
    for body, message in cases:
        status, answer = _raw(sandbox, "GetItem", body)
        assert status == 400, answer
        assert answer == {"__type": "com.amazon.coral.service#SerializationException", "Message": message}


def test_every_refusal_carries_dynamodbs_code_and_namespace(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None, pitr=False)
    status, answer = _raw(sandbox, "GetItem", {"TableName": table})
    assert status == 400
    assert answer["__type"] == "com.amazon.coral.validate#ValidationException"
    assert answer["message"] == (
        "1 validation error detected: Value null at 'key' failed to satisfy constraint: "
        "Member must not be null"
    )
    status, answer = _raw(sandbox, "GetItem", {"TableName": table, "Key": {"pk": {"S": "a", "N": "1"}}})
    assert answer["__type"] == "com.amazon.coral.validate#ValidationException"


def _raw(sandbox, operation: str, body: dict) -> tuple[int, dict]:
    """A signed request with a body boto3 would refuse to send (clients that are not boto3 can send it)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=sandbox.endpoint_url + "/",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        },
    )
    credentials = botocore.credentials.Credentials(
        sandbox.admin_access_key_id, sandbox.admin_secret_access_key
    )
    botocore.auth.SigV4Auth(credentials, "dynamodb", sandbox.region).add_auth(request)
    prepared = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_requests_dynamodb_refuses_before_reading_the_table_are_refused(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"S": "live"}})
    cases = [
        (
            ddb.put_item,
            {
                "Item": {**key, "v": {"S": "new"}},
                "ConditionExpression": "v = :v",
                "ExpressionAttributeValues": {":v": {"S": "live"}, ":unused": {"S": "x"}},
            },
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
        ),
        (
            ddb.put_item,
            {"Item": {**key, "v": {"S": "new"}}, "ExpressionAttributeNames": {"#v": "v"}},
            "ExpressionAttributeNames can only be specified when using expressions",
        ),
        (
            ddb.delete_item,
            {
                "Key": key,
                "ConditionExpression": "attribute_exists(v)",
                "Expected": {"v": {"Exists": True, "Value": {"S": "live"}}},
            },
            (
                "Can not use both expression and non-expression parameters in the same request: "
                "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
            ),
        ),
        (
            ddb.put_item,
            {"Item": {**key, "v": {"S": "new"}}, "ReturnValues": "UPDATED_NEW"},
            "ReturnValues can only be ALL_OLD or NONE",
        ),
        (
            ddb.delete_item,
            {"Key": key, "Expected": {"v": {"Exists": False, "Value": {"S": "live"}}}},
            "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: v",
        ),
    ]
    for call, kwargs, message in cases:
        assert _code(call, TableName=table, **kwargs) == ("ValidationException", message)
    assert _code(ddb.scan, TableName=table, Segment=1)[1].startswith(
        "The TotalSegments parameter is required"
    )
    assert ddb.get_item(TableName=table, Key=key)["Item"]["v"] == {"S": "live"}


def test_a_transaction_over_4_mb_of_items_is_refused_and_writes_nothing(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    big = "x" * 390_000  # 11 items of ~390 KB: over 4 MiB together, each under 400 KB
    puts = [{"Put": {"TableName": table, "Item": {"pk": {"S": f"k{i}"}, "d": {"S": big}}}} for i in range(11)]
    code, message = _code(ddb.transact_write_items, TransactItems=puts)
    assert code == "ValidationException" and "4 MB" in message
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == 0
    ddb.transact_write_items(TransactItems=puts[:10])  # 3.9 MB: accepted
    # an update counts the item it acts on: ten of those items and one more put are over the limit again
    updates = [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": f"k{i}"}},
                "UpdateExpression": "SET n = :n",
                "ExpressionAttributeValues": {":n": {"N": "1"}},
            }
        }
        for i in range(10)
    ]
    code, _ = _code(ddb.transact_write_items, TransactItems=[*updates, puts[10]])
    assert code == "ValidationException"
    pages = ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT")  # 1 MB pages
    assert sum(page["Count"] for page in pages) == 10
