"""Step 04: which items did the incident touch, how do they differ from the restored table, and what to do.

``build_plan`` finds the impacted keys (one or several sources), fetches both versions of each (BatchGetItem,
consistent reads on the live table), classifies them, and writes the plan that ``05_patch`` applies.
``approve`` records a headless approval. Work is split into independent segments by a stable hash of the key,
run in a thread pool; only one chunk of items per worker is in memory at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .context import Context
from .diff_checks import (  # noqa: F401 - re-exported: diff's names before the split
    DiffPlan,
    _check_restored,
    _describe,
    _mask_set,
    _plan,
    _plan_meta,
    _tables,
)
from .diff_fetch import _fetch_and_write, _selected, classify  # noqa: F401 - re-exported
from .errors import ApprovalError, InputError
from .item_diff import MASK, diff_rows, key_text, show_value
from .items import KeySchema
from .plan import (
    ACTION_OF,
    CLASSIFICATIONS,
    Approvals,
    iter_plan,
    load_approvals,
    load_plan_meta,
    plan_digest,
    save_approvals,
    segment_of,
)
from .scan import batch_get
from .sources import (
    SourceRequest,
    check_inputs,
    find_impacted,
)
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
    request = _source_request(
        ctx,
        plan,
        live_schema,
        restored,
        keys_file=keys_file,
        log_file=log_file,
        log_group=log_group,
        audit_table_name=audit_table_name,
        updated_attribute=updated_attribute,
        max_workers=max_workers,
        source_options=source_options,
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
    _record_plan(ctx, plan, digest, filtered, impacted.total, tenant_attribute, restored)
    return load_diff(ctx, mask_attributes=plan.mask, review_limit=review_limit)


def _source_request(
    ctx: Context,
    plan: DiffPlan,
    live_schema: KeySchema,
    restored: str | None,
    *,
    keys_file: str | None,
    log_file: str | None,
    log_group: str | None,
    audit_table_name: str | None,
    updated_attribute: str | None,
    max_workers: int,
    source_options: Mapping[str, Any] | None,
) -> SourceRequest:
    """What every impacted-key source is asked: the tables, the window, the tenants and its own settings."""
    return SourceRequest(
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


def _record_plan(
    ctx: Context,
    plan: DiffPlan,
    digest: str,
    filtered: int,
    impacted: int,
    tenant_attribute: str | None,
    restored: str | None,
) -> None:
    """The written plan's digest in the incident state, and its counts in the timeline."""
    ctx.incident.update(plan_digest=digest, tenant_attribute=tenant_attribute, tenants=plan.tenants)
    written = load_plan_meta(ctx.incident)
    ctx.record(
        "build plan",
        digest=digest,
        counts=written["counts"],
        sources=plan.names,
        impacted=impacted,
        filtered_by_tenant=filtered,
        window=written["window"],
        restored_table_name=restored,
    )


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
