"""What the run folder says about step 5: file names, final statuses, and the state of a journal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..context import Context
from ..errors import InputError
from ..journal import iter_jsonl

BACKUP_FILE = "backup.jsonl"
JOURNAL_FILE = "journal.jsonl"
UNDO_FILE = "undo.jsonl"
#: The items undo replaces, each on disk before undo's write is sent (as backup.jsonl is for the patch).
UNDO_BACKUP_FILE = "undo-backup.jsonl"
#: Journal statuses after which a key is never touched again by the same patch. ("skipped", for an entry that
#: was not approved, is not final: approving it later and running again patches it.) "ambiguous": the run
#: cannot tell whether it wrote the key; it is left for the engineer (docs/steps/05_patch-safety.md), whose
#: decision is a later line of the same key: "resolved" (kept as found) or "patched" with ``resolved: true``.
FINAL = frozenset({"patched", "undone", "unchanged", "conflict", "ambiguous", "resolved"})


def is_resolution(line: dict[str, Any]) -> bool:
    """Whether a journal line is the engineer's decision on an ambiguous key (``patch.resolve_ambiguous``)."""
    return line.get("status") == "resolved" or (
        line.get("status") == "patched" and bool(line.get("resolved"))
    )


def journal_state(path: Path, run_id: str) -> tuple[set[str], Counter[str], set[str]]:
    """Key_ids with a final outcome in this run's journal, the count of each outcome, the skipped key_ids."""
    final: set[str] = set()
    skipped: set[str] = set()
    counts: Counter[str] = Counter()
    for line in iter_jsonl(path):
        if line.get("patch_id") != run_id:
            continue
        if line.get("status") in FINAL and line["key_id"] not in final:
            final.add(line["key_id"])
            counts[line["status"]] += 1
        elif line.get("status") == "skipped":
            skipped.add(line["key_id"])
    return final, counts, skipped


def _lines(source: Path | Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    return iter_jsonl(source) if isinstance(source, Path) else source


def settled_lines(source: Path | Iterable[dict[str, Any]], run_id: str) -> Iterator[dict[str, Any]]:
    """The line that settles each key of run ``run_id``: its first final line, except that an "ambiguous"
    line is replaced by the engineer's later decision on the key (``is_resolution``), when there is one.

    Ambiguous keys (few) are held until the end of ``source``, so they come last when still undecided."""
    seen: set[str] = set()
    open_ambiguous: dict[str, dict[str, Any]] = {}
    for line in _lines(source):
        if line.get("patch_id") != run_id or line.get("status") not in FINAL:
            continue
        key_id = line["key_id"]
        if key_id in open_ambiguous and is_resolution(line):
            del open_ambiguous[key_id]
            yield line
        elif key_id not in seen:
            seen.add(key_id)
            if line["status"] == "ambiguous":
                open_ambiguous[key_id] = line
            else:
                yield line
    yield from open_ambiguous.values()


def final_lines(
    source: Path | Iterable[dict[str, Any]], run_id: str, status: str
) -> Iterator[dict[str, Any]]:
    """The line that settles each key of run ``run_id`` (``settled_lines``) when its status is ``status``.

    ``source``: a journal file, or journal lines (every shard's: ``shards.iter_journals``)."""
    return (line for line in settled_lines(source, run_id) if line["status"] == status)


def patched_lines(source: Path | Iterable[dict[str, Any]], run_id: str) -> Iterator[dict[str, Any]]:
    """The first "patched" journal line of each key of patch ``run_id`` (what undo puts back)."""
    seen: set[str] = set()
    for line in _lines(source):
        if line.get("patch_id") == run_id and line.get("status") == "patched" and line["key_id"] not in seen:
            seen.add(line["key_id"])
            yield line


def current_patch(ctx: Context) -> str:
    """The id of the incident's latest patch run; InputError when there is none yet."""
    ctx.incident.reload()
    run_id = ctx.incident.get("patch_id")
    if not run_id:
        raise InputError(
            f"incident {ctx.incident.incident_id!r} has no patch yet: run 05_patch with dry_run=False first."
        )
    return run_id
