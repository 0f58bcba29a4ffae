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
    out = aws.dynamodb.scan(TableName=table, FilterExpression="t BETWEEN :a AND :b",
                            ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"N": "10"}})
    assert [i["pk"]["S"] for i in out["Items"]] == ["b"]
