"""The sandbox's point-in-time recovery behaves like AWS's: the past comes back, the window is real."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table


def _second_boundary(sandbox) -> dt.datetime:
    """A whole-second restore time strictly after everything written so far (boto3 sends whole seconds)."""
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


def _scan(ddb, table):
    items = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in items}


def _put(ddb, table, pk, sk, **attrs):
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, **attrs})


def test_restore_brings_back_the_past_after_every_write_path(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    for i in range(6):
        _put(ddb, table, "t1", f"d{i}", v={"N": str(i)})
    t1 = _second_boundary(sandbox)
    before = _scan(ddb, table)

    # after t1: every write path changes the table
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "t1"}, "sk": {"S": "d0"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "100"}},
    )
    ddb.delete_item(TableName=table, Key={"pk": {"S": "t1"}, "sk": {"S": "d1"}})
    _put(ddb, table, "t1", "d2", v={"N": "-2"})
    ddb.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": {"pk": {"S": "t1"}, "sk": {"S": "new"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "t1"}, "sk": {"S": "d3"}}}},
            ]
        }
    )
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "t1"}, "sk": {"S": "d4"}},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": "44"}},
                }
            },
        ]
    )
    ddb.execute_statement(Statement=f"DELETE FROM \"{table}\" WHERE pk = 't1' AND sk = 'd5'")
    # deleted then re-created with other content
    ddb.delete_item(TableName=table, Key={"pk": {"S": "t1"}, "sk": {"S": "d1"}})
    _put(ddb, table, "t1", "d1", v={"N": "999"})
    t2 = _second_boundary(sandbox)
    after = _scan(ddb, table)
    assert after != before

    ddb.restore_table_to_point_in_time(
        SourceTableName=table, TargetTableName=f"{table}-r1", RestoreDateTime=t1
    )
    assert _scan(ddb, f"{table}-r1") == before
    ddb.restore_table_to_point_in_time(
        SourceTableName=table, TargetTableName=f"{table}-r2", RestoreDateTime=t2
    )
    assert _scan(ddb, f"{table}-r2") == after


def test_failed_transaction_leaves_no_trace_in_history(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    _put(ddb, table, "a", "1", v={"N": "1"})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "ConditionExpression": "v = :x",
                        "ExpressionAttributeValues": {":x": {"N": "5"}},
                    }
                },
            ]
        )
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    t = _second_boundary(sandbox)
    ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=f"{table}-r", RestoreDateTime=t)
    assert set(_scan(ddb, f"{table}-r")) == {("a", "1")}


def test_window_errors_match_aws(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    desc = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    pitr = desc["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    earliest, latest = pitr["EarliestRestorableDateTime"], pitr["LatestRestorableDateTime"]
    assert earliest <= latest

    def code(**kwargs):
        with pytest.raises(ClientError) as err:
            ddb.restore_table_to_point_in_time(SourceTableName=table, **kwargs)
        return err.value.response["Error"]["Code"]

    assert (
        code(TargetTableName=f"{table}-x", RestoreDateTime=earliest - dt.timedelta(hours=1))
        == "InvalidRestoreTimeException"
    )
    assert (
        code(TargetTableName=f"{table}-x", RestoreDateTime=sandbox.now() + dt.timedelta(hours=1))
        == "InvalidRestoreTimeException"
    )
    assert code(TargetTableName=table, UseLatestRestorableTime=True) == "TableAlreadyExistsException"
    other = create_table(ddb, f"{table}-nopitr", pitr=False)
    with pytest.raises(ClientError) as err:
        ddb.restore_table_to_point_in_time(
            SourceTableName=other, TargetTableName=f"{other}-r", UseLatestRestorableTime=True
        )
    assert err.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"
    with pytest.raises(ClientError) as err:
        ddb.restore_table_to_point_in_time(
            SourceTableName=f"{table}-missing", TargetTableName=f"{table}-r", UseLatestRestorableTime=True
        )
    assert err.value.response["Error"]["Code"] == "SourceTableNotFoundException"


def test_latest_restorable_time_lags_by_the_setting(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    sandbox.advance(1000)
    sandbox.configure(pitr_lag_seconds=300)
    pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"
    ]
    lag = (sandbox.now() - pitr["LatestRestorableDateTime"]).total_seconds()
    assert 300 <= lag < 310
    with pytest.raises(ClientError) as err:
        ddb.restore_table_to_point_in_time(
            SourceTableName=table,
            TargetTableName=f"{table}-r",
            RestoreDateTime=sandbox.now() - dt.timedelta(seconds=60),
        )
    assert err.value.response["Error"]["Code"] == "InvalidRestoreTimeException"


def test_disabling_pitr_resets_the_window(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    first = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"
    ]["EarliestRestorableDateTime"]
    sandbox.advance(60)
    spec = "PointInTimeRecoverySpecification"
    ddb.update_continuous_backups(TableName=table, **{spec: {"PointInTimeRecoveryEnabled": False}})
    ddb.update_continuous_backups(TableName=table, **{spec: {"PointInTimeRecoveryEnabled": True}})
    again = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"
    ]["EarliestRestorableDateTime"]
    assert (again - first).total_seconds() >= 60


def test_index_and_billing_overrides(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, gsi=("status", "S"))
    _put(ddb, table, "a", "1", status={"S": "open"})
    t = _second_boundary(sandbox)
    ddb.restore_table_to_point_in_time(
        SourceTableName=table, TargetTableName=f"{table}-all", RestoreDateTime=t
    )
    ddb.restore_table_to_point_in_time(
        SourceTableName=table,
        TargetTableName=f"{table}-none",
        RestoreDateTime=t,
        GlobalSecondaryIndexOverride=[],
        LocalSecondaryIndexOverride=[],
        BillingModeOverride="PROVISIONED",
        ProvisionedThroughputOverride={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    full = ddb.describe_table(TableName=f"{table}-all")["Table"]
    bare = ddb.describe_table(TableName=f"{table}-none")["Table"]
    assert [g["IndexName"] for g in full["GlobalSecondaryIndexes"]] == ["by-status"]
    assert not bare.get("GlobalSecondaryIndexes")
    assert bare["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert full["RestoreSummary"]["SourceTableArn"].endswith(f"table/{table}")
    assert (
        ddb.query(
            TableName=f"{table}-all",
            IndexName="by-status",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "open"}},
        )["Count"]
        == 1
    )
    # the restored table comes without PITR, like on AWS
    assert (
        ddb.describe_continuous_backups(TableName=f"{table}-all")["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"
        ]["PointInTimeRecoveryStatus"]
        == "DISABLED"
    )


def test_restored_table_is_creating_then_active(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    _put(ddb, table, "a", "1")
    sandbox.configure(restore_seconds=600)
    out = ddb.restore_table_to_point_in_time(
        SourceTableName=table, TargetTableName=f"{table}-r", UseLatestRestorableTime=True
    )
    assert out["TableDescription"]["TableStatus"] == "CREATING"
    assert out["TableDescription"]["RestoreSummary"]["RestoreInProgress"] is True
    with pytest.raises(ClientError) as err:
        ddb.scan(TableName=f"{table}-r")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        ddb.tag_resource(ResourceArn=out["TableDescription"]["TableArn"], Tags=[{"Key": "k", "Value": "v"}])
    assert err.value.response["Error"]["Code"] == "ResourceInUseException"
    sandbox.advance(599)
    assert ddb.describe_table(TableName=f"{table}-r")["Table"]["TableStatus"] == "CREATING"
    sandbox.advance(2)
    desc = ddb.describe_table(TableName=f"{table}-r")["Table"]
    assert desc["TableStatus"] == "ACTIVE" and desc["RestoreSummary"]["RestoreInProgress"] is False
    assert ddb.scan(TableName=f"{table}-r")["Count"] == 1


def test_restore_from_backup_keeps_working(sandbox, aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    _put(ddb, table, "a", "1", v={"S": "backed-up"})
    arn = ddb.create_backup(TableName=table, BackupName="backup-1")["BackupDetails"]["BackupArn"]
    _put(ddb, table, "a", "1", v={"S": "later"})
    ddb.restore_table_from_backup(TargetTableName=f"{table}-b", BackupArn=arn)
    items = _scan(ddb, f"{table}-b")
    assert items[("a", "1")]["v"] == {"S": "backed-up"}


def test_numbers_are_stored_trimmed_like_aws(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, hash_key=("id", "N"))
    ddb.put_item(
        TableName=table,
        Item={"id": {"N": "0001"}, "a": {"N": "1.50"}, "b": {"N": "1E+2"}, "s": {"NS": ["2.0", "3"]}},
    )
    item = ddb.get_item(TableName=table, Key={"id": {"N": "1"}})["Item"]
    assert item["id"] == {"N": "1"} and item["a"] == {"N": "1.5"} and item["b"] == {"N": "100"}
    assert sorted(item["s"]["NS"]) == ["2", "3"]


def test_partiql_delete_with_parameters_deletes_like_aws(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name)
    _put(ddb, table, "it's", "1")
    _put(ddb, table, "b", "2")
    statement = f'DELETE FROM "{table}" WHERE "pk" = ? AND "sk" = ?'
    ddb.execute_statement(Statement=statement, Parameters=[{"S": "missing"}, {"S": "1"}])  # a no-op
    ddb.execute_statement(Statement=statement, Parameters=[{"S": "it's"}, {"S": "1"}])
    assert ddb.scan(TableName=table)["Count"] == 1
    ddb.execute_statement(Statement=statement, Parameters=[{"S": "b"}, {"S": "2"}])
    assert ddb.scan(TableName=table)["Count"] == 0


def test_partiql_insert_and_update_follow_aws_rules(aws, unique_name):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("id", "B"), range_key=None)
    insert = f"INSERT INTO \"{table}\" VALUE {{'id': ?, 'v': ?}}"
    ddb.execute_statement(Statement=insert, Parameters=[{"B": b"\x00\x01"}, {"N": "1.50"}])
    with pytest.raises(ClientError) as err:
        ddb.execute_statement(Statement=insert, Parameters=[{"B": b"\x00\x01"}, {"N": "2"}])
    assert err.value.response["Error"]["Code"] == "DuplicateItemException"
    update = f'UPDATE "{table}" SET "v" = ? WHERE "id" = ?'
    ddb.execute_statement(Statement=update, Parameters=[{"N": "3"}, {"B": b"\x00\x01"}])
    assert ddb.get_item(TableName=table, Key={"id": {"B": b"\x00\x01"}})["Item"]["v"] == {"N": "3"}
    with pytest.raises(ClientError) as err:
        ddb.execute_statement(Statement=update, Parameters=[{"N": "3"}, {"B": b"\x09"}])
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
