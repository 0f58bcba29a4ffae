"""Items the patch could not write safely, found in 04_diff before anything is written, and refused by name.

Every write of 05_patch carries a ConditionExpression that compares every non-key attribute of the reviewed
live item (``patch.requests.equals_condition``): that is what makes a write land only on the item the engineer
reviewed. DynamoDB refuses an expression longer than 4 KB or with more than 300 operators and functions, so
an item with about 150 attributes or more cannot be conditioned whole. Such an item is not skipped at patch
time: the plan is refused here, naming each item and the limit, and the items go to ``refused.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .items import KeySchema, to_json_safe
from .patch.requests import Change, build_write
from .plan import PlanEntry

REFUSED_FILE = "refused.jsonl"
#: Refused items named in the error message (all of them are in refused.jsonl).
NAMED = 10


@dataclass(frozen=True)
class Refusal:
    """One plan entry the patch cannot write, and why."""

    key_id: str
    key: dict
    classification: str
    reason: str


def write_problem(entry: PlanEntry, schema: KeySchema) -> str | None:
    """Why DynamoDB would refuse the whole-item write 05_patch builds for this entry (None: it is fine)."""
    if entry.action == "none":
        return None
    change = Change(
        key_id=entry.key_id,
        key=entry.key,
        expected_digest=entry.live_digest,
        target=entry.restored,
        target_digest=entry.restored_digest,
        attributes=None,
        action=entry.action,
        reviewed=entry.live,
        classification=entry.classification,
    )
    return build_write(change, entry.live, schema).too_large()


def refuse(entries: Iterable[Refusal], schema: KeySchema, run_dir: Path) -> None:
    """Write ``refused.jsonl`` and raise the InputError that names the items; with none, remove a stale file."""
    refused = sorted(entries, key=lambda r: r.key_id)
    if not refused:
        (run_dir / REFUSED_FILE).unlink(missing_ok=True)
        return
    with open(run_dir / REFUSED_FILE, "w", encoding="utf-8") as out:
        out.writelines(
            json.dumps(
                {
                    "key_id": r.key_id,
                    "key": to_json_safe(r.key),
                    "classification": r.classification,
                    "reason": r.reason,
                }
            )
            + "\n"
            for r in refused
        )
    named = "; ".join(f"{_key(schema, r.key)} ({r.classification}): {r.reason}" for r in refused[:NAMED])
    more = f" and {len(refused) - NAMED} more" if len(refused) > NAMED else ""
    raise InputError(
        f"04_diff refuses the plan: {len(refused)} item(s) cannot be patched safely, {named}{more}. "
        f"Nothing was written and no new plan was saved; every refused key is in {run_dir / REFUSED_FILE}. "
        "Restore these items by hand from the restored table, then run 04_diff again with a source that does "
        "not list them (e.g. impacted_source='keys_file' with the other keys)."
    )


def _key(schema: KeySchema, key: dict) -> str:
    plain = schema.key_to_plain(key)
    return ", ".join(f"{n}={plain[n]}" for n in schema.names)
