"""Step 04's fetch: both versions of every impacted item, segment by segment in a thread pool, into the plan.

Split out of :mod:`recovery_helpers.diff` (which re-exports ``classify``). Only one chunk of items per worker
is in memory at a time; an item the patch could not write safely is refused by name before the plan exists.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .context import Context
from .items import KeySchema, item_digest, items_equal, iter_chunks
from .plan import ACTION_OF, PlanEntry, PlanWriter
from .progress import progress_bar
from .refusals import REFUSED_FILE, Refusal, refuse, write_problem
from .scan import BATCH_GET_MAX, batch_get
from .sources import ImpactedSet
from .tenancy import ALL, Tenancy


def classify(restored: Mapping[str, Any] | None, live: Mapping[str, Any] | None) -> str:
    """changed / deleted / created / unchanged, from the incident's point of view."""
    if restored is None and live is None:
        return "unchanged"
    if live is None:
        return "deleted"
    if restored is None:
        return "created"
    return "unchanged" if items_equal(restored, live) else "changed"


def _selected(tenancy: Tenancy, tenants: list[str], *versions: Mapping[str, Any] | None) -> bool:
    """Is the item selected by the tenants filter? Any version's tenant counts (a bug may have moved it)."""
    if ALL in tenants:
        return True
    found = {tenancy.tenant_of(v) for v in versions if v}
    return any(t in tenants for t in found if t is not None)


@dataclass
class _SegmentFetch:
    """What every segment's worker shares: the tables, the tenant filter, the plan writer and the tallies."""

    ddb: Any
    table_name: str
    restored_table: str | None
    schema: KeySchema
    tenancy: Tenancy
    tenants: list[str]
    writer: PlanWriter
    bar: Any
    filtered: int = 0
    refused: list[Refusal] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run_segment(self, impacted: ImpactedSet, index: int) -> None:
        """Fetch one segment's items in BatchGetItem chunks; note each key's tenant in impacted-NNNN.jsonl."""
        with open(impacted.directory / f"impacted-{index:04d}.jsonl", "w", encoding="utf-8") as out:
            for chunk in iter_chunks(impacted.segment(index), BATCH_GET_MAX):
                live = batch_get(
                    self.ddb, self.table_name, [k.key for k in chunk], self.schema, consistent_read=True
                )
                need = [k.key for k in chunk if not k.has_images]
                before = (
                    batch_get(self.ddb, self.restored_table, need, self.schema, consistent_read=False)
                    if need
                    else {}
                )
                for k in chunk:
                    old = k.before if k.has_images else before.get(k.key_id)
                    new = live.get(k.key_id)
                    tenant = self.tenancy.tenant_of(old, new, k.key)
                    selected = _selected(self.tenancy, self.tenants, old, new, k.key)
                    out.write(json.dumps({**k.to_json(), "tenant": tenant, "in_plan": selected}) + "\n")
                    if not selected:
                        with self.lock:
                            self.filtered += 1
                        continue
                    self._add(k, old, new, tenant)
                with self.lock:
                    self.bar.update(len(chunk))

    def _add(self, k: Any, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, tenant: Any) -> None:
        """Classify one selected item and add it to the plan, or refuse it when the patch could not write it."""
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
        problem = write_problem(entry, self.schema)
        if problem:
            with self.lock:
                self.refused.append(Refusal(k.key_id, k.key, classification, problem))
            return
        self.writer.add(entry)


def _merge_impacted_parts(impacted: ImpactedSet, run_dir: Path) -> None:
    """The segments' impacted-NNNN.jsonl as one impacted.jsonl in the run folder (replaced atomically)."""
    with open(run_dir / "impacted.jsonl.tmp", "w", encoding="utf-8") as out:
        for i in range(impacted.segments):
            with open(impacted.directory / f"impacted-{i:04d}.jsonl", encoding="utf-8") as part:
                shutil.copyfileobj(part, out)
    (run_dir / "impacted.jsonl.tmp").replace(run_dir / "impacted.jsonl")


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
    bar = progress_bar(
        total=impacted.total,
        desc="fetching items",
        unit="key",
        disable=not progress,
        done="fetched {n}/{total} items",
    )
    fetch = _SegmentFetch(
        ctx.aws.dynamodb, ctx.table_name, restored_table, schema, tenancy, tenants, writer, bar
    )
    try:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="diff") as pool:
            for future in [pool.submit(fetch.run_segment, impacted, i) for i in range(impacted.segments)]:
                future.result()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    if fetch.refused:  # items the patch could not write safely: refused by name, before anything is written
        writer.abort()
        ctx.record("build plan", result="refused", refused=len(fetch.refused), refused_file=REFUSED_FILE)
    refuse(fetch.refused, schema, incident.path)
    _merge_impacted_parts(impacted, incident.path)
    return writer.close({**meta, "filtered_by_tenant": fetch.filtered}), fetch.filtered
