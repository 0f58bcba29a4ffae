"""The engineer's decision on an ambiguous key: keep the item as found, or write the patch's target now.

After a crash, a key whose write was in flight and cannot be told apart from another writer's change is
journaled ``ambiguous`` (``resume``) with the item backed up before the write (``before``), the item found
(``found``) and the patch's ``target``. ``resolve_ambiguous`` settles one such key, in the journal (and shard)
that holds its ambiguous line:

* ``keep``: nothing is written; a ``resolved`` line records the decision, who made it, why, and the item seen;
* ``write``: the target is written now, on the condition the patch's own writes carry (``build_write``) that
  the item is still exactly the one found; the item is backed up (``backup.jsonl``, on disk) first, and the
  outcome is a ``patched`` line with ``resolved: true``, which verify checks and undo reverses like any other.

Either way the item is read again first and the decision is refused when it differs from ``found``: the
engineer decided about a version that is no longer there (docs/steps/05_patch-safety.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import explain
from ..context import Context
from ..errors import InputError
from ..incident import utc_now
from ..item_diff import key_text
from ..items import Item, from_json_safe, item_digest, to_json_safe
from ..journal import JsonlFile
from .checks import key_schema
from .reports import VerifyReport
from .requests import Change, WriteRequest, build_write, pdigest
from .shards import SHARDS_DIR, journal_paths, segment_lock
from .state import BACKUP_FILE, current_patch, final_lines, settled_lines
from .verify import verify

if TYPE_CHECKING:
    import pandas as pd

#: What the engineer can decide about an ambiguous key.
DECISIONS = ("keep", "write")
_CALLS = {"PutItem": "put_item", "DeleteItem": "delete_item", "UpdateItem": "update_item"}
_LOOK_AGAIN = (
    'look at it again (patch.ambiguous_keys(ctx), or the notebook\'s "Decide ambiguous keys" cell shows '
    "the item now) and decide again, or re-run 04_diff to review it as a new plan. Nothing was written."
)


def resolve_ambiguous(ctx: Context, key_id: str, decision: str, *, reason: str) -> dict[str, Any]:
    """Settle one ambiguous key of the current patch run: ``"keep"`` it as found, or ``"write"`` the target.

    Returns the journal line written. InputError, before anything is written, for an unknown decision, an
    empty reason, no patch run, a key that is not ambiguous in it, or an item that changed since it was found.
    """
    if decision not in DECISIONS:
        raise InputError(
            f"decision {decision!r} for key {key_id!r} is not one of {', '.join(DECISIONS)}: 'keep' accepts the "
            "item as found (nothing is written), 'write' writes the patch's target. Nothing was written."
        )
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(
            f'deciding key {key_id!r} needs a reason (reason="...", the notebook\'s resolve_reason): it goes '
            "to the journal and the incident timeline with your identity. Nothing was written."
        )
    run_id = current_patch(ctx)
    journal_path, line = _open_ambiguous(ctx.incident.path, run_id, key_id)
    schema = key_schema(ctx)
    key = from_json_safe(line["key"])
    now = _read(ctx, key)
    found = from_json_safe(line.get("found"))
    if item_digest(now) != item_digest(found):
        raise InputError(
            f"key {key_id!r} changed since the patch found it ambiguous (found {item_digest(found)[:12]}, "
            f"now {item_digest(now)[:12]}): your decision was about a version that is no longer there; "
            + _LOOK_AGAIN
        )
    common = {
        "patch_id": run_id,
        "plan_digest": line.get("plan_digest"),
        "key_id": key_id,
        "key": line["key"],
        "attributes": line.get("attributes"),
        "target_digest": line["target_digest"],
        "action": line.get("action"),
        "decision": decision,
        "decided_by": ctx.who,
        "reason": reason.strip(),
    }
    lock = segment_lock(journal_path.parent) if SHARDS_DIR in journal_path.parts else contextlib.nullcontext()
    with lock:
        if decision == "keep":
            out = {**common, "status": "resolved", "found": now, "found_digest": item_digest(now)}
        else:
            out = _write_target(ctx, journal_path.parent / BACKUP_FILE, common, line, now, schema)
        out["time"] = utc_now()
        with JsonlFile(journal_path) as journal:
            journal.append(out)
    ctx.record(
        "ambiguous resolved",
        patch_id=run_id,
        key_id=key_id,
        decision=decision,
        reason=reason.strip(),
        journal=str(journal_path.relative_to(ctx.incident.path)),
    )
    return to_json_safe(out)


def _open_ambiguous(run_dir: Path, run_id: str, key_id: str) -> tuple[Path, dict[str, Any]]:
    """The journal holding ``key_id``'s still undecided ambiguous line in run ``run_id``, and the line."""
    settled = None
    for path in journal_paths(run_dir):
        for line in settled_lines(path, run_id):
            if line["key_id"] != key_id:
                continue
            if line["status"] == "ambiguous":
                return path, line
            settled = line
    if settled is None:
        why = "has no final outcome in it (not attempted, skipped or failed: run the patch again)"
    elif settled.get("decision"):
        why = f"was decided already ({settled['decision']!r} by {settled.get('decided_by')})"
    else:
        why = f"is {settled['status']!r} there, not ambiguous"
    raise InputError(
        f"key {key_id!r} {why} in patch run {run_id}: only a key the current patch run journaled as ambiguous "
        "can be decided (patch.ambiguous_keys(ctx) lists them). Nothing was written."
    )


