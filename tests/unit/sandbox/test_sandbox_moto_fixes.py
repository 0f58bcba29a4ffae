"""Places where stock moto answers HTTP 500 and AWS answers normally."""

from __future__ import annotations

from tests.conftest import create_table


def test_segmented_scan_of_a_binary_partition_key(aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, hash_key=("id", "B"), range_key=None)
    for i in range(20):
        aws.dynamodb.put_item(TableName=table, Item={"id": {"B": bytes([i, 255 - i])}})
    seen = []
    for segment in range(3):
        seen += aws.dynamodb.scan(TableName=table, Segment=segment, TotalSegments=3)["Items"]
    assert sorted(i["id"]["B"] for i in seen) == sorted(bytes([i, 255 - i]) for i in range(20))


def test_between_over_mixed_types_is_false_not_an_error(aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, range_key=None)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "t": {"S": "2026-01-01T00:00:00Z"}})
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "t": {"N": "5"}})
    out = aws.dynamodb.scan(
        TableName=table,
        FilterExpression="t BETWEEN :a AND :b",
        ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"N": "10"}},
    )
    assert [i["pk"]["S"] for i in out["Items"]] == ["b"]


def test_a_cancelled_transaction_changes_nothing(aws, unique_name):
    import pytest
    from botocore.exceptions import ClientError

    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    )
    for sk in ("a", "b", "c"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"N": "1"}})
    before = sorted(str(i) for i in ddb.scan(TableName=table)["Items"])
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "p"}, "sk": {"S": "a"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "9"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p"}, "sk": {"S": "c"}},
                        "ConditionExpression": "v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
            ]
        )
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert sorted(str(i) for i in ddb.scan(TableName=table)["Items"]) == before
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}},
                    "UpdateExpression": "SET v = :v",
                    "ConditionExpression": "v = :one",
                    "ExpressionAttributeValues": {":v": {"N": "9"}, ":one": {"N": "1"}},
                }
            },
        ]
    )
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "b"}})["Item"]["v"] == {"N": "9"}
