"""TransactWriteItems' ClientRequestToken: DynamoDB's 10-minute idempotency, on the sandbox clock."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table


def _put(table: str, pk: str, v: str, **extra: object) -> dict:
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "v": {"S": v}, **extra}}}


def _v(ddb, table: str, pk: str) -> str | None:
    item = ddb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return item["v"]["S"] if item else None


def _units(resp: dict) -> dict:
    return {c["TableName"]: c["CapacityUnits"] for c in resp["ConsumedCapacity"]}


def _body(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k not in ("ResponseMetadata", "ConsumedCapacity")}


@pytest.fixture
def table(aws, unique_name):
    return create_table(aws.dynamodb, unique_name, range_key=None, pitr=False)


def test_same_token_same_request_succeeds_without_writing_again(aws, table, unique_name):
    ddb = aws.dynamodb
    token = f"tok-{unique_name}"[:36]
    first = ddb.transact_write_items(TransactItems=[_put(table, "a", "patch")], ClientRequestToken=token)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"S": "the application, afterwards"}})
    again = ddb.transact_write_items(TransactItems=[_put(table, "a", "patch")], ClientRequestToken=token)
    assert _body(again) == _body(first)
    assert _v(ddb, table, "a") == "the application, afterwards"  # the repeat wrote nothing


def test_same_token_other_request_is_a_mismatch_and_writes_nothing(aws, table, unique_name):
    ddb = aws.dynamodb
    token = f"tok-{unique_name}"[:36]
    ddb.transact_write_items(TransactItems=[_put(table, "a", "first")], ClientRequestToken=token)
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[_put(table, "a", "second"), _put(table, "b", "second")], ClientRequestToken=token
        )
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert (_v(ddb, table, "a"), _v(ddb, table, "b")) == ("first", None)


def test_after_the_window_the_token_is_a_new_request(sandbox, aws, table, unique_name):
    ddb = aws.dynamodb
    assert sandbox.settings.idempotency_window_seconds == 600  # AWS's ten minutes
    token = f"tok-{unique_name}"[:36]
    ddb.transact_write_items(TransactItems=[_put(table, "a", "patch")], ClientRequestToken=token)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"S": "app"}})
    sandbox.advance(599)
    ddb.transact_write_items(TransactItems=[_put(table, "a", "patch")], ClientRequestToken=token)
    assert _v(ddb, table, "a") == "app"  # still inside the window
    sandbox.advance(2)
    ddb.transact_write_items(TransactItems=[_put(table, "a", "other")], ClientRequestToken=token)
    assert _v(ddb, table, "a") == "other"  # a new request: no mismatch, written


def test_the_window_is_a_setting(sandbox, aws, table, unique_name):
    ddb = aws.dynamodb
    sandbox.configure(idempotency_window_seconds=5)
    token = f"tok-{unique_name}"[:36]
    ddb.transact_write_items(TransactItems=[_put(table, "a", "one")], ClientRequestToken=token)
    sandbox.advance(6)
    ddb.transact_write_items(TransactItems=[_put(table, "a", "two")], ClientRequestToken=token)
    assert _v(ddb, table, "a") == "two"


def test_a_token_longer_than_36_characters_is_refused(aws, table):
    with pytest.raises(ClientError) as err:
        aws.dynamodb.transact_write_items(TransactItems=[_put(table, "a", "x")], ClientRequestToken="t" * 37)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert _v(aws.dynamodb, table, "a") is None


def test_consumed_capacity_of_a_transaction_and_of_its_repeat(aws, table, unique_name):
    ddb = aws.dynamodb
    big = {"blob": {"S": "x" * 2500}}  # about 2.5 KB: 3 write units, doubled for a transaction
    elements = [_put(table, "a", "v", **big), _put(table, "b", "v")]
    token = f"tok-{unique_name}"[:36]
    first = ddb.transact_write_items(
        TransactItems=elements, ClientRequestToken=token, ReturnConsumedCapacity="TOTAL"
    )
    assert _units(first) == {table: 8.0}
    again = ddb.transact_write_items(
        TransactItems=elements, ClientRequestToken=token, ReturnConsumedCapacity="TOTAL"
    )
    # a repeat reads the items instead of writing them: 2 read units per started 4 KB, per item
    assert _units(again) == {table: 4.0}
    plain = ddb.transact_write_items(TransactItems=[_put(table, "c", "v")])
    assert plain.get("ConsumedCapacity", []) == []  # not asked for, not given
