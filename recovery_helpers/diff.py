"""Step 04: which items did the incident touch, how do they differ from the restored table, and what to do.

``build_plan`` finds the impacted keys (one or several sources), fetches both versions of each (BatchGetItem,
consistent reads on the live table), classifies them, and writes the plan that ``05_patch`` applies.
``approve`` records a headless approval. Work is split into independent segments by a stable hash of the key,
run in a thread pool; only one chunk of items per worker is in memory at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .aws import error_code, explain
from .context import Context
from .errors import ApprovalError, InputError, NotReadyError
from .item_diff import MASK, diff_rows, key_text, show_value
from .items import KeySchema, item_digest, items_equal, iter_chunks
from .plan import (
    ACTION_OF,
    CLASSIFICATIONS,
    Approvals,
    PlanEntry,
    PlanWriter,
    iter_plan,
    load_approvals,
    load_plan_meta,
    plan_digest,
    save_approvals,
    segment_of,
)
from .progress import progress_bar
from .refusals import REFUSED_FILE, Refusal, refuse, write_problem
from .scan import BATCH_GET_MAX, batch_get
from .sources import (
    IMAGE_SOURCES,
    ImpactedSet,
    SourceRequest,
    check_inputs,
    find_impacted,
    normalize_source_names,
)
from .tenancy import ALL, Tenancy, normalize_tenants
from .times import parse_time

__all__ = [
    "MASK",
    "DiffResult",
    "approve",
    "batch_get",
    "build_plan",
    "classify",
    "diff_rows",
    "key_text",
    "load_diff",
    "parse_time",
    "segment_of",
    "show_value",
]

#: What the patch does for each classification, in words for the summary table.
MEANING = {
    "changed": "put the restored item back (the incident updated it)",
    "deleted": "put the restored item back (the incident deleted it)",
    "created": "delete the item (the incident created it)",
    "unchanged": "nothing (live equals restored, or both absent)",
}


@dataclass
class DiffResult:
    """What 04_diff found: the digest to approve, counts, and review tables (the first ``shown`` entries)."""

    digest: str
    counts: dict[str, int]
    total: int
    proposed: int
    class_table: pd.DataFrame  # per classification: items and what the patch will do
    sources: pd.DataFrame
    items: pd.DataFrame
    diffs: pd.DataFrame
    shown: int
    meta: dict[str, Any]
    mask_attributes: tuple[str, ...] = ()
    plan_path: Path | None = None

    @property
    def truncated(self) -> bool:
        """True when more proposed changes exist than the review tables show."""
        return self.proposed > self.shown

    def summary(self) -> str:
        """One line: the plan's digest, its counts and how many changes are proposed."""
        counts = ", ".join(f"{c} {n}" for c, n in self.counts.items())
        return f"plan {self.digest[:12]}: {self.total} impacted items ({counts}); {self.proposed} proposed changes"


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


# -- classification and diffs ------------------------------------------------------------------------------
def classify(restored: Mapping[str, Any] | None, live: Mapping[str, Any] | None) -> str:
    """changed / deleted / created / unchanged, from the incident's point of view."""
    if restored is None and live is None:
        return "unchanged"
    if live is None:
        return "deleted"
    if restored is None:
        return "created"
    return "unchanged" if items_equal(restored, live) else "changed"


# -- the plan ----------------------------------------------------------------------------------------------
def build_plan(
    ctx: Context,
    *,
    impacted_source: str | Sequence[str],
    keys_file: str | None = None,
    log_file: str | None = None,
    log_group: str | None = None,
    audit_table_name: str | None = None,
    updated_attribute: str | None = None,
    incident_start: str | dt.datetime | None,
    incident_end: str | dt.datetime | None = None,
    tenant_attribute: str | None = None,
    tenants: Sequence[str] | str = ("all",),
    mask_attributes: Iterable[str] = (),
    source_options: Mapping[str, Any] | None = None,
    segments: int = 4,
    max_workers: int = 4,
    review_limit: int = 200,
    progress: bool = True,
) -> DiffResult:
    """Find the impacted items, fetch both versions, classify them, write the plan (nothing in AWS changes).

    ``impacted_source`` is one source name or several (their findings are merged). The pre-incident version
    comes from the restored table (incident state ``restored_table_name``) unless the source carries it.
    ``source_options`` are source-specific settings (e.g. ``export_bucket`` for incremental_export).
    """
    plan = _plan(
        impacted_source,
        keys_file,
        log_file,
        incident_start,
        incident_end,
        tenant_attribute,
        tenants,
        mask_attributes,
        segments,
        max_workers,
    )
    live_schema, restored = _tables(ctx, plan.names)
    request = SourceRequest(
        aws=ctx.aws,
        table_name=ctx.table_name,
        key_schema=live_schema,
        restored_table_name=restored,
        window_start=plan.start,
        window_end=plan.end,
        tenancy=plan.tenancy,
        tenants=plan.tenants,
        keys_file=keys_file,
        log_file=log_file,
        log_group=log_group,
        audit_table_name=audit_table_name,
        updated_attribute=updated_attribute,
        scratch_dir=ctx.incident.path,
        options={"max_workers": max_workers, "record": ctx.record, **dict(source_options or {})},
    )
    check_inputs(request, plan.names)
    # every source runs to completion before anything is fetched
    impacted = find_impacted(request, plan.names, segments=plan.segments)
    try:
        if restored is None and impacted.needs_restored_table:
            ctx.incident.require("restored_table_name", "03_restore")
        meta = _plan_meta(ctx, plan, live_schema, restored, impacted, tenant_attribute, source_options)
        digest, filtered = _fetch_and_write(
            ctx, impacted, live_schema, restored, plan.tenancy, plan.tenants, max_workers, progress, meta=meta
        )
    finally:
        impacted.cleanup()
    ctx.incident.update(plan_digest=digest, tenant_attribute=tenant_attribute, tenants=plan.tenants)
    written = load_plan_meta(ctx.incident)
    ctx.record(
        "build plan",
        digest=digest,
        counts=written["counts"],
        sources=plan.names,
        impacted=impacted.total,
        filtered_by_tenant=filtered,
        window=written["window"],
        restored_table_name=restored,
    )
    return load_diff(ctx, mask_attributes=plan.mask, review_limit=review_limit)


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


