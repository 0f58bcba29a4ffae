"""A Lambda handler that turns DynamoDB Streams records into audit-table items (one item per change).

Attach it to the table's stream (any view type: only ``Keys`` are read) with the environment variables

- ``AUDIT_TABLE`` (required): the audit table, created by 01_prepare (``ensure_audit_table``);
- ``TENANT_ATTRIBUTE`` (optional): where the tenant lives, ``tenantId`` or ``pk:^([^#]+)#`` (see tenancy);
- ``AUDIT_TTL_DAYS`` (optional, default 35): how long audit items live (PITR's longest window);
- ``RECORD_TTL_DELETES`` (optional, default ``true``): record deletions made by DynamoDB's TTL as
  ``ttl-delete`` (the audit source never reports a key for them alone: expiry is not damage).

Audit item layout (read by ``recovery_helpers.sources.audit_table``)::

    tenant      S  partition key: the tenant, or "#none" when the item has none
    sk          S  sort key: "<ISO 8601 UTC time>#<stream eventID>" (time order; a redelivered record
                   overwrites its own item, so retries never duplicate)
    hour        S  "YYYY-MM-DDTHH" of the change: partition key of the GSI "by-hour" (every tenant at once)
    table       S  the source table's name (one audit table can serve several tables)
    key         M  the changed item's key, DynamoDB JSON
    action      S  create | update | delete | ttl-delete
    time        S  the change time, ISO 8601 UTC
    expires_at  N  epoch seconds: change time + AUDIT_TTL_DAYS (the audit table's TTL attribute)

Imports only boto3, the standard library and the package's boto3-only modules, so it can be zipped into a
Lambda function on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3

from ..items import from_json_safe
from ..tenancy import Tenancy

TENANT = "tenant"
SORT = "sk"
HOUR = "hour"
TABLE = "table"
KEY = "key"
ACTION = "action"
TIME = "time"
EXPIRES_AT = "expires_at"
HOUR_INDEX = "by-hour"
NO_TENANT = "#none"
TTL_DELETE = "ttl-delete"
DEFAULT_TTL_DAYS = 35
DYNAMODB_SERVICE = "dynamodb.amazonaws.com"
_ACTIONS = {"INSERT": "create", "MODIFY": "update", "REMOVE": "delete"}
_BATCH = 25

_log = logging.getLogger(__name__)


def iso_utc(when: dt.datetime) -> str:
    """Fixed-width ISO 8601 UTC text, so that text order is time order (audit sort keys rely on it)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hour_bucket(when: dt.datetime) -> str:
    """The ``hour`` attribute of a change at ``when``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H")


def record_time(value: Any) -> dt.datetime:
    """A stream record's ApproximateCreationDateTime as an aware UTC datetime.

    Lambda events give epoch seconds (a number); boto3's ``get_records`` gives a datetime; numbers larger than
    any epoch-seconds value are read as milliseconds or microseconds.
    """
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    seconds = float(value)
    if seconds > 1e14:
        seconds /= 1e6
    elif seconds > 1e11:
        seconds /= 1e3
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def table_of(record: Mapping[str, Any]) -> str | None:
    """The source table's name from a record's ``eventSourceARN`` (``...:table/NAME/stream/LABEL``)."""
    arn = record.get("eventSourceARN") or ""
    _, sep, rest = arn.partition(":table/")
    return rest.split("/", 1)[0] if sep else None


def is_ttl_delete(record: Mapping[str, Any]) -> bool:
    """Was this REMOVE made by DynamoDB's TTL (not by the application)?"""
    identity = record.get("userIdentity") or {}
    return record.get("eventName") == "REMOVE" and identity.get("principalId") == DYNAMODB_SERVICE


