"""Reading the reviewed plan for step 5: its approvals, its entries as Changes, checked against their digests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .. import plan as planlib
from ..context import Context
from ..errors import ApprovalError, InputError
from ..items import item_digest
from .requests import Change, pdigest, project


def in_segment(key_id: str, segments: tuple[int, int] | None) -> bool:
    """True when key_id belongs to segment (index, total), or there are no segments."""
    return segments is None or planlib.segment_of(key_id, segments[1]) == segments[0]


def check_plan(ctx: Context) -> tuple[str, dict[str, Any], planlib.Approvals]:
    """The plan, its approvals and their agreement; ApprovalError/InputError before anything is written."""
    incident = ctx.incident
    meta = planlib.load_plan_meta(incident)  # InputError "run 04_diff first" when missing
    if not (incident.path / planlib.PLAN_FILE).exists():
        raise InputError(f"incident {incident.incident_id!r} has no plan.jsonl: run 04_diff first.")
    digest = meta["digest"]
    if meta.get("table_name") not in (None, ctx.table_name):
        raise InputError(
            f"the plan is for table {meta['table_name']!r}, not {ctx.table_name!r}: check table_name."
        )
    path = incident.path / planlib.APPROVALS_FILE
    if path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8")).get("digest")
        if recorded != digest:
            raise ApprovalError(
                f"the approvals are for plan {str(recorded)[:12]}, but the current plan is {digest[:12]}: "
                "the plan "
                "changed after it was approved. Review it again in 04_diff and re-approve."
            )
    approvals = planlib.load_approvals(incident)
    return digest, meta, approvals


def plan_changes(
    ctx: Context,
    approvals: planlib.Approvals,
    attributes: tuple[str, ...] | None,
    segments: tuple[int, int] | None,
    counts: Counter[str] | None = None,
    checked: tuple[int, int, int] | None = None,
) -> Iterator[tuple[planlib.PlanEntry, Change | None]]:
    """Stream (entry, change) for the plan entries of this segment; change is None when nothing is to do.

    Each approved entry's items are checked against its digests (an edited plan is refused), unless
    ``checked`` is the plan file's stamp (see plan_stamp) when an earlier pass checked them all: then the
    file must still be that one, and the digests recorded in it are used as they are.
    """
    if checked is not None and plan_stamp(ctx) != checked:
        raise InputError(
            "plan.jsonl changed while the patch was starting: nothing was written. Re-run 04_diff and "
            "approve again if the plan was rebuilt, else run the patch again."
        )
    for entry in iter_entries(ctx, as_bytes=checked is not None):
        if not in_segment(entry.key_id, segments):
            continue
        if entry.action == "none":
            if counts is not None:
                counts["no_change"] += 1
            yield entry, None
            continue
        if not approvals.is_approved(entry):
            if counts is not None:
                counts["not_approved"] += 1
            yield entry, None
            continue
        if checked is not None:
            live_digest, restored_digest = entry.live_digest, entry.restored_digest
        else:
            live_digest, restored_digest = item_digest(entry.live), item_digest(entry.restored)
        if live_digest != entry.live_digest or restored_digest != entry.restored_digest:
            raise InputError(
                f"plan.jsonl entry {entry.key_id} does not match its own digests: the file was edited "
                "after the "
                "review. Re-run 04_diff and approve again."
            )
        if counts is not None:
            counts["approved"] += 1
        yield entry, change_of(entry, attributes, live_digest, restored_digest)


def change_of(
    entry: planlib.PlanEntry, attributes: tuple[str, ...] | None, live_digest: str, restored_digest: str
) -> Change:
    """The conditional change that takes an approved entry's live item to its target."""
    target = entry.restored if entry.action == "put" else None
    by_attribute = attributes is not None and entry.live is not None and target is not None
    attrs = attributes if by_attribute else None
    return Change(
        key_id=entry.key_id,
        key=entry.key,
        target=target,
        attributes=attrs,
        expected_digest=live_digest if attrs is None else pdigest(entry.live, attrs),
        target_digest=(restored_digest if target is not None else item_digest(None))
        if attrs is None
        else pdigest(target, attrs),
        action="revert-attributes" if by_attribute else entry.action,
        reviewed=project(entry.live, attrs),
        classification=entry.classification,
    )


def iter_entries(ctx: Context, *, as_bytes: bool) -> Iterator[planlib.PlanEntry]:
    """The plan's entries, as plan.iter_plan gives them, at a third of the cost.

    Binary values are base64 text in plan.jsonl; plan.iter_plan turns them into bytes by walking every item.
    Counting and checking digests need no bytes (an item's digest is the same in both forms), so with
    ``as_bytes=False`` nothing is converted; with ``as_bytes=True`` only lines that hold a binary value are.
    """
    path = ctx.incident.path / planlib.PLAN_FILE
    if not path.exists():
        yield from planlib.iter_plan(ctx.incident)  # its InputError: run 04_diff first
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            if as_bytes and ('"B"' in line or '"BS"' in line):
                yield planlib.PlanEntry.from_json(obj)
                continue
            try:
                entry = planlib.PlanEntry(**obj)
            except TypeError:  # a field this version does not know: the plan module's own reader
                entry = planlib.PlanEntry.from_json(obj)
            yield entry


def plan_stamp(ctx: Context) -> tuple[int, int, int]:
    """Size, modification time and inode of plan.jsonl: a pass that checked it can vouch for the next one."""
    st = (ctx.incident.path / planlib.PLAN_FILE).stat()
    return st.st_size, st.st_mtime_ns, st.st_ino