def _fetch_and_write(
    ctx: Context,
    impacted: ImpactedSet,
    schema: KeySchema,
    restored_table: str | None,
    tenancy: Tenancy,
    tenants: list[str],
    max_workers: int,
    progress: bool,
    meta: dict[str, Any],
) -> tuple[str, int]:
    """Fetch both versions per segment in a thread pool, classify, write plan.jsonl / impacted.jsonl."""
    incident = ctx.incident
    writer = PlanWriter(incident)
    filtered = 0
    refused: list[Refusal] = []
    lock = threading.Lock()
    work = impacted.directory
    bar = progress_bar(
        total=impacted.total,
        desc="fetching items",
        unit="key",
        disable=not progress,
        done="fetched {n}/{total} items",
    )
    ddb = ctx.aws.dynamodb

    def run_segment(index: int) -> None:
        nonlocal filtered
        with open(work / f"impacted-{index:04d}.jsonl", "w", encoding="utf-8") as out:
            for chunk in iter_chunks(impacted.segment(index), BATCH_GET_MAX):
                live = batch_get(ddb, ctx.table_name, [k.key for k in chunk], schema, consistent_read=True)
                need = [k.key for k in chunk if not k.has_images]
                before = batch_get(ddb, restored_table, need, schema, consistent_read=False) if need else {}
                for k in chunk:
                    old = k.before if k.has_images else before.get(k.key_id)
                    new = live.get(k.key_id)
                    tenant = tenancy.tenant_of(old, new, k.key)
                    selected = _selected(tenancy, tenants, old, new, k.key)
                    out.write(json.dumps({**k.to_json(), "tenant": tenant, "in_plan": selected}) + "\n")
                    if not selected:
                        with lock:
                            filtered += 1
                        continue
                    classification = classify(old, new)
                    entry = PlanEntry(
                        key_id=k.key_id,
                        key=k.key,
                        classification=classification,
                        action=ACTION_OF[classification],
                        restored=old,
                        live=new,
                        restored_digest=item_digest(old),
                        live_digest=item_digest(new),
                        tenant=tenant,
                        sources=k.sources,
                        first_change=k.first_change.isoformat() if k.first_change else None,
                    )
                    problem = write_problem(entry, schema)
                    if problem:
                        with lock:
                            refused.append(Refusal(k.key_id, k.key, classification, problem))
                        continue
                    writer.add(entry)
                with lock:
                    bar.update(len(chunk))

    try:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="diff") as pool:
            for future in [pool.submit(run_segment, i) for i in range(impacted.segments)]:
                future.result()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    if refused:  # items the patch could not write safely: refused by name, before anything is written
        writer.abort()
        ctx.record("build plan", result="refused", refused=len(refused), refused_file=REFUSED_FILE)
    refuse(refused, schema, incident.path)
    with open(incident.path / "impacted.jsonl.tmp", "w", encoding="utf-8") as out:
        for i in range(impacted.segments):
            with open(work / f"impacted-{i:04d}.jsonl", encoding="utf-8") as part:
                shutil.copyfileobj(part, out)
    (incident.path / "impacted.jsonl.tmp").replace(incident.path / "impacted.jsonl")
    return writer.close({**meta, "filtered_by_tenant": filtered}), filtered


def _selected(tenancy: Tenancy, tenants: list[str], *versions: Mapping[str, Any] | None) -> bool:
    """Is the item selected by the tenants filter? Any version's tenant counts (a bug may have moved it)."""
    if ALL in tenants:
        return True
    found = {tenancy.tenant_of(v) for v in versions if v}
    return any(t in tenants for t in found if t is not None)


