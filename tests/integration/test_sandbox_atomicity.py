"""Conditional writes are atomic per item, whichever write API races with which (DynamoDB's guarantee).

Each round stages one item (or none), then releases two clients at once (a barrier) on it, each with a write of
another API, over real HTTP. What they answered and the item they left must be what one of the serial orders of
the two writes gives: a conditional write that saw the old state and a write that landed meanwhile cannot both
win (DynamoDB never allows it; moto's threaded server did, about 1 round in 20 with transactions).
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import create_table

ROUNDS = 1000
RACERS = 2
#: Answers that mean "my condition stopped me", per API.
LOST = {"ConditionalCheckFailedException", "TransactionCanceledException", "DuplicateItemException"}

State = dict[str, str] | None  # the item as {"v": ..., "w": ...}, or None when absent


@dataclass(frozen=True)
class Racer:
    name: str
    send: Callable[[Any, str, str, str], None]  # (client, table, pk, me)
    allowed: Callable[[State], bool]  # does its condition hold on this state?
    effect: Callable[[State, str], State]  # the state it leaves (me = its name)


def _k(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _item(pk: str, me: str) -> dict[str, Any]:
    return {**_k(pk), "v": {"N": "1"}, "w": {"S": me}}


_V0 = {"ConditionExpression": "v = :zero", "ExpressionAttributeValues": {":zero": {"N": "0"}}}
_ABSENT = {"ConditionExpression": "attribute_not_exists(pk)"}
_SET = "SET v = :one, w = :me"


def _vals(me: str, **extra: dict[str, str]) -> dict[str, Any]:
    return {"ExpressionAttributeValues": {":one": {"N": "1"}, ":me": {"S": me}, **extra}}


def _is_v0(s: State) -> bool:
    return s is not None and s["v"] == "0"


def _absent(s: State) -> bool:
    return s is None


def _always(s: State) -> bool:
    return True


def _replaced(s: State, me: str) -> State:
    return {"v": "1", "w": me}


def _deleted(s: State, me: str) -> State:
    return None


def _tx(ddb: Any, element: dict[str, Any]) -> None:
    ddb.transact_write_items(TransactItems=[element])


RACER_LIST = [
    Racer(
        "PutItem if v=0",
        lambda d, t, k, me: d.put_item(TableName=t, Item=_item(k, me), **_V0),
        _is_v0,
        _replaced,
    ),
    Racer(
        "PutItem if absent",
        lambda d, t, k, me: d.put_item(TableName=t, Item=_item(k, me), **_ABSENT),
        _absent,
        _replaced,
    ),
    Racer(
        "UpdateItem if v=0",
        lambda d, t, k, me: d.update_item(
            TableName=t,
            Key=_k(k),
            UpdateExpression=_SET,
            ConditionExpression="v = :zero",
            **_vals(me, **{":zero": {"N": "0"}}),
        ),
        _is_v0,
        _replaced,
    ),
    Racer(
        "UpdateItem if absent",
        lambda d, t, k, me: d.update_item(
            TableName=t, Key=_k(k), UpdateExpression=_SET, **_ABSENT, **_vals(me)
        ),
        _absent,
        _replaced,
    ),
    Racer(
        "DeleteItem if v=0",
        lambda d, t, k, me: d.delete_item(TableName=t, Key=_k(k), **_V0),
        _is_v0,
        _deleted,
    ),
    Racer(
        "Transact Put if v=0",
        lambda d, t, k, me: _tx(d, {"Put": {"TableName": t, "Item": _item(k, me), **_V0}}),
        _is_v0,
        _replaced,
    ),
    Racer(
        "Transact Put if absent",
        lambda d, t, k, me: _tx(d, {"Put": {"TableName": t, "Item": _item(k, me), **_ABSENT}}),
        _absent,
        _replaced,
    ),
    Racer(
        "Transact Update if v=0",
        lambda d, t, k, me: _tx(
            d,
            {
                "Update": {
                    "TableName": t,
                    "Key": _k(k),
                    "UpdateExpression": _SET,
                    "ConditionExpression": "v = :zero",
                    **_vals(me, **{":zero": {"N": "0"}}),
                }
            },
        ),
        _is_v0,
        _replaced,
    ),
    Racer(
        "Transact Delete if v=0",
        lambda d, t, k, me: _tx(d, {"Delete": {"TableName": t, "Key": _k(k), **_V0}}),
        _is_v0,
        _deleted,
    ),
    Racer(
        "BatchWriteItem put",
        lambda d, t, k, me: d.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": _item(k, me)}}]}),
        _always,
        _replaced,
    ),
    Racer(
        "BatchWriteItem delete",
        lambda d, t, k, me: d.batch_write_item(RequestItems={t: [{"DeleteRequest": {"Key": _k(k)}}]}),
        _always,
        _deleted,
    ),
    Racer(
        "PartiQL INSERT",
        lambda d, t, k, me: d.execute_statement(
            Statement=f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'v': ?, 'w': ?}}",
            Parameters=[{"S": k}, {"N": "1"}, {"S": me}],
        ),
        _absent,
        _replaced,
    ),
    Racer(
        "PartiQL UPDATE",
        lambda d, t, k, me: d.execute_statement(
            Statement=f'UPDATE "{t}" SET "w" = ? WHERE "pk" = ?', Parameters=[{"S": me}, {"S": k}]
        ),
        lambda s: s is not None,
        lambda s, me: {**s, "w": me},
    ),  # type: ignore[dict-item]
    Racer(
        "PartiQL DELETE",
        lambda d, t, k, me: d.execute_statement(
            Statement=f'DELETE FROM "{t}" WHERE "pk" = ?', Parameters=[{"S": k}]
        ),
        _always,
        _deleted,
    ),
]


def serial_outcomes(staged: State, racers: list[tuple[Racer, str]]) -> list[tuple[tuple[bool, ...], State]]:
    """(who won, the final item) for every serial order of the racers."""
    out = []
    for order in itertools.permutations(range(len(racers))):
        state, won = staged, [False] * len(racers)
        for i in order:
            racer, me = racers[i]
            if racer.allowed(state):
                state, won[i] = racer.effect(state, me), True
        out.append((tuple(won), state))
    return out


def _answer(racer: Racer, ddb: Any, table: str, pk: str, me: str) -> bool | str:
    try:
        racer.send(ddb, table, pk, me)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in LOST:
            return False
        return f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message')}"


@pytest.fixture
def fine_grained_threads():
    """Switch threads more often than Python's 5 ms default, so that racing requests really interleave inside
    the sandbox (it runs in this process). Put back afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(before)


