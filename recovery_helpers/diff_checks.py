"""Step 04's checks before anything is fetched: the parameters, the live and restored tables, plan.json's header.

Split out of :mod:`recovery_helpers.diff`, which calls them from ``build_plan``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .aws import error_code, explain
from .context import Context
from .errors import InputError, NotReadyError
from .items import KeySchema
from .sources import IMAGE_SOURCES, ImpactedSet, normalize_source_names
from .tenancy import ALL, Tenancy, normalize_tenants
from .times import parse_time


# -- parameters --------------------------------------------------------------------------------------------
def _mask_set(mask_attributes: Iterable[str] | str | None) -> tuple[str, ...]:
    if mask_attributes is None:
        return ()
    if isinstance(mask_attributes, str):
        mask_attributes = [m.strip() for m in mask_attributes.split(",")]
    out = tuple(dict.fromkeys(m for m in mask_attributes if m))
    if any(not isinstance(m, str) for m in out):
        raise InputError(f"mask_attributes must be attribute names, got {out!r}")
    return out


# -- AWS reads ---------------------------------------------------------------------------------------------
def _describe(ctx: Context, table_name: str, what: str) -> dict[str, Any]:
    try:
        return ctx.aws.dynamodb.describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            hint = (
                "run 03_restore (or point its restored_table_name at an existing table)"
                if what == "restored"
                else "check table_name and region"
            )
            raise InputError(f"the {what} table {table_name!r} does not exist: {hint}.", cause=exc) from exc
        raise explain(exc, "dynamodb:DescribeTable", table_name) from exc


def _check_restored(ctx: Context, restored: str, live_schema: KeySchema) -> None:
    """The restored table must exist, be readable (ACTIVE) and have the live table's key schema."""
    if restored == ctx.table_name:
        raise InputError(f"restored_table_name is the live table {restored!r}: run 03_restore to get a copy.")
    desc = _describe(ctx, restored, "restored")
    status = desc.get("TableStatus")
    if status == "CREATING":
        raise NotReadyError(
            f"the restored table {restored!r} is still CREATING (a restore takes minutes to hours): wait and "
            "run this step again, or re-run 03_restore, which waits until the table is ACTIVE."
        )
    if status not in ("ACTIVE", "UPDATING"):
        raise NotReadyError(f"the restored table {restored!r} is {status}, not ACTIVE: re-run 03_restore.")
    schema = KeySchema.from_description(desc)
    if schema != live_schema:
        raise InputError(
            f"the restored table {restored!r} has the key {schema.describe()}, but the live table "
            f"{ctx.table_name!r} has {live_schema.describe()}: restore from the live table's own backup."
        )


# -- the plan's parameters ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffPlan:
    """build_plan's checked parameters (before any AWS call)."""

    start: dt.datetime
    end: dt.datetime
    names: list[str]
    tenancy: Tenancy
    tenants: list[str]
    mask: tuple[str, ...]
    segments: int


def _plan(
    impacted_source: str | Sequence[str],
    keys_file: str | None,
    log_file: str | None,
    incident_start: Any,
    incident_end: Any,
    tenant_attribute: str | None,
    tenants: Sequence[str] | str,
    mask_attributes: Iterable[str],
    segments: Any,
    max_workers: Any,
) -> DiffPlan:
    """Check the parameters before any AWS call; InputError says what to change."""
    start = parse_time(incident_start, "incident_start")
    end = (
        parse_time(incident_end, "incident_end")
        if incident_end not in (None, "")
        else dt.datetime.now(dt.UTC)
    )
    if end <= start:
        raise InputError(
            f"incident_end {end.isoformat()} is not after incident_start {start.isoformat()}: incident_end is "
            "when the fix was deployed (exclusive). Give a later time, or None for now."
        )
    names = normalize_source_names(impacted_source)
    tenancy = Tenancy.parse(tenant_attribute)
    tenant_list = normalize_tenants(list(tenants) if not isinstance(tenants, str) else tenants)
    if ALL not in tenant_list and not tenancy.configured:
        raise InputError(
            f"tenants={tenant_list!r} needs tenant_attribute (e.g. 'tenantId' or 'pk:^([^#]+)#') to tell "
            "which tenant an item belongs to; or use tenants=['all']."
        )
    mask = _mask_set(mask_attributes)
    if not isinstance(segments, int) or segments < 1 or not isinstance(max_workers, int) or max_workers < 1:
        raise InputError(
            f"segments and max_workers must be positive integers, got {segments}, {max_workers}."
        )
    for param, value in (("keys_file", keys_file), ("log_file", log_file)):
        if param in names and value and not Path(value).is_file():
            raise InputError(
                f"{param} {value!r} does not exist (or is not a file): check the path "
                f"(looked for {Path(value).resolve()}; a relative path is read from the kernel's "
                "working directory, a parameters file's relative paths from that file's folder)."
            )
    return DiffPlan(start, end, names, tenancy, tenant_list, mask, segments)


def _tables(ctx: Context, names: list[str]) -> tuple[KeySchema, str | None]:
    """The live table's key schema and the restored table (None when the sources carry both versions)."""
    live_schema = KeySchema.from_description(_describe(ctx, ctx.table_name, "live"))
    restored = ctx.incident.get("restored_table_name")
    if restored is None and not set(names) <= IMAGE_SOURCES:
        restored = ctx.incident.require("restored_table_name", "03_restore")
    if restored is not None:
        _check_restored(ctx, restored, live_schema)
    return live_schema, restored


def _plan_meta(
    ctx: Context,
    plan: DiffPlan,
    live_schema: KeySchema,
    restored: str | None,
    impacted: ImpactedSet,
    tenant_attribute: str | None,
    source_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """plan.json's metadata (the writer adds the digest and the counts)."""
    return {
        "incident_id": ctx.incident.incident_id,
        "table_name": ctx.table_name,
        "restored_table_name": restored,
        "key_schema": asdict(live_schema),
        "window": {"start": plan.start.isoformat(), "end": plan.end.isoformat()},
        "sources": plan.names,
        "sources_report": impacted.report(),
        "tenant_attribute": tenant_attribute,
        "tenants": plan.tenants,
        "mask_attributes": list(plan.mask),
        "impacted": impacted.total,
        "segments": plan.segments,
        "built_by": ctx.who,
        "source_options": dict(source_options or {}),
    }
