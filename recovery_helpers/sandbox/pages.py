"""Query and Scan pages cut by DynamoDB's rules.

DynamoDB evaluates items (the key condition's, or the table's / segment's) until ``Limit`` items or 1 MB of
them, counted in its storage format, before any filter; the item that crosses 1 MB is in the page. A page has a
LastEvaluatedKey when it stopped at the limit or at 1 MB. ``Count`` is what passes the filter, ``ScannedCount``
what was evaluated. moto counted its own item size, stopped *before* the item that would cross a decimal 1 MB
(pages of 22 items where DynamoDB returns 25), and counted only matching items. The sizes follow dynalite's
measurements of DynamoDB (architect/dynalite ``db.itemSize`` with compression and metadata).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from .item_rules import item_size, number_size

PAGE_BYTES = 1024 * 1024
_meter = threading.local()


class Meter:
    """What a Query/Scan evaluated, for ConsumedCapacity."""

    def __init__(self) -> None:
        self.evaluated_bytes = 0


@contextlib.contextmanager
def metering() -> Iterator[Meter]:
    meter = Meter()
    _meter.current = meter
    try:
        yield meter
    finally:
        _meter.current = None


def _metered(size: int) -> None:
    meter = getattr(_meter, "current", None)
    if meter is not None:
        meter.evaluated_bytes += size


# -- DynamoDB's page-size count (compressed names, per-type overheads, metadata per 3 KB) ------------------------
def _kind_value(value: Any) -> tuple[str, Any]:
    if isinstance(value, dict):
        return next(iter(value.items()))
    return value.type, value.value


def _plain(value: Any, compress: bool) -> int:
    kind, inner = _kind_value(value)
    if kind == "L":
        return 3 + sum(1 + _stored(v, compress) for v in inner)
    if kind == "M":
        return 3 + len(inner) + _attrs(inner, compress)
    if kind == "N":
        return number_size(inner)
    if kind == "NS":
        return sum(number_size(v) for v in inner)
    from .item_rules import value_size

    return value_size(value)


def _stored(value: Any, compress: bool) -> int:
    size = _plain(value, compress)
    if not compress:
        return size
    kind, inner = _kind_value(value)
    if kind == "S":
        return size + (1 if size < 128 else 2 if size < 16384 else 3)
    if kind in ("B", "N"):
        return size + 1
    if kind in ("SS", "BS", "NS"):
        return size + len(inner) + 1
    if kind == "NULL":
        return 0
    if kind == "BOOL":
        return 1
    return size


def _attrs(attrs: dict[str, Any], compress: bool) -> int:
    return sum(
        _stored(v, compress) + (1 if compress else len(name.encode("utf-8"))) for name, v in attrs.items()
    )


def page_size(attrs: dict[str, Any], range_key: str | None) -> int:
    size, range_size = 0, 0
    for name, value in attrs.items():
        if name == range_key:
            range_size = _stored(value, False)
            continue
        size += _stored(value, True) + 1
    return 2 + size + (1 + (1 + size) // 3072) * (18 + range_size)


# -- the page cut ---------------------------------------------------------------------------------------------------
def cut(
    table: Any,
    evaluated: list[Any],
    limit: int | None,
    index_name: str | None,
    filter_expression: Any,
    projection: Any,
    copies: list[Any] | None = None,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """(items passing the filter, projected; ScannedCount; LastEvaluatedKey) of one page over ``evaluated``
    (stored items, counted for size); ``copies``: what to answer for them when moto already copied and projected
    them (a query), else they are copied here."""
    page: list[Any] = []
    size = 0
    for item in evaluated:
        if (limit and len(page) >= limit) or size >= PAGE_BYTES:
            break
        page.append(item)
        size += page_size(item.attrs, table.range_key_attr)
        _metered(item_size(item.attrs))
    last_key = None
    if page and ((limit and len(page) >= limit) or size >= PAGE_BYTES):
        last_key = table._get_last_evaluated_key(page[-1], index_name)
    scanned = len(page)
    if copies is not None:
        page = copies[:scanned]
    elif index_name:
        index = table.get_index(index_name)
        page = [index.project(copy.deepcopy(item)) for item in page]
    else:
        page = [copy.deepcopy(item) for item in page]
    if filter_expression is not None:
        page = [item for item in page if filter_expression.expr(item)]
    if projection:
        page = [item.project(projection) for item in page]
    return page, scanned, last_key


def install() -> None:
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.table import Table

    table_module.RESULT_SIZE_LIMIT = float("inf")  # pages are cut here, not by moto's estimate
    original_query = Table.query

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: int,
        exclusive_start_key: Any,
        scan_index_forward: bool,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        **kwargs: Any,
    ) -> Any:
        if kwargs.get("filter_kwargs") or any(
            k not in ("hash_key_conditions", "range_key_conditions") for k in kwargs
        ):
            return original_query(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name=index_name,
                consistent_read=consistent_read,
                filter_expression=filter_expression,
                **kwargs,
            )
        evaluated, _, _ = original_query(
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,  # moto counts evaluated items as DynamoDB does; the 1 MB cut is made below
            exclusive_start_key,
            scan_index_forward,
            None,
            index_name=None if not index_name else index_name,
            consistent_read=consistent_read,
            filter_expression=None,
            **kwargs,
        )
        stored = [_original_item(self, item) for item in evaluated] if index_name else evaluated
        return cut(
            self, stored, limit, index_name, filter_expression, projection_expressions, copies=evaluated
        )

    def scan(
        self: Any,
        filters: dict[str, Any],
        limit: int | None,
        exclusive_start_key: Any,
        filter_expression: Any = None,
        index_name: str | None = None,
        consistent_read: bool = False,
        projection_expression: Any = None,
        segments: Any = (None, None),
    ) -> Any:
        if filters:  # legacy ScanFilter arrives as a FilterExpression (legacy.py); keep moto's path otherwise
            return original_scan(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                consistent_read,
                projection_expression,
                segments,
            )
        if index_name:
            original_scan(
                self, {}, 1, None, None, index_name, consistent_read, None, segments
            )  # moto's checks
            index = self.get_index(index_name)
            hash_attrs = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] + [
                self.hash_key_attr
            ]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            range_attrs = [ranges[0], self.range_key_attr] if ranges else [self.range_key_attr]
            items = self.sorted_items(hash_attrs, range_attrs, self.has_idx_items(index_name))
        else:
            hash_attrs, range_attrs = [self.hash_key_attr], [self.range_key_attr]
            items = self.all_items()
        evaluated = []
        skipping = exclusive_start_key is not None
        for item in items:
            if not item.is_within_segment(segments):
                continue
            if skipping:
                if self._item_comes_before_dct(item, exclusive_start_key, hash_attrs, range_attrs, True):
                    continue
                skipping = False
            evaluated.append(item)
            if limit and len(evaluated) >= limit:
                break
        return cut(self, evaluated, limit, index_name, filter_expression, projection_expression)

    original_scan = Table.scan
    Table.query = query
    Table.scan = scan


def _original_item(table: Any, item: Any) -> Any:
    """moto's query answers index projections of copies; the page rule counts the stored items."""
    try:
        stored = table.get_item(item.hash_key, item.range_key)
    except Exception:  # noqa: BLE001
        stored = None
    return stored if stored is not None else item
