"""DynamoDB Streams under concurrent writers: increasing sequence numbers, each record read exactly once, and a
cancelled transaction takes nothing from the stream but its own (absent) records."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import create_table

WRITERS = 4
WRITES_EACH = 80
PAGE = 5  # small pages: many GetRecords calls while the writers are still writing


@pytest.fixture
def fine_grained_threads():
    """Switch threads more often than Python's 5 ms default, so that concurrent requests interleave inside the
    sandbox (it runs in this process). Put back afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(before)


def _streamed_table(ddb: Any, name: str) -> str:
    table = create_table(ddb, name, pitr=False)
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    return ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


class StreamReader:
    """Pages one shard from TRIM_HORIZON with GetRecords, as a consumer does, keeping every record it got."""

    def __init__(self, streams: Any, arn: str) -> None:
        self.streams = streams
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.records: list[dict[str, Any]] = []
        self.calls = 0

    def page(self) -> int:
        out = self.streams.get_records(ShardIterator=self.iterator, Limit=PAGE)
        self.calls += 1
        self.records += out["Records"]
        self.iterator = out["NextShardIterator"]
        return len(out["Records"])

    def drain(self, max_calls: int) -> None:
        """Page until a page comes back empty (caught up); fail if that takes more than ``max_calls``."""
        while self.page():
            assert self.calls < max_calls, "GetRecords paging never caught up"


def _write_sk(record: dict[str, Any]) -> str:
    image = record["dynamodb"].get("NewImage") or record["dynamodb"]["OldImage"]
    return f"{image['sk']['S']}={image.get('n', {}).get('N')}"


def test_concurrent_writers_then_paging_gives_each_record_once_in_order(
    sandbox, aws, unique_name, fine_grained_threads
):
    ddb = aws.dynamodb
    arn = _streamed_table(ddb, unique_name)
    table = unique_name
    reader = StreamReader(sandbox.client("dynamodbstreams"), arn)
    done = threading.Event()

    def writer(w: int) -> None:
        client = sandbox.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 1}))
        for i in range(WRITES_EACH):
            key = {"pk": {"S": f"w{w}"}, "sk": {"S": f"{i % 40}"}}
            if i % 3 == 0:
                client.transact_write_items(
                    TransactItems=[{"Put": {"TableName": table, "Item": {**key, "n": {"N": str(i)}}}}]
                )
            elif i % 3 == 1:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET n = :n",
                    ExpressionAttributeValues={":n": {"N": str(i)}},
                )
            else:
                client.put_item(TableName=table, Item={**key, "n": {"N": str(i)}})

    def read_while_writing() -> None:
        while not done.is_set():
            reader.page()

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    consumer = threading.Thread(target=read_while_writing)
    consumer.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    done.set()
    consumer.join(timeout=60)
    assert not consumer.is_alive() and not any(t.is_alive() for t in writers)
    reader.drain(max_calls=reader.calls + WRITERS * WRITES_EACH)

    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in reader.records]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), "sequence numbers not increasing"
    got = Counter(f"{r['dynamodb']['Keys']['pk']['S']}/{_write_sk(r)}" for r in reader.records)
    expected = Counter(f"w{w}/{i % 40}={i}" for w in range(WRITERS) for i in range(WRITES_EACH))
    assert got == expected, f"missing {expected - got}, extra {got - expected}"
    # per item, the records come in the order of its writes
    for w in range(WRITERS):
        mine = [
            int(r["dynamodb"]["NewImage"]["n"]["N"])
            for r in reader.records
            if r["dynamodb"]["Keys"]["pk"]["S"] == f"w{w}"
        ]
        assert mine == sorted(mine)


def test_a_cancelled_transaction_leaves_concurrent_writers_records(
    sandbox, aws, unique_name, fine_grained_threads
):
    ddb = aws.dynamodb
    arn = _streamed_table(ddb, unique_name)
    table = unique_name
    ddb.put_item(TableName=table, Item={"pk": {"S": "guard"}, "sk": {"S": "-"}, "n": {"N": "0"}})
    written: list[str] = []
    stop = threading.Event()

    def concurrent_writer() -> None:
        client = sandbox.client("dynamodb")
        i = 0
        while not stop.is_set() or i < 50:
            client.put_item(TableName=table, Item={"pk": {"S": "app"}, "sk": {"S": f"{i}"}})
            written.append(f"app/{i}")
            i += 1

    cancelled = 0
    thread = threading.Thread(target=concurrent_writer)
    thread.start()
    try:
        for t in range(60):
            with pytest.raises(ClientError) as err:
                ddb.transact_write_items(
                    TransactItems=[
                        *(
                            {
                                "Put": {
                                    "TableName": table,
                                    "Item": {"pk": {"S": "tx"}, "sk": {"S": f"{t}-{j}"}},
                                }
                            }
                            for j in range(8)
                        ),
                        {
                            "ConditionCheck": {
                                "TableName": table,
                                "Key": {"pk": {"S": "guard"}, "sk": {"S": "-"}},
                                "ConditionExpression": "n = :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                    ]
                )
            assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
            cancelled += 1
    finally:
        stop.set()
        thread.join(timeout=60)
    reader = StreamReader(sandbox.client("dynamodbstreams"), arn)
    reader.drain(max_calls=10_000)
    got = [f"{r['dynamodb']['Keys']['pk']['S']}/{r['dynamodb']['Keys']['sk']['S']}" for r in reader.records]
    assert cancelled == 60
    assert not [g for g in got if g.startswith("tx/")], "a cancelled transaction left stream records"
    assert Counter(got) == Counter(["guard/-", *written]), "records of the concurrent writer were lost"
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in reader.records]
    assert numbers == sorted(set(numbers))
