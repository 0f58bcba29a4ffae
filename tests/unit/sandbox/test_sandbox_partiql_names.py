"""PartiQL statements whose quoted names hold spaces, dots, quotes or non-ASCII letters are answered as DynamoDB
answers them (issue 12, defect 6); ExecuteTransaction and BatchExecuteStatement of the same forms too.
02_contain / 06_lift on such a table: tests/integration/test_partiql_names_contain_lift.py."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table

SHAPES = [
    (("tenant id", "S"), None),
    (("a.b", "S"), ("clé", "N")),
    (('say "hi"', "S"), ("it's", "S")),
]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _key(hash_key, range_key, h: str, r: str = "1") -> dict:
    key = {hash_key[0]: {"S": h}}
    if range_key:
        key[range_key[0]] = {range_key[1]: r}
    return key


def _where(names: list[str]) -> str:
    return " AND ".join(f"{_q(n)} = ?" for n in names)


@pytest.mark.parametrize(("hash_key", "range_key"), SHAPES)
def test_delete_update_insert_with_quoted_names(aws, unique_name, hash_key, range_key):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=hash_key, range_key=range_key, pitr=False)
    names = [hash_key[0]] + ([range_key[0]] if range_key else [])
    live, missing = _key(hash_key, range_key, "live"), _key(hash_key, range_key, "missing")
    ddb.put_item(TableName=table, Item={**live, "last seen": {"S": "before"}})

    update = f"UPDATE {_q(table)} SET {_q('last seen')} = ? WHERE {_where(names)}"
    with pytest.raises(ClientError) as err:
        ddb.execute_statement(Statement=update, Parameters=[{"S": "x"}, *(missing[n] for n in names)])
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    ddb.execute_statement(Statement=update, Parameters=[{"S": "after"}, *(live[n] for n in names)])
    assert ddb.get_item(TableName=table, Key=live)["Item"]["last seen"] == {"S": "after"}
    assert "Item" not in ddb.get_item(TableName=table, Key=missing)  # the refused UPDATE created nothing

    insert = f"INSERT INTO {_q(table)} VALUE {{{', '.join(f'{_lit(n)}: ?' for n in names)}, 'v': ?}}"
    with pytest.raises(ClientError) as err:
        ddb.execute_statement(Statement=insert, Parameters=[*(live[n] for n in names), {"S": "dup"}])
    assert err.value.response["Error"]["Code"] == "DuplicateItemException"
    ddb.execute_statement(Statement=insert, Parameters=[*(missing[n] for n in names), {"S": "new"}])
    assert ddb.get_item(TableName=table, Key=missing)["Item"]["v"] == {"S": "new"}

    delete = f"DELETE FROM {_q(table)} WHERE {_where(names)}"
    ddb.execute_statement(
        Statement=delete, Parameters=[_key(hash_key, range_key, "nobody")[n] for n in names]
    )
    assert ddb.scan(TableName=table)["Count"] == 2  # deleting a missing key succeeds and changes nothing
    ddb.execute_statement(Statement=delete, Parameters=[live[n] for n in names])
    ddb.execute_statement(Statement=delete, Parameters=[missing[n] for n in names])
    assert ddb.scan(TableName=table)["Count"] == 0


def test_execute_transaction_is_all_or_nothing(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("tenant id", "S"), range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"tenant id": {"S": "old"}, "v": {"S": "keep"}})
    insert = f"INSERT INTO {_q(table)} VALUE {{'tenant id': ?, 'v': ?}}"
    update = f'UPDATE {_q(table)} SET "v" = ? WHERE "tenant id" = ?'
    delete = f'DELETE FROM {_q(table)} WHERE "tenant id" = ?'

    with pytest.raises(ClientError) as err:
        ddb.execute_transaction(
            TransactStatements=[
                {"Statement": insert, "Parameters": [{"S": "new"}, {"S": "x"}]},
                {"Statement": delete, "Parameters": [{"S": "old"}]},
                {"Statement": update, "Parameters": [{"S": "x"}, {"S": "missing"}]},
            ]
        )
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in err.value.response["CancellationReasons"]] == [
        "None",
        "None",
        "ConditionalCheckFailed",
    ]
    assert [i["tenant id"]["S"] for i in ddb.scan(TableName=table)["Items"]] == ["old"]  # nothing applied

    with pytest.raises(ClientError) as err:
        ddb.execute_transaction(
            TransactStatements=[
                {"Statement": insert, "Parameters": [{"S": "old"}, {"S": "dup"}]},
            ]
        )
    assert [r["Code"] for r in err.value.response["CancellationReasons"]] == ["DuplicateItem"]

    ddb.execute_transaction(
        TransactStatements=[
            {"Statement": insert, "Parameters": [{"S": "new"}, {"S": "x"}]},
            {"Statement": update, "Parameters": [{"S": "changed"}, {"S": "old"}]},
        ]
    )
    got = {i["tenant id"]["S"]: i["v"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert got == {"new": "x", "old": "changed"}


def test_batch_execute_statement_answers_per_statement(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("tenant id", "S"), range_key=None, pitr=False)
    ddb.put_item(TableName=table, Item={"tenant id": {"S": "old"}})
    out = ddb.batch_execute_statement(
        Statements=[
            {"Statement": f'DELETE FROM {_q(table)} WHERE "tenant id" = ?', "Parameters": [{"S": "old"}]},
            {"Statement": f"INSERT INTO {_q(table)} VALUE {{'tenant id': ?}}", "Parameters": [{"S": "new"}]},
            {"Statement": f"INSERT INTO {_q(table)} VALUE {{'tenant id': ?}}", "Parameters": [{"S": "new"}]},
            {
                "Statement": f'UPDATE {_q(table)} SET "v" = ? WHERE "tenant id" = ?',
                "Parameters": [{"S": "x"}, {"S": "missing"}],
            },
        ]
    )["Responses"]
    assert [r.get("Error", {}).get("Code") for r in out] == [
        None,
        None,
        "DuplicateItem",
        "ConditionalCheckFailed",
    ]
    assert [i["tenant id"]["S"] for i in ddb.scan(TableName=table)["Items"]] == ["new"]
