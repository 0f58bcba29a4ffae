"""Helpers for the impacted-source tests: build a SourceRequest and collect what a source finds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from recovery_helpers.aws import Aws
from recovery_helpers.items import KeySchema
from recovery_helpers.sources import ImpactedKey, SourceRequest, SourceStats
from recovery_helpers.tenancy import Tenancy


def request(
    aws: Aws,
    table: str,
    start: dt.datetime,
    end: dt.datetime,
    tmp_path: Path,
    *,
    tenancy: str | None = None,
    tenants: list[str] | None = None,
    options: dict[str, Any] | None = None,
    **fields: Any,
) -> SourceRequest:
    """A SourceRequest for ``table`` over ``[start, end)`` with source ``options``."""
    return SourceRequest(
        aws=aws,
        table_name=table,
        key_schema=KeySchema.of_table(aws.dynamodb, table),
        restored_table_name=fields.pop("restored_table_name", None),
        window_start=start,
        window_end=end,
        tenancy=Tenancy.parse(tenancy),
        tenants=tenants or ["all"],
        scratch_dir=tmp_path,
        stats=SourceStats(source="test"),
        options=options or {},
        **fields,
    )


def plain(schema: KeySchema, finding: ImpactedKey) -> tuple:
    """A finding's key as a tuple of plain values, for readable assertions."""
    values = schema.key_to_plain(finding.key)
    return tuple(values[n] for n in schema.names)


def by_key(schema: KeySchema, findings: list[ImpactedKey]) -> dict[tuple, ImpactedKey]:
    """Findings by plain key; the earliest change wins, as find_impacted merges them."""
    out: dict[tuple, ImpactedKey] = {}
    for f in findings:
        k = plain(schema, f)
        if k not in out or (f.first_change and out[k].first_change and f.first_change < out[k].first_change):
            out[k] = f
    return out
