"""The sandbox keeps DynamoDB's number rules on its own: 38 digits, 1E-130..9.99E+125, stored trimmed, refused beyond.

If the sandbox normalised numbers with the runbook's code, it would agree with the runbook's mistakes (issue 12:
28-digit rounding merged two keys into one item and no test could see it).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table

DIGITS_38 = "12345678901234567890123456789012345678"


def _refused(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Message"]


def test_two_number_keys_differing_after_the_28th_digit_stay_two_items(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("id", "N"), range_key=None, pitr=False)
    first, second = "1234567890123456789012345678901234567", "1234567890123456789012345678901234568"
    ddb.put_item(TableName=table, Item={"id": {"N": first}, "v": {"S": "first"}})
    ddb.put_item(TableName=table, Item={"id": {"N": second}, "v": {"S": "second"}})
    items = ddb.scan(TableName=table)["Items"]
    assert sorted((i["id"]["N"], i["v"]["S"]) for i in items) == [(first, "first"), (second, "second")]
    got = ddb.get_item(TableName=table, Key={"id": {"N": first}})["Item"]
    assert got["v"] == {"S": "first"}


def test_38_digits_are_kept_and_39_are_refused_everywhere(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": DIGITS_38}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": DIGITS_38}
    too_many = DIGITS_38 + "9"
    for item in (
        {"pk": {"S": "b"}, "n": {"N": too_many}},
        {"pk": {"S": "b"}, "s": {"NS": ["1", too_many]}},
        {"pk": {"S": "b"}, "m": {"M": {"deep": {"L": [{"N": too_many}]}}}},
    ):
        message = _refused(ddb.put_item, TableName=table, Item=item)
        assert message == "Attempting to store more than 38 significant digits in a Number"
    _refused(
        ddb.put_item,
        TableName=table,
        Item={"pk": {"S": "a"}},
        ConditionExpression="n = :n",
        ExpressionAttributeValues={":n": {"N": too_many}},
    )
    assert "b" not in {i["pk"]["S"] for i in ddb.scan(TableName=table)["Items"]}


def test_the_magnitude_limits_are_dynamodbs(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    for text, stored in (
        ("1E-130", "0." + "0" * 129 + "1"),
        ("9.99E+125", "999" + "0" * 123),
        ("-1E-130", None),
    ):
        ddb.put_item(TableName=table, Item={"pk": {"S": text}, "n": {"N": text}})
        got = ddb.get_item(TableName=table, Key={"pk": {"S": text}})["Item"]["n"]["N"]
        if stored:
            assert got == stored
    assert "underflow" in _refused(
        ddb.put_item, TableName=table, Item={"pk": {"S": "x"}, "n": {"N": "1E-131"}}
    )
    assert "overflow" in _refused(
        ddb.put_item, TableName=table, Item={"pk": {"S": "x"}, "n": {"N": "1E+126"}}
    )
    assert "numeric value" in _refused(
        ddb.put_item, TableName=table, Item={"pk": {"S": "x"}, "n": {"N": "1,5"}}
    )


def test_numbers_are_stored_trimmed_and_without_exponent(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "a"},
            "x": {"N": "1.50"},
            "y": {"N": "0001"},
            "z": {"N": "-0.0"},
            "big": {"N": "1.5E+40"},
            "s": {"NS": ["1.0", "2e1"]},
        },
    )
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]
    assert (item["x"], item["y"], item["z"]) == ({"N": "1.5"}, {"N": "1"}, {"N": "0"})
    assert item["big"] == {"N": "15" + "0" * 39}
    assert sorted(item["s"]["NS"]) == ["1", "20"]


def test_a_scan_with_projection_over_numbers_beyond_1e38_answers(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "a"},
            "big": {"N": "1.5E+40"},
            "other": {"S": "x"},
            "m": {"M": {"n": {"N": "-9.99E+125"}, "b": {"B": b"\x00\xff"}}},
        },
    )
    out = ddb.scan(TableName=table, ProjectionExpression="pk, big, m.n")
    assert out["Items"] == [
        {"pk": {"S": "a"}, "big": {"N": "15" + "0" * 39}, "m": {"M": {"n": {"N": "-999" + "0" * 123}}}}
    ]
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "a"}}, ProjectionExpression="m.b")["Item"]
    assert got == {"m": {"M": {"b": {"B": b"\x00\xff"}}}}


def test_update_arithmetic_is_exact_to_38_digits_and_refused_beyond(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": DIGITS_38}})
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = n + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD c :c",
        ExpressionAttributeValues={":c": {"N": "0.0000000000000000000000000000001"}},
    )
    ddb.update_item(
        TableName=table, Key=key, UpdateExpression="ADD c :c", ExpressionAttributeValues={":c": {"N": "1"}}
    )
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    assert item["n"] == {"N": "12345678901234567890123456789012345679"}
    assert item["c"] == {"N": "1.0000000000000000000000000000001"}
    message = _refused(
        ddb.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET n = n + :tiny",
        ExpressionAttributeValues={":tiny": {"N": "0.5"}},
    )
    assert "38 significant digits" in message
    assert ddb.get_item(TableName=table, Key=key)["Item"]["n"] == {
        "N": "12345678901234567890123456789012345679"
    }


def test_legacy_attribute_updates_add_is_exact(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    key = {"pk": {"S": "a"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1234567890123456789012345678901234567"}})
    ddb.update_item(TableName=table, Key=key, AttributeUpdates={"n": {"Action": "ADD", "Value": {"N": "1"}}})
    assert ddb.get_item(TableName=table, Key=key)["Item"]["n"] == {
        "N": "1234567890123456789012345678901234568"
    }


def test_the_sandbox_never_imports_the_runbooks_number_code():
    import pathlib

    from recovery_helpers import sandbox

    for path in pathlib.Path(sandbox.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert "recovery_helpers.items" not in text and "from ..items" not in text, path
