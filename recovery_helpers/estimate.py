"""What an expensive step will cost before it runs: items, bytes, read/write units, export GB, minutes.

Each ``estimate_*`` function takes the table's figures (:func:`table_figures`: DescribeTable's ``ItemCount`` and
``TableSizeBytes``, which AWS refreshes about every six hours, or a sample when they are missing) and returns an
:class:`Estimate` that names the parameter capping the step's speed or spend. Minutes are rough guidance: AWS
gives no duration guarantee for restores or exports, and the rates used are stated in each estimate's notes.
Capacity follows AWS's rules: a read unit per 4 KB strongly consistent (half for eventually consistent), a write
unit per 1 KB, transactions twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

#: Items per second one client process reaches through the API (scan + BatchGetItem; measured ~1,000 against the
#: sandbox, a few thousand on AWS in-region).
API_ITEMS_PER_SECOND = 1000.0
#: Items per second the DuckDB compare engine reached on 2 cores (bench/export_compare.py).
ENGINE_ITEMS_PER_SECOND = 100_000.0
#: Patch writes per second of ONE process with its default ``PATCH_WORKERS`` workers, in-region, when nothing
#: else caps it: our planning figure (AWS publishes no such rate); replace it with what your rehearsal measured.
#: ``max_processes=P`` counts P times this; fewer workers count proportionally less, more count no more.
PATCH_WRITES_PER_SECOND = 500.0
PATCH_WORKERS = 8
#: Export throughput assumed for the minutes estimate (GB per minute) and the fixed start-up minutes.
EXPORT_GB_PER_MINUTE = 1.0
EXPORT_STARTUP_MINUTES = 5.0
#: Restore planning figures (AWS publishes no restore rate: "restore times are directly related to the
#: configuration of your tables (such as the size of the tables and the number of underlying partitions)", and
#: it advises documenting the restore times you measure). Fixed start-up minutes (provisioning the new table,
#: even when empty) and GB per minute of table data; each restored global secondary index is counted as
#: another pass over the data (an upper bound: an index holds only its projected attributes). Replace them
#: with what your own rehearsal measured.
RESTORE_STARTUP_MINUTES = 20.0
RESTORE_GB_PER_MINUTE = 1.0
SAMPLE_ITEMS = 100


@dataclass(frozen=True)
class TableFigures:
    """How big the table is: items, total bytes and the average item size."""

    items: int
    bytes: int
    source: str  # "DescribeTable" or "sample of N items"
    read_capacity: float | None = None  # provisioned read units per second (None: on-demand or unknown)
    write_capacity: float | None = None  # provisioned write units per second (None: on-demand or unknown)
    indexes: int = 0  # global secondary indexes

    @property
    def average_item_bytes(self) -> float:
        return self.bytes / self.items if self.items else 0.0


@dataclass
class Estimate:
    """The cost of one step, shown before it runs."""

    step: str
    items: int
    bytes: int
    read_units: float = 0.0
    write_units: float = 0.0
    export_gb: float = 0.0
    minutes: float = 0.0
    capped_by: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"{self.step}: items={self.items} bytes={self.bytes} read_units={self.read_units:.0f} "
            f"write_units={self.write_units:.0f} export_gb={small(self.export_gb, 3, grouped=False)} "
            f"minutes={small(self.minutes, 1, grouped=False)} "
            f"capped_by={self.capped_by}"
        )


def small(value: float, digits: int, *, grouped: bool = True) -> str:
    """``0`` for nothing, ``<0.1`` (``<0.001``) for less than the last digit shown, else the rounded value:
    a few seconds or megabytes never read as "0.0"."""
    floor = 10**-digits
    if not value:
        return "0"
    if value < floor:
        return f"<{floor:.{digits}f}"
    return f"{value:,.{digits}f}" if grouped else f"{value:.{digits}f}"


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute (name + value), after AWS's item-size rules."""
    return len(name.encode()) + _value_size(value)


def _value_size(value: dict[str, Any]) -> int:
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(inner.encode())
    if tag == "N":
        return _number_size(inner)
    if tag == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else math.ceil(len(inner) * 3 / 4)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(x.encode()) for x in inner)
    if tag == "NS":
        return sum(_number_size(x) for x in inner)
    if tag == "BS":
        return sum(len(x) if isinstance(x, (bytes, bytearray)) else math.ceil(len(x) * 3 / 4) for x in inner)
    if tag == "M":
        return 3 + sum(attribute_size(k, v) + 1 for k, v in inner.items())
    if tag == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    return 0


