"""Impacted keys from the audit table that the Streams handler fills (one audit item per item change).

Set up by 01_prepare: :func:`ensure_audit_table` creates the table (TTL on ``expires_at``) and
:func:`enable_stream` turns on the live table's stream; the application side is
:mod:`recovery_helpers.appkit.streams_handler` (layout documented there).

``find`` reads only the window: per tenant a Query on ``tenant`` + ``sk`` between the window's ISO times;
for ``tenants=["all"]`` one Query per hour of the window on the ``by-hour`` index (partition ``hour``), so no
scan of 35 days of audit items is ever needed. Deletions made by DynamoDB's TTL (``ttl-delete``) do not make a
key impacted on their own: expiry is not damage, and restoring such an item would resurrect it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..appkit.streams_handler import (
    ACTION,
    EXPIRES_AT,
    HOUR,
    HOUR_INDEX,
    KEY,
    NO_TENANT,
    SORT,
    TABLE,
    TENANT,
    TIME,
    TTL_DELETE,
    iso_utc,
)
from ..aws import Aws, error_code, explain
from ..errors import InputError
from ..scan import DEFAULT_WORKERS, map_segments
from . import ImpactedKey, SourceRequest

NAME = "audit_table"
_ACTIONS = {"create", "update", "delete"}


@dataclass
class SetupResult:
    """What a prepare helper found or changed; ``changes`` lists what it did (empty: nothing to do)."""

    name: str
    changes: list[str] = field(default_factory=list)
    arn: str | None = None
    notes: list[str] = field(default_factory=list)


def audit_table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments of an audit table (on-demand; GSI ``by-hour`` for every-tenant queries)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": TENANT, "AttributeType": "S"},
            {"AttributeName": SORT, "AttributeType": "S"},
            {"AttributeName": HOUR, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": TENANT, "KeyType": "HASH"},
            {"AttributeName": SORT, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": HOUR_INDEX,
                "KeySchema": [
                    {"AttributeName": HOUR, "KeyType": "HASH"},
                    {"AttributeName": SORT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def _check_layout(table: dict[str, Any]) -> None:
    keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    if keys != {TENANT: "HASH", SORT: "RANGE"} or HOUR_INDEX not in indexes:
        raise InputError(
            f"table {table['TableName']} exists but is not an audit table (expected key {TENANT} + {SORT} "
            f"and index {HOUR_INDEX}): choose another audit_table_name."
        )


def ensure_audit_table(aws: Aws, name: str) -> SetupResult:
    """Create the audit table if missing and switch its TTL on ``expires_at`` on; idempotent."""
    ddb = aws.dynamodb
    result = SetupResult(name)
    try:
        table = ddb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise explain(exc, "dynamodb:DescribeTable", name) from exc
        try:
            table = ddb.create_table(**audit_table_definition(name))["TableDescription"]
        except ClientError as create_exc:
            raise explain(create_exc, "dynamodb:CreateTable", name) from create_exc
        result.changes.append(f"created audit table {name}")
        ddb.get_waiter("table_exists").wait(TableName=name)
    _check_layout(table)
    result.arn = table.get("TableArn")
    try:
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if ttl.get("AttributeName") != EXPIRES_AT:
                result.notes.append(f"TTL of {name} is on {ttl.get('AttributeName')!r}, not {EXPIRES_AT!r}")
        else:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_AT}
            )
            result.changes.append(f"enabled TTL on {name}.{EXPIRES_AT}")
    except ClientError as exc:
        raise explain(exc, "dynamodb:UpdateTimeToLive", name) from exc
    return result


def enable_stream(aws: Aws, table_name: str) -> SetupResult:
    """Turn on the table's stream with NEW_AND_OLD_IMAGES; idempotent.

    A stream already on with another view type is left alone (switching means disabling it, which would cut
    off its other consumers); the handler only needs the keys, so it works with any view type.
    """
    ddb = aws.dynamodb
    result = SetupResult(table_name)
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
        spec = table.get("StreamSpecification") or {}
        if spec.get("StreamEnabled"):
            if spec.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
                result.notes.append(
                    f"stream of {table_name} is on with {spec.get('StreamViewType')}; left as it is (the "
                    "audit handler needs only keys)"
                )
            result.arn = table.get("LatestStreamArn")
            return result
        updated = ddb.update_table(
            TableName=table_name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:UpdateTable", table_name) from exc
    result.arn = updated.get("LatestStreamArn")
    result.changes.append(f"enabled stream NEW_AND_OLD_IMAGES on {table_name}")
    return result


def _hours(start: dt.datetime, end: dt.datetime) -> list[str]:
    """The ``hour`` buckets that overlap ``[start, end)``."""
    hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour.strftime("%Y-%m-%dT%H"))
        hour += dt.timedelta(hours=1)
    return out


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Every audit entry in the window (find_impacted keeps the first change and its action per key)."""
    name = request.audit_table_name
    if not name:
        raise InputError("impacted_source 'audit_table' needs the `audit_table_name` parameter.")
    ddb = request.aws.dynamodb
    try:
        _check_layout(ddb.describe_table(TableName=name)["Table"])
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", name) from exc
    stats = request.stats
    base = {
        "KeyConditionExpression": "#h = :h AND #s BETWEEN :a AND :b",
        "FilterExpression": "attribute_not_exists(#t) OR #t = :t",
        "ExpressionAttributeNames": {"#s": SORT, "#t": TABLE},
        "ExpressionAttributeValues": {
            ":a": {"S": iso_utc(request.window_start)},
            ":b": {"S": iso_utc(request.window_end)},
            ":t": {"S": request.table_name},
        },
    }
    if "all" in request.tenants:
        partitions = [(HOUR, h) for h in _hours(request.window_start, request.window_end)]
    else:
        partitions = [(TENANT, t) for t in request.tenants]

    def query(i: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        attribute, value = partitions[i]
        kwargs = {
            **base,
            "TableName": name,
            "ExpressionAttributeNames": {**base["ExpressionAttributeNames"], "#h": attribute},
            "ExpressionAttributeValues": {**base["ExpressionAttributeValues"], ":h": {"S": value}},
        }
        if attribute == HOUR:
            kwargs["IndexName"] = HOUR_INDEX
        try:
            for page in ddb.get_paginator("query").paginate(**kwargs):
                yield value, page.get("Items", [])
        except ClientError as exc:
            raise explain(exc, "dynamodb:Query", name) from exc

    per_partition: dict[str, int] = {}
    workers = int(request.options.get("max_workers", DEFAULT_WORKERS))
    for value, items in map_segments(query, len(partitions), workers):
        per_partition[value] = per_partition.get(value, 0) + len(items)
        for item in items:
            stats.read += 1
            try:
                key = request.key_schema.key_of(item[KEY]["M"])
                action = item[ACTION]["S"]
                when = dt.datetime.fromisoformat(item[TIME]["S"].replace("Z", "+00:00"))
            except (KeyError, TypeError, ValueError, InputError) as exc:
                stats.malformed += 1
                where = f"{item.get(TENANT, {}).get('S')}/{item.get(SORT, {}).get('S')}"
                stats.problem(f"audit item {where}: {exc}")
                continue
            if not request.in_window(when):
                stats.add("outside_window")
                continue
            if action == TTL_DELETE:
                stats.add("ttl_deletes_ignored")
                continue
            if action not in _ACTIONS:
                stats.malformed += 1
                stats.problem(f"audit item for {request.key_schema.key_id(key)}: unknown action {action!r}")
                continue
            if not request.selects_key(key):
                stats.add("filtered_tenant")
                continue
            yield ImpactedKey(key=key, action=action, first_change=when, source=NAME)
    for tenant in request.tenants:
        if tenant != "all" and not per_partition.get(tenant):
            stats.problem(
                f"no audit entries for tenant {tenant!r} in the window (if the Streams handler runs without "
                f"TENANT_ATTRIBUTE, entries are under {NO_TENANT!r}: use tenants=['all'])"
            )
