"""Point-in-time recovery as AWS does it: a real window, restores of the past into a CREATING table."""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Callable, Iterable
from typing import Any

from . import patches
from .history import HISTORIES, TableHistory, snapshot_of

SECONDS_PER_DAY = 86400.0


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    return float(value)


def window(table: Any) -> tuple[float, float] | None:
    """(earliest, latest) restorable epoch seconds, or None when PITR is off."""
    hist = HISTORIES.get(table.table_arn)
    desc = table.continuous_backups["PointInTimeRecoveryDescription"]
    if hist is None or desc.get("PointInTimeRecoveryStatus") != "ENABLED":
        return None
    now = patches.now()
    period = float(desc.get("RecoveryPeriodInDays", 35)) * SECONDS_PER_DAY
    earliest = max(hist.enabled_at, now - period)
    latest = max(earliest, now - patches.settings().pitr_lag_seconds)
    return earliest, latest


# -- backend wrappers ---------------------------------------------------------------------------------------
def wrap_update_continuous_backups(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, table_name: str, point_in_time_spec: dict[str, Any]) -> Any:
        result = fn(self, table_name, point_in_time_spec)
        table = self.get_table(table_name)
        enabled = result["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        if enabled and table.table_arn not in HISTORIES:
            start = patches.now()
            hist = TableHistory(
                enabled_at=start, hash_attr=table.hash_key_attr, range_attr=table.range_key_attr
            )
            for item in table.all_items():
                snap = snapshot_of(item)
                hist.record(start - 1e-6, hist.key_of(snap), snap)
            HISTORIES[table.table_arn] = hist
        elif not enabled:
            HISTORIES.pop(table.table_arn, None)  # disabling forgets the window, as on AWS
        return wrapper_describe(self, table_name, result)

    return wrapper


def wrapper_describe(backend: Any, table_name: str, result: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_table(table_name)
    out = copy.deepcopy(result)
    win = window(table)
    if win is not None:
        desc = out["PointInTimeRecoveryDescription"]
        desc["EarliestRestorableDateTime"], desc["LatestRestorableDateTime"] = win
    return out


def wrap_describe_continuous_backups(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, table_name: str) -> Any:
        return wrapper_describe(self, table_name, fn(self, table_name))

    return wrapper


def wrap_forget_history(fn: Callable[..., Any]) -> Callable[..., Any]:
    """create_table / delete_table: a new incarnation of a name starts without history."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        table = fn(self, *args, **kwargs)
        if table is not None and hasattr(table, "table_arn"):
            HISTORIES.pop(table.table_arn, None)
        return table

    return wrapper


def is_creating(table: Any) -> bool:
    ready = getattr(table, "_sandbox_ready_at", None)
    return ready is not None and patches.now() < ready


def wrap_describe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Table.describe: CREATING until the restore period has passed, with AWS's RestoreSummary."""

    @functools.wraps(fn)
    def wrapper(self: Any, base_key: str = "TableDescription") -> Any:
        result = fn(self, base_key=base_key)
        summary = getattr(self, "_sandbox_restore_summary", None)
        if summary is not None:
            creating = is_creating(self)
            desc = result[base_key]
            desc["TableStatus"] = "CREATING" if creating else "ACTIVE"
            desc["RestoreSummary"] = {**summary, "RestoreInProgress": creating}
            for index in desc.get("GlobalSecondaryIndexes") or []:
                index["IndexStatus"] = "CREATING" if creating else "ACTIVE"
            if creating:
                desc["ItemCount"] = 0
            if not desc.get("GlobalSecondaryIndexes"):
                desc.pop("GlobalSecondaryIndexes", None)
            if not desc.get("LocalSecondaryIndexes"):
                desc.pop("LocalSecondaryIndexes", None)
        return result

    return wrapper


# -- handlers -----------------------------------------------------------------------------------------------
def handle_restore_to_point_in_time(self: Any) -> Any:
    from moto.dynamodb.exceptions import (
        PointInTimeRecoveryUnavailable,
        SourceTableNotFoundException,
        TableAlreadyExistsException,
    )
    from moto.dynamodb.responses import DynamoResult

    body = self.body
    backend = self.dynamodb_backend
    source_name = body.get("SourceTableName") or str(body.get("SourceTableArn", "")).split("/")[-1]
    target = body["TargetTableName"]
    source = backend.tables.get(source_name)
    if source is None:
        raise SourceTableNotFoundException(source_name)
    win = window(source)
    if win is None:
        raise PointInTimeRecoveryUnavailable(source_name)
    if target in backend.tables:
        raise TableAlreadyExistsException(target)
    earliest, latest = win
    if body.get("UseLatestRestorableTime"):
        when = latest
    elif "RestoreDateTime" in body:
        when = _epoch(body["RestoreDateTime"])
        if not earliest <= when <= latest:
            raise _error(
                "InvalidRestoreTimeException",
                f"Restore time {_iso(when)} is not within the restorable period "
                f"[{_iso(earliest)}, {_iso(latest)}] for table {source_name}",
            )
    else:
        raise _validation("Either RestoreDateTime or UseLatestRestorableTime must be provided")
    items = HISTORIES[source.table_arn].items_at(when)
    table = _build_restored(backend, source, target, body, items)
    table._sandbox_restore_summary = {
        "SourceTableArn": source.table_arn,
        "RestoreDateTime": when,
    }
    return DynamoResult(table.describe(base_key="TableDescription"))


def handle_restore_from_backup(self: Any) -> Any:
    from moto.dynamodb.exceptions import TableAlreadyExistsException
    from moto.dynamodb.responses import DynamoResult

    body = self.body
    backend = self.dynamodb_backend
    backup = backend.get_backup(body["BackupArn"])
    target = body["TargetTableName"]
    if target in backend.tables:
        raise TableAlreadyExistsException(target)
    items = (snapshot_of(item) for item in backup.table.all_items())
    table = _build_restored(backend, backup.table, target, body, items)
    table._sandbox_restore_summary = {
        "SourceBackupArn": backup.arn,
        "SourceTableArn": backup.table.table_arn,
        "RestoreDateTime": backup.creation_date_time.timestamp()
        if hasattr(backup.creation_date_time, "timestamp")
        else patches.now(),
    }
    return DynamoResult(table.describe(base_key="TableDescription"))


def _build_restored(
    backend: Any, source: Any, target: str, body: dict[str, Any], items: Iterable[dict[str, Any]]
) -> Any:
    """A new table with the source's key schema, the chosen indexes and billing mode, and these items."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    billing = body.get("BillingModeOverride") or source.billing_mode
    throughput = body.get("ProvisionedThroughputOverride") or copy.deepcopy(source.throughput)
    table = Table(
        target,
        account_id=backend.account_id,
        region=backend.region_name,
        schema=copy.deepcopy(source.schema),
        attr=copy.deepcopy(source.attr),
        throughput=None if billing == "PAY_PER_REQUEST" else throughput,
        billing_mode=billing,
    )
    table.global_indexes = _pick_indexes(
        source.global_indexes, body.get("GlobalSecondaryIndexOverride"), "global"
    )
    table.indexes = _pick_indexes(source.indexes, body.get("LocalSecondaryIndexOverride"), "local")
    hash_attr, range_attr = table.hash_key_attr, table.range_key_attr
    for attrs in items:
        hash_value = DynamoType(attrs[hash_attr])
        range_value = DynamoType(attrs[range_attr]) if range_attr else None
        item = Item(hash_value, range_value, attrs)
        if range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item
    table._sandbox_ready_at = patches.now() + patches.settings().restore_seconds
    backend.tables[target] = table
    return table


def _pick_indexes(indexes: list[Any], override: list[dict[str, Any]] | None, kind: str) -> list[Any]:
    """Omitted override: keep all. A list: keep exactly those (AWS can only keep or drop, not invent)."""
    if override is None:
        return copy.deepcopy(indexes)
    by_name = {index.name: index for index in indexes}
    unknown = [o["IndexName"] for o in override if o["IndexName"] not in by_name]
    if unknown:
        raise _validation(
            f"The {kind} secondary index override names indexes the source does not have: {unknown}"
        )
    return [copy.deepcopy(by_name[o["IndexName"]]) for o in override]


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat()


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX

    return JsonRESTError(ERROR_TYPE_PREFIX + code, message)


def _validation(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)
