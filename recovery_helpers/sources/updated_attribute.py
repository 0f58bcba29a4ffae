"""Impacted keys from a last-updated attribute the application stamps on every write (e.g. ``updatedAt``).

The attribute may hold ISO 8601 text or an epoch number in seconds or milliseconds (numbers or digit strings);
each item is read as what it holds, so a table that changed format over time still works. Items are found by a
parallel segmented Scan whose FilterExpression keeps only plausible values (a day's margin on text for time
zone offsets), then every value is parsed and checked exactly against the window here. When the tenants are
named and the table has a GSI with the tenant attribute as HASH and this attribute as RANGE, one Query per
tenant replaces the scan.

Deleted items carry no attribute any more: deletions are invisible to this source (its report says so).
The time reported is the item's last update; earlier changes in the window are not visible either.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..errors import InputError
from ..items import Item
from ..scan import DEFAULT_SEGMENTS, DEFAULT_WORKERS, key_projection, map_segments, scan_segment
from . import ImpactedKey, SourceRequest

NAME = "updated_attribute"
DELETES_WARNING = (
    "deletes are invisible to updated_attribute: a deleted item has no attribute left to read. Combine it "
    "with a source that sees deletions (cloudwatch_logs, audit_table, incremental_export, full_compare)."
)
MOVED_WARNING = (
    "the tenant index finds items by their live tenant only: an item the incident moved out of {tenants} "
    "(its tenant attribute rewritten) is not found this way. Combine with full_compare or incremental_export "
    "(they see both versions), or use tenants=['all']."
)
#: Epoch numbers at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
MS_THRESHOLD = 1e11


def parse_updated(value: dict[str, Any]) -> dt.datetime:
    """An attribute value (DynamoDB JSON) as an aware UTC datetime; ValueError when it is not a time."""
    ((tag, inner),) = value.items()
    if tag == "N" or (tag == "S" and inner.strip().isdigit()):
        try:
            number = Decimal(inner.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{inner!r} is not a number") from exc
        seconds = float(number) / 1000 if number >= MS_THRESHOLD else float(number)
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if tag == "S":
        when = dt.datetime.fromisoformat(inner.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC)
    raise ValueError(f"type {tag} is neither a number nor ISO 8601 text")


def _filter(attribute: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """A FilterExpression that keeps every value that could be a time in the window (and a few more)."""
    lo, hi = start.timestamp(), end.timestamp()
    day = dt.timedelta(days=1)
    return {
        "FilterExpression": (
            "(attribute_type(#u, :type_s) AND "
            "(#u BETWEEN :iso_lo AND :iso_hi OR #u BETWEEN :digits_lo AND :digits_hi)) OR "
            "(attribute_type(#u, :type_n) AND "
            "(#u BETWEEN :sec_lo AND :sec_hi OR #u BETWEEN :ms_lo AND :ms_hi))"
        ),
        "ExpressionAttributeValues": {
            ":type_s": {"S": "S"},
            ":type_n": {"S": "N"},
            ":iso_lo": {"S": (start - day).date().isoformat()},
            ":iso_hi": {"S": (end + 2 * day).date().isoformat()},
            ":sec_lo": {"N": str(math.floor(lo) - 1)},
            ":sec_hi": {"N": str(math.ceil(hi) + 1)},
            ":ms_lo": {"N": str(math.floor(lo * 1000) - 1)},
            ":ms_hi": {"N": str(math.ceil(hi * 1000) + 1)},
            ":digits_lo": {"S": str(math.floor(lo) - 1)},
            ":digits_hi": {"S": str(math.ceil(hi) + 1)},
        },
    }


def _tenant_index(table: dict[str, Any], tenant_attribute: str, attribute: str) -> dict[str, Any] | None:
    """A GSI keyed (tenant attribute HASH, updated attribute RANGE) with the key attributes projected."""
    for index in table.get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        if (
            keys.get("HASH") == tenant_attribute
            and keys.get("RANGE") == attribute
            and index.get("IndexStatus", "ACTIVE") == "ACTIVE"
        ):
            return index
    return None


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """Items whose last-updated attribute is inside the window."""
    attribute = request.updated_attribute
    if not attribute:
        raise InputError("impacted_source 'updated_attribute' needs the `updated_attribute` parameter.")
    stats = request.stats
    stats.problem(DELETES_WARNING)
    options = request.options
    ddb = request.aws.dynamodb
    try:
        table = ddb.describe_table(TableName=request.table_name)["Table"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", request.table_name) from exc
    extra = [attribute] + ([request.tenancy.attribute] if request.tenancy.attribute else [])
    projection = key_projection(request.key_schema, extra)
    names = projection["ExpressionAttributeNames"]
    alias = next(a for a, n in names.items() if n == attribute)
    index = None
    if "all" not in request.tenants and request.tenancy.attribute and request.tenancy.pattern is None:
        index = _tenant_index(table, request.tenancy.attribute, attribute)
    workers = int(options.get("max_workers", DEFAULT_WORKERS))

    if index is not None:
        stats.add("gsi_queries", len(request.tenants))
        stats.problem(MOVED_WARNING.format(tenants=", ".join(request.tenants)))
        bounds = _query_bounds(request, index, table)
        pages = map_segments(
            lambda i: _query(request, index, table, bounds, i), len(request.tenants), workers
        )
    else:
        segments = int(options.get("total_segments", DEFAULT_SEGMENTS))
        flt = _filter(attribute, request.window_start, request.window_end)
        kwargs = {
            **projection,
            "FilterExpression": flt["FilterExpression"].replace("#u", alias),
            "ExpressionAttributeValues": flt["ExpressionAttributeValues"],
        }
        pages = map_segments(
            lambda s: scan_segment(ddb, request.table_name, s, segments, **kwargs), segments, workers
        )
    for items in pages:
        for item in items:
            finding = _finding(request, item, attribute)
            if finding is not None:
                yield finding


def _query_bounds(request: SourceRequest, index: dict[str, Any], table: dict[str, Any]) -> tuple[dict, dict]:
    """The GSI range-key bounds of the window, in the attribute's type (and unit, for numbers)."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    start, end = request.window_start, request.window_end
    if types[request.updated_attribute] == "N":
        scale = 1000 if _looks_ms(request, index) else 1
        lo, hi = math.floor(start.timestamp() * scale), math.ceil(end.timestamp() * scale)
        return {"N": str(lo)}, {"N": str(hi)}
    day = dt.timedelta(days=1)
    return {"S": (start - day).date().isoformat()}, {"S": (end + 2 * day).date().isoformat()}


