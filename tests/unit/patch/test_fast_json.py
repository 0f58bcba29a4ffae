"""The engine's BatchGetItem answers read with orjson are exactly what botocore's parser returns, and its
BatchGetItem and TransactWriteItems requests written with orjson do exactly what botocore's serialization
does."""

from __future__ import annotations

import pytest

from recovery_helpers.items import KeySchema, items_equal
from recovery_helpers.patch.engine_basics import engine_client
from tests.conftest import create_table
from tests.unit.patch.test_patch import rich_item


def test_every_attribute_type_reads_the_same_as_through_botocore(sandbox, aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, hash_key=("pk", "B"), range_key=("sk", "N"), pitr=False)
    schema = KeySchema.of_table(aws.dynamodb, table)
    items = [rich_item(schema, i) for i in range(30)]
    items[0]["deep"] = {"M": {"a": {"L": [{"B": b"\xff\x00"}, {"M": {"b": {"BS": [b"\x01", b"\x02"]}}}]}}}
    for item in items:
        aws.dynamodb.put_item(TableName=table, Item=item)
    request = {table: {"Keys": [schema.key_of(i) for i in items], "ConsistentRead": True}}
    plain = aws.dynamodb.batch_get_item(RequestItems=request)
    fast = engine_client(aws).batch_get_item(RequestItems=request)

    def by_key(answer):
        return {schema.key_id(schema.key_of(i)): i for i in answer["Responses"][table]}

    assert by_key(fast) == by_key(plain) and len(by_key(fast)) == 30
    assert isinstance(
        by_key(fast)[schema.key_id(schema.key_of(items[0]))]["deep"]["M"]["a"]["L"][0]["B"], bytes
    )
    assert fast["UnprocessedKeys"] == plain["UnprocessedKeys"] == {}
    assert fast["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_error_answer_is_still_botocores(sandbox, aws, unique_name):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        engine_client(aws).batch_get_item(
            RequestItems={f"{unique_name}-missing": {"Keys": [{"pk": {"S": "x"}}]}}
        )
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_transactions_written_as_json_write_and_check_every_attribute_type(sandbox, aws, unique_name):
    from botocore.exceptions import ClientError

    table = create_table(aws.dynamodb, unique_name, hash_key=("pk", "B"), range_key=None, pitr=False)
    schema = KeySchema.of_table(aws.dynamodb, table)
    items = [rich_item(schema, i) for i in range(5)]
    fast = engine_client(aws)
    fast.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": item}} for item in items],
        ClientRequestToken="t-1",
    )
    for item in items:
        assert items_equal(aws.dynamodb.get_item(TableName=table, Key=schema.key_of(item))["Item"], item)
    # conditions on binary values travel as base64 too: one holds, one does not (cancelled, reasons parsed)
    holds = {"blob": {"B": items[0]["blob"]["B"]}, "chunks": items[0]["chunks"]}
    changed = {**items[0], "status": {"S": "changed"}}
    holding = {
        "Put": {
            "TableName": table,
            "Item": changed,
            "ConditionExpression": "#b = :b AND chunks = :c",
            "ExpressionAttributeNames": {"#b": "blob"},
            "ExpressionAttributeValues": {":b": holds["blob"], ":c": holds["chunks"]},
        }
    }
    with pytest.raises(ClientError) as err:
        fast.transact_write_items(
            TransactItems=[
                holding,
                {
                    "Put": {
                        "TableName": table,
                        "Item": items[1],
                        "ConditionExpression": "#b = :b",
                        "ExpressionAttributeNames": {"#b": "blob"},
                        "ExpressionAttributeValues": {":b": {"B": b"not it"}},
                    }
                },
            ]
        )
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    fast.transact_write_items(TransactItems=[holding])  # alone, its condition holds: written
    assert items_equal(aws.dynamodb.get_item(TableName=table, Key=schema.key_of(changed))["Item"], changed)
