"""Helpers for the 04_diff tests: a live table and a "restored" twin filled with real items in the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recovery_helpers.aws import Aws
from recovery_helpers.context import Context, open_context
from recovery_helpers.items import from_python, iter_chunks
from tests.conftest import create_table

START = "2024-05-01T10:00:00+00:00"
END = "2024-05-01T12:00:00+00:00"


def put_items(aws: Aws, table: str, items: Iterable[dict[str, Any]]) -> None:
    """Write plain-Python items (Decimal numbers, sets, bytes) with BatchWriteItem."""
    for chunk in iter_chunks(items, 25):
        aws.dynamodb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": from_python(i)}} for i in chunk]}
        )


def twin_tables(
    aws: Aws,
    name: str,
    *,
    restored: list[dict[str, Any]],
    live: list[dict[str, Any]],
    hash_key: tuple[str, str] = ("pk", "S"),
    range_key: tuple[str, str] | None = ("sk", "S"),
) -> tuple[str, str]:
    """The live table and a pre-incident copy (what 03_restore would have produced), both really in AWS."""
    live_name = create_table(aws.dynamodb, name, hash_key=hash_key, range_key=range_key, pitr=False)
    restored_name = create_table(
        aws.dynamodb, name + "-restored", hash_key=hash_key, range_key=range_key, pitr=False
    )
    put_items(aws, restored_name, restored)
    put_items(aws, live_name, live)
    return live_name, restored_name


def context(
    aws: Aws, tmp_path: Path, table: str, restored: str | None = None, incident_id: str = "inc"
) -> Context:
    ctx = open_context(
        incident_id,
        table,
        region=aws.region,
        endpoint_url=aws.endpoint_url,
        runs_dir=str(tmp_path / "runs"),
        aws=aws,
    )
    if restored:
        ctx.incident.set("restored_table_name", restored)
    return ctx


def write_lines(path: Path, lines: Iterable[Any]) -> str:
    """A JSON-lines file; str lines are written as they are (to make malformed lines)."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def plan_lines(ctx: Context) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ctx.incident.path / "plan.jsonl").read_text().splitlines()]