def _number_size(text: str) -> int:
    digits = len(Decimal(text).normalize().as_tuple().digits)
    return 1 + math.ceil(digits / 2)


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for an item (the basis of read and write units)."""
    return sum(attribute_size(k, v) for k, v in item.items())


def table_figures(dynamodb: Any, table_name: str, *, sample: int = SAMPLE_ITEMS) -> TableFigures:
    """Items and bytes of a table from DescribeTable; when it reports no size, from a small Scan sample."""
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    items, size = int(table.get("ItemCount") or 0), int(table.get("TableSizeBytes") or 0)
    extra = provisioned(table)
    if size:
        return TableFigures(items, size, "DescribeTable", **extra)
    page = dynamodb.scan(TableName=table_name, Limit=sample)
    rows = page.get("Items", [])
    if not rows:
        return TableFigures(items, 0, "DescribeTable", **extra)
    average = sum(item_size(r) for r in rows) / len(rows)
    return TableFigures(items, round(average * items), f"sample of {len(rows)} items", **extra)


def provisioned(table: dict[str, Any]) -> dict[str, Any]:
    """Provisioned read/write units (None when on-demand) and the number of global secondary indexes."""
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    is_provisioned = mode == "PROVISIONED"
    throughput = table.get("ProvisionedThroughput") or {}
    read, write = throughput.get("ReadCapacityUnits") or 0, throughput.get("WriteCapacityUnits") or 0
    return {
        "read_capacity": float(read) if is_provisioned and read else None,
        "write_capacity": float(write) if is_provisioned and write else None,
        "indexes": len(table.get("GlobalSecondaryIndexes") or []),
    }


def _units(per_item_bytes: float, unit_bytes: int) -> int:
    return max(1, math.ceil(per_item_bytes / unit_bytes))


def estimate_export(figures: TableFigures, *, exports: int = 1) -> Estimate:
    """FULL export(s) of the table: no read capacity, billed per GB of table size."""
    gb = figures.bytes / 1e9 * exports
    minutes = EXPORT_STARTUP_MINUTES + figures.bytes / 1e9 / EXPORT_GB_PER_MINUTE
    return Estimate(
        "export",
        figures.items * exports,
        figures.bytes * exports,
        export_gb=gb,
        minutes=minutes,
        capped_by="export_timeout_seconds",
        notes=[
            f"figures from {figures.source}",
            ("exports consume no read capacity; several run at once"),
            (
                f"minutes assume {EXPORT_GB_PER_MINUTE:g} GB/min after "
                f"{EXPORT_STARTUP_MINUTES:g} min start-up (AWS gives no guarantee)"
            ),
        ],
    )


def estimate_restore(figures: TableFigures, *, restore_indexes: bool = True) -> Estimate:
    """03_restore: a new table from PITR or a backup; no read or write capacity, time grows with the data."""
    passes = 1 + (figures.indexes if restore_indexes else 0)
    minutes = RESTORE_STARTUP_MINUTES + figures.bytes / 1e9 / RESTORE_GB_PER_MINUTE * passes
    index_note = (
        f"{figures.indexes} global secondary index(es) restored too, each counted as another pass"
        if restore_indexes and figures.indexes
        else "no global secondary index to build"
        if not figures.indexes
        else f"{figures.indexes} global secondary index(es) left out (restore_indexes=False)"
    )
    return Estimate(
        "restore",
        figures.items,
        figures.bytes,
        minutes=minutes,
        capped_by="restore_indexes / timeout_seconds",
        notes=[
            f"figures from {figures.source}",
            "a restore consumes no read or write capacity of the live table",
            (
                f"minutes assume {RESTORE_STARTUP_MINUTES:g} min start-up + {RESTORE_GB_PER_MINUTE:g} GB/min "
                "(AWS publishes no restore rate; replace with your rehearsal's figure)"
            ),
            index_note,
        ],
    )


def estimate_full_export_diff(figures: TableFigures, *, reused: int = 0) -> Estimate:
    """impacted_source='full_export': two exports (run at once, minus ``reused`` ones) and the comparison."""
    new_exports = max(0, 2 - reused)
    export = estimate_export(figures, exports=new_exports)
    # the exports run at the same time; none to make: only the comparison
    one_export = estimate_export(figures).minutes if new_exports else 0.0
    engine_minutes = 2 * figures.items / ENGINE_ITEMS_PER_SECOND / 60
    return Estimate(
        "full_export diff",
        figures.items,
        figures.bytes * 2,
        export_gb=export.export_gb,
        minutes=one_export + engine_minutes,
        capped_by="compare_engine / source_options.memory_limit",
        notes=[
            *export.notes,
            f"{new_exports} new export(s), {2 - new_exports} reused (export_arns)",
            f"comparison at {ENGINE_ITEMS_PER_SECOND:g} items/s (DuckDB, 2 cores)",
        ],
    )


def estimate_full_compare(
    figures: TableFigures, *, max_workers: int = 4, read_capacity: float | None = None
) -> Estimate:
    """impacted_source='full_compare': scan the restored table, read every key from the live one, scan it back."""
    per_item = figures.average_item_bytes
    # restored scan (eventually consistent) + live BatchGetItem (consistent) + live scan (eventually consistent)
    units = figures.items * (
        _units(per_item, 4096) * 0.5 + _units(per_item, 4096) + _units(per_item, 4096) * 0.5
    )
    rate = API_ITEMS_PER_SECOND * max_workers / 4
    notes = [
        f"figures from {figures.source} (the live table; the restored one is about as large)",
        (
            "read units per item: 1/2 per 4 KB for each of the two eventually consistent scans, 1 per 4 KB "
            "for the consistent read of the live item"
        ),
        f"{rate:g} items/s through the API",
    ]
    if read_capacity:
        rate = min(rate, read_capacity / max(1.0, units / max(1, figures.items)))
        notes.append(f"limited by {read_capacity:g} read units/s of the tables")
    return Estimate(
        "full_compare diff",
        figures.items,
        figures.bytes * 2,
        read_units=units,
        minutes=2 * figures.items / rate / 60 if figures.items else 0.0,
        capped_by="max_workers / source_options.total_segments",
        notes=notes,
    )


def estimate_patch(
    items: int,
    average_item_bytes: float,
    *,
    max_write_rate: float | None = None,
    transactional: bool = True,
    write_capacity: float | None = None,
    max_processes: int = 1,
    max_workers: int = PATCH_WORKERS,
    segments: tuple[int, int] | None = None,
) -> Estimate:
    """05_patch: one consistent read and one conditional write per item (transactions cost twice), at the
    speed of the run's shape (``max_processes`` x ``max_workers``), capped by ``max_write_rate`` (shared out
    across the processes) and by a provisioned table's ``write_capacity`` (units per second). ``segments=(i,
    n)``: ``items`` are this machine's segment; the n machines are assumed to run at once, sharing the table."""
    per_item = _units(average_item_bytes, 1024) * (2 if transactional else 1)
    rate, capped_by, notes = _patch_rate(
        per_item, max_write_rate, write_capacity, max_processes, max_workers, segments
    )
    notes.append(
        "transactional writes cost 2 write units per KB"
        if transactional
        else "single writes cost 1 write unit per KB"
    )
    return Estimate(
        "patch",
        items,
        round(items * average_item_bytes),
        read_units=items * _units(average_item_bytes, 4096),
        write_units=items * per_item,
        minutes=items / rate / 60 if items else 0.0,
        capped_by=capped_by,
        notes=notes,
    )