def test_racing_conditional_writes_end_as_one_serial_order(sandbox, aws, unique_name, fine_grained_threads):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    rng = random.Random(15)
    rounds: list[tuple[State, list[tuple[Racer, str]]]] = []
    for r in range(ROUNDS):
        staged: State = {"v": "0", "w": "staged"} if r % 2 else None
        picked = rng.sample(RACER_LIST, RACERS)
        rounds.append((staged, [(racer, f"{racer.name}#{slot}") for slot, racer in enumerate(picked)]))
    stage = [
        {"PutRequest": {"Item": {**_k(f"k{r}"), "v": {"N": "0"}, "w": {"S": "staged"}}}}
        for r, (staged, _) in enumerate(rounds)
        if staged
    ]
    for i in range(0, len(stage), 25):
        assert not ddb.batch_write_item(RequestItems={table: stage[i : i + 25]}).get("UnprocessedItems")

    config = Config(retries={"mode": "standard", "max_attempts": 1})
    clients = [sandbox.client("dynamodb", config=config) for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS, timeout=60)
    answers: list[list[bool | str]] = [[False] * RACERS for _ in range(ROUNDS)]

    def race(slot: int) -> None:
        for r, (_, racers) in enumerate(rounds):
            racer, me = racers[slot]
            barrier.wait()
            answers[r][slot] = _answer(racer, clients[slot], table, f"k{r}", me)

    threads = [threading.Thread(target=race, args=(slot,)) for slot in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a racer hung"

    final: dict[str, State] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        final.update(
            {
                i["pk"]["S"]: {"v": i.get("v", {}).get("N"), "w": i.get("w", {}).get("S")}
                for i in page["Items"]
            }
        )
    errors = [(r, a) for r, got in enumerate(answers) for a in got if isinstance(a, str)]
    assert not errors, f"racers got errors: {errors[:5]}"
    broken = []
    for r, (staged, racers) in enumerate(rounds):
        seen = (tuple(answers[r]), final.get(f"k{r}"))
        if seen not in serial_outcomes(staged, racers):
            broken.append((r, [me for _, me in racers], seen))
    assert not broken, f"{len(broken)} of {ROUNDS} rounds match no serial order, e.g. {broken[:3]}"


def test_create_backup_during_concurrent_writes(sandbox, aws, unique_name, fine_grained_threads):
    """moto's CreateBackup copies the live table while writers change it: it answered HTTP 500."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, range_key=None, pitr=False)
    payload = {"M": {"a": {"S": "x" * 50}, "b": {"L": [{"N": "1"}] * 5}}}
    for i in range(0, 600, 25):
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {**_k(f"old{j}"), "blob": payload}}} for j in range(i, i + 25)
                ]
            }
        )
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        client = sandbox.client("dynamodb")
        while not stop.is_set():
            client.put_item(TableName=table, Item=_k(f"new{len(written)}"))
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    once = sandbox.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    try:
        arns = [
            once.create_backup(TableName=table, BackupName=f"b-{i}-{unique_name}"[:255])["BackupDetails"][
                "BackupArn"
            ]
            for i in range(3)
        ]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert written, "the writer never wrote"
    restored = f"{unique_name}-r"
    ddb.restore_table_from_backup(TargetTableName=restored, BackupArn=arns[-1])
    count = sum(p["Count"] for p in ddb.get_paginator("scan").paginate(TableName=restored, Select="COUNT"))
    assert 600 <= count <= 600 + len(written)
