"""Reading the reviewed plan for step 5: its approvals, its entries as Changes, checked against their digests."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

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
    file must still be that one, and the digests recorded in it are used as they are. A plan file whose bytes
    are still those 04_diff wrote (the sha256 in plan.json) holds the items its digests were computed from:
    its entries need no digest of their own. Without ``checked``, the entries must also add up to the plan
    digest the approvals are for (checked when the last one has been read: before anything is written).
    """
    if checked is not None and plan_stamp(ctx) != checked:
        raise InputError(
            "plan.jsonl changed while the patch was starting: nothing was written. Re-run 04_diff and "
            "approve again if the plan was rebuilt, else run the patch again."
        )
    as_written = checked is None and written_by_diff(ctx)
    digest = hashlib.sha256() if checked is None else None  # the plan digest, again, from the lines read
    for entry, size in sized_entries(ctx, as_bytes=checked is not None):
        if digest is not None:
            digest.update(entry.digest_line().encode())
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
        if checked is not None or as_written:
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
        yield entry, change_of(entry, attributes, live_digest, restored_digest, size)
    if digest is not None and digest.hexdigest() != planlib.load_plan_meta(ctx.incident)["digest"]:
        raise InputError(
            "plan.jsonl does not add up to the plan digest its approvals are for: its entries (keys, actions "
            "or digests) were edited after the review. Nothing was written. Re-run 04_diff and approve again."
        )


def written_by_diff(ctx: Context) -> bool:
    """True when plan.jsonl is byte for byte the file 04_diff wrote (plan.json keeps its sha256)."""
    recorded = planlib.load_plan_meta(ctx.incident).get("file_sha256")
    return bool(recorded) and planlib.file_sha256(ctx.incident.path / planlib.PLAN_FILE) == recorded


def change_of(
    entry: planlib.PlanEntry,
    attributes: tuple[str, ...] | None,
    live_digest: str,
    restored_digest: str,
    size_bound: int | None = None,
) -> Change:
    """The conditional change that takes an approved entry's live item to its target (``size_bound``: the
    length of the entry's plan line, which no item in it can exceed in DynamoDB's own count)."""
    target = entry.restored if entry.action == "put" else None
    by_attribute = attributes is not None and entry.live is not None and target is not None
    attrs = attributes if by_attribute else None
    reviewed = project(entry.live, attrs)
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
        reviewed=reviewed,
        classification=entry.classification,
        expected=reviewed,  # checked against live_digest (pass 1): a read equal to it needs no digest
        size_bound=size_bound,
    )


def iter_entries(ctx: Context, *, as_bytes: bool) -> Iterator[planlib.PlanEntry]:
    """The plan's entries, as plan.iter_plan gives them, at a third of the cost (see sized_entries)."""
    for entry, _size in sized_entries(ctx, as_bytes=as_bytes):
        yield entry


def sized_entries(ctx: Context, *, as_bytes: bool) -> Iterator[tuple[planlib.PlanEntry, int | None]]:
    """The plan's entries, each with the length in bytes of its line (None when read by plan.iter_plan).

    Binary values are base64 text in plan.jsonl; plan.iter_plan turns them into bytes by walking every item.
    Counting and checking digests need no bytes (an item's digest is the same in both forms), so with
    ``as_bytes=False`` nothing is converted; with ``as_bytes=True`` only lines that hold a binary value are.
    Lines are read with orjson (the json module for what it refuses).
    """
    path = ctx.incident.path / planlib.PLAN_FILE
    if not path.exists():
        for entry in planlib.iter_plan(ctx.incident):  # its InputError: run 04_diff first
            yield entry, None
        return
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:  # an integer beyond 64 bits...: the json module reads anything
                obj = json.loads(line)
            if as_bytes and (b'"B"' in line or b'"BS"' in line):
                yield planlib.PlanEntry.from_json(obj), len(line)
                continue
            try:
                entry = planlib.PlanEntry(**obj)
            except TypeError:  # a field this version does not know: the plan module's own reader
                entry = planlib.PlanEntry.from_json(obj)
            yield entry, len(line)


def plan_stamp(ctx: Context) -> tuple[int, int, int]:
    """Size, modification time and inode of plan.jsonl: a pass that checked it can vouch for the next one."""
    st = (ctx.incident.path / planlib.PLAN_FILE).stat()
    return st.st_size, st.st_mtime_ns, st.st_ino