class AuditWriter:
    """Turns stream records into audit items and writes them with BatchWriteItem (retrying unprocessed)."""

    def __init__(
        self,
        audit_table: str,
        *,
        tenancy: Tenancy | None = None,
        dynamodb: Any = None,
        ttl_days: float = DEFAULT_TTL_DAYS,
        record_ttl_deletes: bool = True,
        default_table: str | None = None,
        max_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.audit_table = audit_table
        self.tenancy = tenancy or Tenancy()
        self.dynamodb = dynamodb if dynamodb is not None else boto3.client("dynamodb")
        self.ttl_days = ttl_days
        self.record_ttl_deletes = record_ttl_deletes
        self.default_table = default_table
        self.max_attempts = max_attempts
        self.sleep = sleep

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, dynamodb: Any = None) -> AuditWriter:
        """Configured from AUDIT_TABLE, TENANT_ATTRIBUTE, AUDIT_TTL_DAYS, RECORD_TTL_DELETES, SOURCE_TABLE."""
        env = os.environ if environ is None else environ
        table = env.get("AUDIT_TABLE")
        if not table:
            raise RuntimeError("set the AUDIT_TABLE environment variable to the audit table's name")
        return cls(
            table,
            tenancy=Tenancy.parse(env.get("TENANT_ATTRIBUTE") or None),
            dynamodb=dynamodb,
            ttl_days=float(env.get("AUDIT_TTL_DAYS") or DEFAULT_TTL_DAYS),
            record_ttl_deletes=(env.get("RECORD_TTL_DELETES") or "true").lower() not in ("false", "0", "no"),
            default_table=env.get("SOURCE_TABLE") or None,
        )

    def audit_item(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The audit item of one stream record (None for records that are not item changes, or skipped)."""
        items = self.audit_items(record)
        return items[0] if items else None

    def audit_items(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The audit items of one stream record: one per tenant it touched (old and new tenant, when a write
        moved the item between tenants, so that a query of either tenant finds it); [] when skipped."""
        action = _ACTIONS.get(record.get("eventName", ""))
        data = record.get("dynamodb") or {}
        if action is None or "Keys" not in data:
            return []
        if is_ttl_delete(record):
            if not self.record_ttl_deletes:
                return []
            action = TTL_DELETE
        keys = from_json_safe(data["Keys"])
        when = record_time(data.get("ApproximateCreationDateTime", time.time()))
        images = [from_json_safe(data.get(n)) if data.get(n) else None for n in ("NewImage", "OldImage")]
        tenants = list(dict.fromkeys(t for t in (self.tenancy.tenant_of(v) for v in (*images, keys)) if t))
        event_id = record.get("eventID") or data.get("SequenceNumber") or ""
        expires = int(when.timestamp() + self.ttl_days * 86400)
        common = {
            SORT: {"S": f"{iso_utc(when)}#{event_id}"},
            HOUR: {"S": hour_bucket(when)},
            KEY: {"M": keys},
            ACTION: {"S": action},
            TIME: {"S": iso_utc(when)},
            EXPIRES_AT: {"N": str(expires)},
        }
        table = table_of(record) or self.default_table
        if table:
            common[TABLE] = {"S": table}
        return [{TENANT: {"S": tenant}, **common} for tenant in tenants or [NO_TENANT]]

    def handle(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Write the audit items of these records; returns how many were written and skipped."""
        items, skipped = [], 0
        for record in records:
            found = self.audit_items(record)
            if not found:
                skipped += 1
            items.extend(found)
        self.write(items)
        return {"written": len(items), "skipped": skipped}

    def write(self, items: list[dict[str, Any]]) -> None:
        """BatchWriteItem in batches of 25, retrying unprocessed items with backoff; raises when they persist.

        Raising makes Lambda retry the whole batch; safe, as a record always maps to the same audit items.
        """
        for start in range(0, len(items), _BATCH):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]
            for attempt in range(self.max_attempts):
                response = self.dynamodb.batch_write_item(RequestItems={self.audit_table: requests})
                requests = response.get("UnprocessedItems", {}).get(self.audit_table, [])
                if not requests:
                    break
                self.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))
            else:
                raise RuntimeError(
                    f"{len(requests)} audit items stayed unprocessed after {self.max_attempts} attempts "
                    f"(audit table {self.audit_table} throttled?)"
                )


_writer: AuditWriter | None = None


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, int]:
    """Lambda entry point for a DynamoDB Streams event source mapping."""
    global _writer
    if _writer is None:
        _writer = AuditWriter.from_env()
    result = _writer.handle(event.get("Records", []))
    _log.info("audit: %s", result)
    return result
