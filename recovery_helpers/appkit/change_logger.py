"""The structured change log: one JSON line per item change, the record the runbook's log sources read.

    {"operation": "itemChange", "timestamp": 1714567890123, "ids": {"pk": "tenant-1", "sk": "doc-1"},
     "action": "create"}

``timestamp`` is epoch milliseconds, ``ids`` the item's key attributes as plain JSON values (numbers as
numbers, binary as base64 text), ``action`` one of ``create``, ``update``, ``delete``. Keep the log group's
retention at 35 days or more (PITR's longest window) so the records outlive every restorable incident.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer
from botocore.exceptions import ClientError

ACTIONS = ("create", "update", "delete")
_deserializer = TypeDeserializer()
_log = logging.getLogger(__name__)


def _plain(value: Any) -> str:
    """A key value as JSON text: numbers as JSON numbers with every digit (never a float), bytes as base64."""
    if isinstance(value, Binary):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        return json.dumps(base64.b64encode(bytes(value)).decode())
    if isinstance(value, float) and not isinstance(value, bool):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a DynamoDB number")
        return str(value)  # str() of a finite Decimal is JSON number syntax (1.5E+40, 0.001, 12.50)
    return json.dumps(value)


def change_record(key: Mapping[str, Any], action: str, timestamp_ms: int) -> str:
    """The change-log line for one change of the item with these (plain) key values."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    # written by hand so that number keys keep every digit (json.dumps would need floats)
    ids = ",".join(f"{json.dumps(name)}:{_plain(value)}" for name, value in key.items())
    return (
        f'{{"operation":"itemChange","timestamp":{int(timestamp_ms)},"ids":{{{ids}}},'
        f'"action":{json.dumps(action)}}}'
    )


class ChangeLogger:
    """Writes change-log records to a ``logging.Logger`` and/or a CloudWatch Logs stream.

    With ``logs_client`` (a boto3 ``logs`` client), ``log_group`` and ``log_stream``, each record is sent with
    ``put_log_events`` (the stream is created on first use). With a Lambda function, the plain ``logger`` is
    enough: Lambda forwards stdout/logging to CloudWatch Logs by itself.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        *,
        logs_client: Any = None,
        log_group: str | None = None,
        log_stream: str | None = None,
    ) -> None:
        if logs_client is not None and not (log_group and log_stream):
            raise ValueError("a CloudWatch Logs client needs log_group and log_stream")
        self.logger = logger if logger is not None or logs_client is not None else _log
        self.clock = clock
        self.logs = logs_client
        self.log_group = log_group
        self.log_stream = log_stream
        self._stream_ready = False

    def log_change(self, key: Mapping[str, Any], action: str) -> str:
        """Record that the item with this plain key (``{"pk": "t-1", "sk": 7}``) was changed."""
        now_ms = int(self.clock() * 1000)
        line = change_record(key, action, now_ms)
        if self.logger is not None:
            self.logger.info(line)
        if self.logs is not None:
            self._put(line, now_ms)
        return line

    def _put(self, line: str, now_ms: int) -> None:
        target = {"logGroupName": self.log_group, "logStreamName": self.log_stream}
        events = [{"timestamp": now_ms, "message": line}]
        try:
            self.logs.put_log_events(**target, logEvents=events)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException" or self._stream_ready:
                raise
            try:
                self.logs.create_log_stream(**target)
            except ClientError as create_exc:
                if create_exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
            self._stream_ready = True
            self.logs.put_log_events(**target, logEvents=events)

    # -- small wrappers around a low-level boto3 DynamoDB client ------------------------------------------
    def put_item(self, dynamodb: Any, key_names: Sequence[str], **kwargs: Any) -> dict[str, Any]:
        """``dynamodb.put_item(**kwargs)``, then log ``create`` or ``update`` (known from the old item)."""
        probe = "ReturnValues" not in kwargs
        response = dynamodb.put_item(**({"ReturnValues": "ALL_OLD", **kwargs} if probe else kwargs))
        action = "update" if not probe or response.get("Attributes") else "create"
        self.log_change(_plain_key({n: kwargs["Item"][n] for n in key_names}), action)
        return response

    def update_item(self, dynamodb: Any, **kwargs: Any) -> dict[str, Any]:
        """``dynamodb.update_item(**kwargs)``, then log ``create`` (upsert of a new item) or ``update``."""
        probe = "ReturnValues" not in kwargs
        response = dynamodb.update_item(**({"ReturnValues": "ALL_OLD", **kwargs} if probe else kwargs))
        action = "create" if probe and not response.get("Attributes") else "update"
        self.log_change(_plain_key(kwargs["Key"]), action)
        return response

    def delete_item(self, dynamodb: Any, **kwargs: Any) -> dict[str, Any]:
        """``dynamodb.delete_item(**kwargs)``, then log ``delete`` (only if an item was there, when known)."""
        probe = "ReturnValues" not in kwargs
        response = dynamodb.delete_item(**({"ReturnValues": "ALL_OLD", **kwargs} if probe else kwargs))
        if not probe or response.get("Attributes"):
            self.log_change(_plain_key(kwargs["Key"]), "delete")
        return response


def _plain_key(key: Mapping[str, Any]) -> dict[str, Any]:
    """Key values as Python; numbers exact (boto3's deserializer traps on plain forms of 1E+38 and more)."""
    return {
        name: Decimal(value["N"]) if "N" in value else _deserializer.deserialize(value)
        for name, value in key.items()
    }