def _patch_rate(
    per_item: int,
    max_write_rate: float | None,
    write_capacity: float | None,
    processes: int,
    workers: int,
    segments: tuple[int, int] | None,
) -> tuple[float, str, list[str]]:
    """Writes per second of this run, the parameter that caps it, and the notes saying how it was reckoned."""
    per_process = PATCH_WRITES_PER_SECOND * min(workers, PATCH_WORKERS) / PATCH_WORKERS
    rate, capped_by = per_process * processes, "max_processes/max_workers"
    notes = [
        (
            f"{processes} process(es) x {per_process:g} writes/s with max_workers={workers} (our planning "
            f"figure: {PATCH_WRITES_PER_SECOND:g} writes/s per process with {PATCH_WORKERS} workers, "
            "proportionally less with fewer, no more with more; not an AWS figure)"
        )
    ]
    if max_write_rate and max_write_rate < rate:
        rate, capped_by = float(max_write_rate), "max_write_rate"
        notes.append(
            f"max_write_rate={max_write_rate:g} writes/s"
            + (f", shared out: {max_write_rate / processes:g} per process" if processes > 1 else "")
        )
    machines = segments[1] if segments else 1
    if write_capacity and write_capacity / machines / per_item < rate:
        rate, capped_by = write_capacity / machines / per_item, "provisioned write capacity"
        share = f" ({1 / machines:.0%} of it for this machine)" if machines > 1 else ""
        notes.append(
            f"limited by the table's {write_capacity:g} provisioned write units/s{share}: {rate:g} writes/s"
        )
    if segments:
        i, n = segments
        notes.append(
            f"segments=({i}, {n}): this machine patches segment {i} of {n} only; the {n} machines together "
            "take about the same minutes if run at once"
        )
    notes.append(f"capped by {capped_by}: {rate:g} writes/s")
    return rate, capped_by, notes