def _read(ctx: Context, key: Item) -> Item | None:
    try:
        answer = ctx.aws.dynamodb.get_item(TableName=ctx.table_name, Key=key, ConsistentRead=True)
    except ClientError as exc:
        raise explain(exc, "dynamodb:GetItem", ctx.table_name) from exc
    return answer.get("Item")


def _write_target(
    ctx: Context,
    backup_path: Path,
    common: dict[str, Any],
    line: dict[str, Any],
    now: Item | None,
    schema: Any,
) -> dict[str, Any]:
    """Back up ``now`` (on disk), write the target on the condition the item is still ``now``; the outcome."""
    attrs = tuple(line["attributes"]) if line.get("attributes") else None
    change = Change(
        key_id=common["key_id"],
        key=from_json_safe(line["key"]),
        expected_digest=pdigest(now, attrs),
        target=from_json_safe(line.get("target")),
        target_digest=line["target_digest"],
        attributes=attrs,
        action=str(line.get("action")),
        reviewed=from_json_safe(line.get("reviewed")),
    )
    request = build_write(change, now, schema)
    too_large = request.too_large()
    if too_large:
        raise InputError(f"key {common['key_id']!r} cannot be written: {too_large}. Nothing was written.")
    run_fields = {"patch_id": common["patch_id"], "plan_digest": common["plan_digest"]}
    with JsonlFile(backup_path, durable=True) as backup:
        backup.append(
            {
                **run_fields,
                "key_id": change.key_id,
                "key": change.key,
                "item": now,
                "source": "read",
                "via": request.op,
                "resolved": True,
                "time": utc_now(),
            }
        )
        capacity = _send(ctx, request, backup, run_fields, change.key_id)
    return {
        **common,
        "status": "patched",
        "resolved": True,
        "note": f"resolved by {ctx.who}: {common['reason']}",
        "before": now,
        "before_digest": item_digest(now),
        "after_digest": item_digest(request.after),
        "via": request.op,
        "capacity": capacity,
    }