def _query(
    request: SourceRequest, index: dict[str, Any], table: dict[str, Any], bounds: tuple[dict, dict], i: int
) -> Iterator[list[Item]]:
    """One tenant's items with the attribute inside the window, from the (tenant, attribute) GSI."""
    attribute, tenant_attr = request.updated_attribute, request.tenancy.attribute
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    lo, hi = bounds
    tenant_value = {types[tenant_attr]: request.tenants[i]}
    kwargs = {
        "TableName": request.table_name,
        "IndexName": index["IndexName"],
        "KeyConditionExpression": "#t = :t AND #u BETWEEN :lo AND :hi",
        "ExpressionAttributeNames": {"#t": tenant_attr, "#u": attribute},
        "ExpressionAttributeValues": {":t": tenant_value, ":lo": lo, ":hi": hi},
    }
    try:
        for page in request.aws.dynamodb.get_paginator("query").paginate(**kwargs):
            yield page.get("Items", [])
    except ClientError as exc:
        raise explain(exc, "dynamodb:Query", f"{request.table_name}/{index['IndexName']}") from exc


def _looks_ms(request: SourceRequest, index: dict[str, Any]) -> bool:
    """Does the numeric attribute hold milliseconds? Decided from one item of the index."""
    response = request.aws.dynamodb.scan(
        TableName=request.table_name,
        IndexName=index["IndexName"],
        Limit=1,
        ProjectionExpression="#u",
        ExpressionAttributeNames={"#u": request.updated_attribute},
    )
    items = response.get("Items", [])
    return bool(items) and Decimal(items[0][request.updated_attribute]["N"]) >= MS_THRESHOLD


def _finding(request: SourceRequest, item: Item, attribute: str) -> ImpactedKey | None:
    stats = request.stats
    stats.read += 1
    key = request.key_schema.key_of(item)
    try:
        when = parse_updated(item[attribute])
    except (ValueError, KeyError, OverflowError, OSError) as exc:
        stats.malformed += 1
        stats.problem(f"{request.key_schema.key_id(key)}: {attribute} is not a time ({exc})")
        return None
    if not request.in_window(when):
        stats.add("outside_window")
        return None
    # Only the live item is read here: a tenant in a non-key attribute may have been moved by the incident,
    # so only a tenant in the key (which never changes) filters; 04_diff filters the rest on both versions.
    if not request.selects_key(key):
        stats.add("filtered_tenant")
        return None
    return ImpactedKey(key=key, action="unknown", first_change=when, source=NAME)
