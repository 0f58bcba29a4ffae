"""The simulated orders service: writes as the app role, logs every change, refuses writes for read-only
tenants (split out of stage.py, which re-exports ``DemoApp``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..items import iter_chunks
from .names import DEFAULT, KEY, Names


class DemoApp:
    """The orders service: writes as the app role, logs every change, refuses writes for read-only tenants."""

    def __init__(
        self,
        app: Aws,
        log_file: Path,
        *,
        names: Names = DEFAULT,
        cloudwatch: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from ..appkit.change_logger import ChangeLogger
        from ..appkit.guard import ReadOnlyGuard

        self.ddb = app.dynamodb
        self.table = names.table
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.file_log = logging.getLogger(f"demo-changes-{id(self)}")
        self.file_log.propagate = False
        self.file_log.setLevel(logging.INFO)
        self.file_log.addHandler(handler)
        self.changes = ChangeLogger(self.file_log, clock)
        self.cloudwatch = (
            ChangeLogger(
                None, clock, logs_client=app.logs, log_group=names.log_group, log_stream="orders-app"
            )
            if cloudwatch
            else None
        )
        self.guard = ReadOnlyGuard(names.read_only_parameter, ssm_client=app.ssm, ttl_seconds=1)
        self.refused = 0

    def _log(self, key: dict[str, Any], action: str, ship: bool = True) -> None:
        plain = {name: value["S"] for name, value in key.items()}
        self.changes.log_change(plain, action)
        if ship and self.cloudwatch is not None:
            self.cloudwatch.log_change(plain, action)

    def load(self, items: Iterable[dict[str, Any]]) -> None:
        """Initial data, batched (logged as creates to the file only: before log shipping was set up)."""
        for chunk in iter_chunks(items, 25):
            request = {self.table: [{"PutRequest": {"Item": item}} for item in chunk]}
            while request:
                request = self.ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            for item in chunk:
                self._log(KEY.key_of(item), "create", ship=False)

    def put(self, item: dict[str, Any], action: str) -> bool:
        if self.guard.is_read_only(item["pk"]["S"]):
            self.refused += 1
            return False
        self.ddb.put_item(TableName=self.table, Item=item)
        self._log(KEY.key_of(item), action)
        return True

    def update(
        self,
        key: dict[str, Any],
        expression: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        if self.guard.is_read_only(key["pk"]["S"]):
            self.refused += 1
            return False
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": key, "UpdateExpression": expression}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        self.ddb.update_item(**kwargs)
        self._log(key, "update")
        return True

    def delete(self, key: dict[str, Any]) -> bool:
        if self.guard.is_read_only(key["pk"]["S"]):
            self.refused += 1
            return False
        self.ddb.delete_item(TableName=self.table, Key=key)
        self._log(key, "delete")
        return True