def _send(
    ctx: Context, request: WriteRequest, backup: JsonlFile, run_fields: dict[str, Any], key_id: str
) -> float:
    """Send the conditional write; a refusal withdraws the backup's intent and is an InputError."""
    call = getattr(ctx.aws.dynamodb, _CALLS[request.op])
    try:
        answer = call(TableName=ctx.table_name, ReturnConsumedCapacity="TOTAL", **request.params)
    except ClientError as exc:  # DynamoDB answered: nothing was written
        backup.append({**run_fields, "key_id": key_id, "source": "not-written", "time": utc_now()})
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise InputError(
                f"key {key_id!r} changed between the read and the write (another writer is at it): "
                + _LOOK_AGAIN
            ) from exc
        raise explain(exc, f"dynamodb:{request.op}", ctx.table_name) from exc
    return float((answer.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)


def ambiguous_keys(ctx: Context) -> list[dict[str, Any]]:
    """The undecided ambiguous keys of the current patch run (every shard's), each with the item now and its
    ``label`` (``pk=tenant-1, sk=order#7``, as the diff shows keys)."""
    return [
        {**line, "now": to_json_safe(_read(ctx, from_json_safe(line["key"])))} for line in _undecided(ctx)
    ]


def _undecided(ctx: Context) -> list[dict[str, Any]]:
    """The current patch run's undecided ambiguous journal lines, each with its ``label`` (nothing read)."""
    run_id = current_patch(ctx)
    lines = [
        line for path in journal_paths(ctx.incident.path) for line in final_lines(path, run_id, "ambiguous")
    ]
    schema = key_schema(ctx) if lines else None
    return [{**line, "label": key_text(schema, from_json_safe(line["key"]))} for line in lines]


def _by_key_id(ctx: Context, decisions: Mapping[str, str]) -> dict[str, str]:
    """``decisions`` keyed by key id: a key may be named by its id or by its label (``pk=..., sk=...``, copied
    from the table), when that label is one undecided key's. A label two keys share (string keys holding
    ``", sk="``) is refused, naming their ids, and so is a key named twice; anything else is passed on as
    given (and refused there)."""
    labels: dict[str, list[str]] = {}
    for line in _undecided(ctx):  # labels only: the items are read once, for the listing
        labels.setdefault(line["label"], []).append(line["key_id"])
    ids = {key_id for same in labels.values() for key_id in same}
    out: dict[str, str] = {}
    for given, decision in decisions.items():
        name = str(given)  # a parameters file may give a number
        same = [] if name in ids else labels.get(name.strip(), [])
        if len(same) > 1:
            raise InputError(
                f"resolve_ambiguous: {name!r} names {len(same)} keys ({', '.join(same)}): use the key_id of the "
                "one you mean. Nothing was written."
            )
        key_id = same[0] if same else name
        if key_id in out:
            raise InputError(
                f"resolve_ambiguous names key {key_id} twice (by its key and its key_id): name it once. "
                "Nothing was written."
            )
        out[key_id] = decision
    return out


@dataclass
class AmbiguousDecisions:
    """What ``decide_ambiguous`` did: the decisions applied, the keys still undecided, the verification."""

    decided: list[dict[str, Any]] = field(default_factory=list)
    left: list[dict[str, Any]] = field(default_factory=list)
    verification: VerifyReport | None = None

    def summary(self) -> str:
        lines = [f"{len(self.decided)} ambiguous keys decided now; {len(self.left)} still to decide"]
        lines += [f"  {d['key_id']}: {d['decision']} ({d['reason']})" for d in self.decided]
        if self.left:
            lines.append(
                "  to decide: resolve_ambiguous = {key or key_id: 'keep' or 'write'} with resolve_reason = '...' "
                "(keep: the item now is accepted, nothing written; write: the target is written now)"
            )
        if self.decided and self.verification is not None:  # verified again after the decisions
            lines.append(self.verification.summary())
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per key still to decide: before the write, found after the crash, now, the target."""
        import pandas as pd

        from ..archive.values import item_text

        rows = [
            {
                "key": line.get("label"),
                "key_id": line["key_id"],
                "action": line.get("action"),
                "before": item_text(from_json_safe(line.get("before"))),
                "found": item_text(from_json_safe(line.get("found"))),
                "now": item_text(from_json_safe(line.get("now"))),
                "target": item_text(from_json_safe(line.get("target"))),
                "reason": line.get("reason"),
            }
            for line in self.left
        ]
        columns = ["key", "key_id", "action", "before", "found", "now", "target", "reason"]
        return pd.DataFrame(rows, columns=columns)

    def check(self) -> None:
        """Raise VerificationError when the verification (if any) found something wrong (returns nothing, so
        that the notebook cell ending with it shows no repr)."""
        if self.verification is not None:
            self.verification.check()


def decide_ambiguous(
    ctx: Context,
    decisions: Mapping[str, str] | None,
    *,
    reason: str = "",
    verification: VerifyReport | None = None,
    max_workers: int = 8,
) -> AmbiguousDecisions:
    """The notebook's cell: apply ``decisions`` (key_id -> "keep"/"write"), list the keys left, verify.

    With no decisions and no patch run, nothing happens. After decisions, the patch is verified again
    (else ``verification``, the one already made, is kept). The decisions' names and the reason are checked
    before the first is applied; each key's state when its turn comes (a refused key stops the cell).
    """
    decisions = dict(decisions or {})
    if not decisions:
        ctx.incident.reload()
        if not ctx.incident.get("patch_id"):
            return AmbiguousDecisions(verification=verification)
        return AmbiguousDecisions(left=ambiguous_keys(ctx), verification=verification)
    bad = {k: d for k, d in decisions.items() if d not in DECISIONS}
    if bad or not reason.strip():
        problem = f"{bad} are not 'keep' or 'write' decisions" if bad else "resolve_reason is empty"
        raise InputError(f"resolve_ambiguous: {problem}. Nothing was written.")
    by_id = _by_key_id(ctx, decisions)
    out = AmbiguousDecisions()
    for key_id, decision in by_id.items():
        out.decided.append(resolve_ambiguous(ctx, key_id, decision, reason=reason))
    out.left = ambiguous_keys(ctx)
    out.verification = verify(ctx, max_workers=max_workers)
    return out