def load_diff(
    ctx: Context, *, mask_attributes: Iterable[str] | None = None, review_limit: int = 200
) -> DiffResult:
    """Review tables of the current plan (from the run folder): summary, sources, first items and diffs."""
    meta = load_plan_meta(ctx.incident)
    mask = _mask_set(meta.get("mask_attributes") if mask_attributes is None else mask_attributes)
    schema = KeySchema(**meta["key_schema"])
    counts = meta["counts"]
    class_table = pd.DataFrame(
        [{"classification": c, "items": counts.get(c, 0), "patch will": MEANING[c]} for c in CLASSIFICATIONS]
    )
    if meta.get("filtered_by_tenant"):
        class_table.loc[len(class_table)] = {
            "classification": "other tenants",
            "items": meta["filtered_by_tenant"],
            "patch will": "nothing (not in the selected tenants)",
        }
    sources = pd.DataFrame(
        [
            {
                "source": name,
                "found": r.get("found", 0),
                "only this source": r.get("only", 0),
                "lines/records read": r.get("read", 0),
                "malformed": r.get("malformed", 0),
                "skipped": r.get("skipped", 0),
                "other": ", ".join(f"{k}={v}" for k, v in r.items() if k not in _REPORT_KEYS) or "",
                "problems": "; ".join(r.get("problems", [])[:5]),
            }
            for name, r in meta.get("sources_report", {}).items()
        ]
    )
    items: list[dict[str, Any]] = []
    rows: list[dict[str, str]] = []
    proposed = sum(counts.get(c, 0) for c in CLASSIFICATIONS if ACTION_OF[c] != "none")
    for entry in iter_plan(ctx.incident):
        if len(items) >= review_limit:
            break
        if entry.action == "none":
            continue
        items.append(
            {
                "key": key_text(schema, entry.key, mask),
                "classification": entry.classification,
                "action": entry.action,
                "tenant": entry.tenant,
                "sources": ", ".join(entry.sources),
                "first change": entry.first_change,
                "key_id": entry.key_id,
            }
        )
        rows.extend(diff_rows(entry, schema, mask))
    return DiffResult(
        digest=meta["digest"],
        counts=counts,
        total=meta["total"],
        proposed=proposed,
        class_table=class_table,
        sources=sources,
        items=pd.DataFrame(items, columns=_ITEM_COLUMNS),
        diffs=pd.DataFrame(rows, columns=_DIFF_COLUMNS),
        shown=len(items),
        meta=meta,
        mask_attributes=mask,
        plan_path=ctx.incident.path / "plan.jsonl",
    )


_REPORT_KEYS = {"source", "found", "only", "read", "malformed", "skipped", "problems"}
_ITEM_COLUMNS = ["key", "classification", "action", "tenant", "sources", "first change", "key_id"]
_DIFF_COLUMNS = ["key", "classification", "path", "change", "old", "new"]


# -- approval ----------------------------------------------------------------------------------------------
def approve(
    ctx: Context, *, approve: bool = False, approval_token: str | None = None, approver: str | None = None
) -> Approvals:
    """Headless approval: ``approve=True`` approves every proposed change; ``approval_token`` equal to the
    plan digest approves exactly that plan. Without either, returns the approvals as they stand (nothing is
    approved by default).
    """
    incident = ctx.incident
    digest = plan_digest(incident)
    token = str(approval_token).strip() if approval_token not in (None, "") else None
    if not isinstance(approve, bool):
        raise InputError(f"approve must be True or False, got {approve!r}")
    if token is not None and token != digest:
        ctx.record(
            "approve plan",
            result="refused",
            reason="approval_token is for another plan",
            token=token,
            digest=digest,
        )
        raise ApprovalError(
            f"approval_token {token} is not the digest of the current plan, {digest}: the plan changed since "
            "it was reviewed. Re-run the review (04_diff), check the differences, and approve with the new "
            f'digest (approval_token="{digest}").'
        )
    if token is None and not approve:
        return load_approvals(incident)
    counts = load_plan_meta(incident)["counts"]
    if not any(counts.get(c, 0) for c in CLASSIFICATIONS if ACTION_OF[c] != "none"):
        raise ApprovalError(
            f"nothing to approve: plan {digest[:12]} proposes no change ({counts.get('unchanged', 0)} impacted "
            "items are unchanged), so there is nothing to patch. Skip 05_patch and go on with 06_lift; if you "
            "expected changes, check impacted_source, incident_start/incident_end and tenants, and re-run 04_diff."
        )
    method = "approval_token" if token is not None else "approve=True"
    who = approver or ctx.who
    previous = load_approvals(incident)
    approvals = Approvals(digest=digest, default=True, history=previous.history)
    approvals.note(who, method, "approved every proposed change of the plan")
    save_approvals(incident, approvals)
    ctx.record(
        "approve plan", digest=digest, method=method, approver=who, counts=load_plan_meta(incident)["counts"]
    )
    return approvals
