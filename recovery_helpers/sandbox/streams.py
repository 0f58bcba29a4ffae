"""DynamoDB Streams as AWS keeps them: increasing sequence numbers per shard, each record read once.

moto numbers a record ``len(shard.items)`` without a lock: two concurrent writers could take the same number,
and GetRecords (which pages by that number) then returned a record twice or never caught up. Here records are
numbered and appended under :data:`locking.ITEM_LOCK`, and GetRecords/GetShardIterator read under it too.

A transaction's records are held back until it commits (:func:`deferred`): a cancelled transaction leaves no
record, and nobody else's records are touched (the old rollback cut the shard back to a saved length, deleting
records other requests had added meanwhile). An UpdateItem that creates its item writes one INSERT record, not
moto's two.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

from . import observers
from .locking import ITEM_LOCK, locked

_tls = threading.local()


def install() -> None:
    """Replace moto's StreamShard.add, lock the streams backend's readers, one record per UpdateItem (once)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    StreamShard.add = _add
    DynamoDBBackend.update_item = one_record_per_update(DynamoDBBackend.update_item)
    StreamShard.get = locked(StreamShard.get)
    DynamoDBStreamsBackend.get_records = locked(DynamoDBStreamsBackend.get_records)
    DynamoDBStreamsBackend.get_shard_iterator = locked(DynamoDBStreamsBackend.get_shard_iterator)


def _add(shard: Any, old: Any, new: Any) -> None:
    """moto's StreamShard.add: the record is made now (its images are the items as they are now), numbered
    and appended now, or at the commit of the enclosing transaction."""
    from moto.dynamodb.models.table import StreamRecord

    event = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    view = shard.table.stream_specification["StreamViewType"]
    record = StreamRecord(shard.table, view, event, old, new, 0)
    pending = getattr(_tls, "pending", None)
    if pending is not None:
        pending.append((shard, record))
    else:
        _append(shard, record)


def _append(shard: Any, record: Any) -> None:
    with ITEM_LOCK:
        record.record["dynamodb"]["SequenceNumber"] = str(shard.starting_sequence_number + len(shard.items))
        shard.items.append(record)
        observers.notify(shard, record)  # watchers see the change before its writer gets the answer
        _deliver_to_lambda(shard)


def _deliver_to_lambda(shard: Any) -> None:
    """What moto's add does after appending: hand the records to Lambda event source mappings, if any."""
    result = None
    if not shard.table.lambda_event_source_mappings:
        return
    from moto.awslambda.utils import get_backend

    for arn, esm in shard.table.lambda_event_source_mappings.items():
        region = arn.split(":")[3]
        result = get_backend(shard.account_id, region).send_dynamodb_items(
            arn, shard.items, esm.event_source_arn
        )
    if result:
        shard.items = []


@contextlib.contextmanager
def deferred() -> Iterator[list[tuple[Any, Any]]]:
    """Hold back the stream records made inside the block; after it, :func:`commit` releases them (a block
    left by an exception, or never committed, drops them)."""
    outer = getattr(_tls, "pending", None)
    pending: list[tuple[Any, Any]] = []
    _tls.pending = pending
    try:
        yield pending
    finally:
        _tls.pending = outer


def commit(records: list[tuple[Any, Any]]) -> None:
    """Release records held back by :func:`deferred`, in order: to the enclosing deferral (an update inside a
    transaction) or, with none, numbered and appended to their shards."""
    outer = getattr(_tls, "pending", None)
    if outer is not None:
        outer.extend(records)
        return
    with ITEM_LOCK:
        for shard, record in records:
            _append(shard, record)


def one_record_per_update(update_item: Any) -> Any:
    """moto's UpdateItem of a missing item first puts the bare key (an INSERT record without the update) and
    then adds the update's own record: two records where AWS writes one. Keep the update's own, the last."""

    @functools.wraps(update_item)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with deferred() as pending:
            result = update_item(*args, **kwargs)
        commit(pending[-1:])
        return result

    return wrapper
