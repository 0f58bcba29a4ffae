"""Where moto behaved differently from DynamoDB, the sandbox now answers as DynamoDB does (issue 14)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table


def test_consumed_capacity_follows_dynamodbs_units_and_only_when_asked(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    big = {**key, "data": {"S": "x" * 380_000}}  # 380,007 bytes: 372 write units, 93 read units
    put = ddb.put_item(TableName=table, Item=big, ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 372.0}
    strong = ddb.get_item(TableName=table, Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    eventual = ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")
    assert strong["ConsumedCapacity"]["CapacityUnits"] == 93.0
    assert eventual["ConsumedCapacity"]["CapacityUnits"] == 46.5
    missing = ddb.get_item(TableName=table, Key={"pk": {"S": "none"}}, ReturnConsumedCapacity="TOTAL")
    assert missing["ConsumedCapacity"]["CapacityUnits"] == 0.5
    unasked = ddb.get_item(TableName=table, Key=key)
    assert "ConsumedCapacity" not in unasked
    deleted = ddb.delete_item(TableName=table, Key=key)
    assert "ConsumedCapacityUnits" not in deleted and "ConsumedCapacity" not in deleted
    small = {**key, "v": {"S": "y"}}
    tx = ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": small}}], ReturnConsumedCapacity="TOTAL"
    )
    assert tx["ConsumedCapacity"] == [{"TableName": table, "CapacityUnits": 2.0}]


def test_updated_old_and_new_return_every_attribute_the_update_named(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(
        TableName=table,
        Item={
            **key,
            "same": {"S": "s"},
            "changes": {"N": "1"},
            "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}}},
        },
    )
    kwargs = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET same = :s, changes = :c, m.x = :c",
        "ExpressionAttributeValues": {":s": {"S": "s"}, ":c": {"N": "5"}},
    }
    old = ddb.update_item(ReturnValues="UPDATED_OLD", **kwargs)["Attributes"]
    assert old == {"same": {"S": "s"}, "changes": {"N": "1"}, "m": {"M": {"x": {"N": "1"}}}}
    new = ddb.update_item(ReturnValues="UPDATED_NEW", **kwargs)["Attributes"]
    assert new == {"same": {"S": "s"}, "changes": {"N": "5"}, "m": {"M": {"x": {"N": "5"}}}}


def test_legacy_expected_on_delete_is_honoured(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"S": "live"}})
    with pytest.raises(ClientError) as err:
        ddb.delete_item(TableName=table, Key=key, Expected={"v": {"Value": {"S": "something else"}}})
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" in ddb.get_item(TableName=table, Key=key)
    ddb.delete_item(
        TableName=table,
        Key=key,
        Expected={"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "live"}]}},
    )
    assert "Item" not in ddb.get_item(TableName=table, Key=key)


def test_legacy_attribute_updates_store_bool_and_default_to_put(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.update_item(
        TableName=table,
        Key=key,
        AttributeUpdates={
            "flag": {"Action": "PUT", "Value": {"BOOL": True}},
            "nothing": {"Value": {"NULL": True}},
            "plain": {"Value": {"S": "no action given"}},
        },
    )
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    assert item["flag"] == {"BOOL": True}
    assert item["nothing"] == {"NULL": True}
    assert item["plain"] == {"S": "no action given"}


def test_legacy_filters_compare_like_dynamodb_across_types_and_missing_attributes(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, pitr=False)
    for sk, v in (("1", {"N": "5"}), ("2", {"S": "text"}), ("3", None), ("4", {"N": "50"})):
        item = {"pk": {"S": "p"}, "sk": {"S": sk}}
        if v:
            item["v"] = v
        ddb.put_item(TableName=table, Item=item)

    def keys(answer):
        return sorted(i["sk"]["S"] for i in answer["Items"])

    for op, values, expected in (
        ("LE", [{"N": "5"}], ["1"]),
        ("LT", [{"N": "6"}], ["1"]),
        ("GE", [{"N": "6"}], ["4"]),
        ("BETWEEN", [{"N": "1"}, {"N": "49"}], ["1"]),
        ("NULL", [], ["3"]),
        ("NOT_NULL", [], ["1", "2", "4"]),
    ):
        condition = {"v": {"ComparisonOperator": op, "AttributeValueList": values}}
        assert keys(ddb.scan(TableName=table, ScanFilter=condition)) == expected, op
        query = ddb.query(
            TableName=table,
            KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
            QueryFilter=condition,
        )
        assert keys(query) == expected, op
    out = ddb.scan(TableName=table, FilterExpression="v < :n", ExpressionAttributeValues={":n": {"N": "10"}})
    assert keys(out) == ["1"]


def test_get_item_returns_only_what_was_asked(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(
        TableName=table, Item={**key, "b": {"S": "b"}, "c": {"L": [{"S": "0"}, {"S": "1"}, {"S": "2"}]}}
    )
    assert ddb.get_item(TableName=table, Key=key, AttributesToGet=["b"])["Item"] == {"b": {"S": "b"}}
    got = ddb.get_item(
        TableName=table, Key=key, ProjectionExpression="#c[2], b, #c[1]", ExpressionAttributeNames={"#c": "c"}
    )["Item"]
    assert got == {"b": {"S": "b"}, "c": {"L": [{"S": "1"}, {"S": "2"}]}}


def test_scan_pages_follow_the_1mb_rule(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    for i in range(30):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i:02d}"}, "data": {"S": "x" * 43_000}})
    first = ddb.scan(TableName=table)
    # 25 items of 43,010 stored bytes cross 1 MB at the 25th, which DynamoDB still returns
    assert first["Count"] == first["ScannedCount"] == 25
    assert "LastEvaluatedKey" in first
    rest = ddb.scan(TableName=table, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert rest["Count"] == 5 and "LastEvaluatedKey" not in rest
    limited = ddb.scan(
        TableName=table, Limit=4, FilterExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "nope"}}
    )
    assert (limited["Count"], limited["ScannedCount"]) == (0, 4) and "LastEvaluatedKey" in limited


def test_a_batch_write_answers_only_what_was_asked(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    answer = ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]})
    assert set(answer) - {"ResponseMetadata"} == {"UnprocessedItems"}
