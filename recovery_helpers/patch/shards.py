"""Where a patch split by key-space segment keeps its files: one shard folder per segment.

A patch of the whole plan writes ``backup.jsonl`` and ``journal.jsonl`` at the top of the run folder. A patch
split into n segments (``segments=(i, n)`` on machine i, or ``max_processes=n`` on one machine) writes segment
i's backup and journal into ``patch-shards/segment-i-of-n/``, so that no two processes (or machines) ever share
a file: the folders of several machines can be copied together, and verify() and undo() read every shard
present. A run of n segments has an id every machine computes alike (``<plan digest>-of<n>``), so their
journals speak of the same patch.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..journal import iter_jsonl, status_counts
from .state import BACKUP_FILE, JOURNAL_FILE, journal_state

SHARDS_DIR = "patch-shards"
#: Held (flock) by the process patching a segment for as long as it runs.
LOCK_FILE = "segment.lock"
_SHARD = re.compile(r"^segment-(\d+)-of-(\d+)$")


def shard_dir(run_dir: Path, segment: tuple[int, int]) -> Path:
    """The folder of segment (i, n): ``patch-shards/segment-i-of-n``."""
    return run_dir / SHARDS_DIR / f"segment-{segment[0]}-of-{segment[1]}"


def patch_files(run_dir: Path, segment: tuple[int, int] | None) -> tuple[Path, Path]:
    """The journal and the backup a patch of ``segment`` (None: the whole plan) writes."""
    folder = run_dir if segment is None else shard_dir(run_dir, segment)
    return folder / JOURNAL_FILE, folder / BACKUP_FILE


def shards(run_dir: Path) -> list[tuple[int, int]]:
    """The segments (i, n) that have a shard folder in the run folder, in order."""
    root = run_dir / SHARDS_DIR
    if not root.is_dir():
        return []
    found = [_SHARD.match(p.name) for p in root.iterdir() if p.is_dir()]
    return sorted((int(m[1]), int(m[2])) for m in found if m)


def journal_paths(run_dir: Path) -> list[Path]:
    """Every patch journal of the run folder: the whole plan's, then each shard's."""
    return [run_dir / JOURNAL_FILE, *(patch_files(run_dir, s)[0] for s in shards(run_dir))]


def journal_status_counts(run_dir: Path) -> dict[str, int]:
    """Per-status line counts over every patch journal of the run folder (``journal.status_counts`` of each,
    summed): what the lift's summary, the demo's report and index.html show of a patch."""
    counts: dict[str, int] = {}
    for path in journal_paths(run_dir):
        for status, n in status_counts(path).items():
            counts[status] = counts.get(status, 0) + n
    return counts


def iter_journals(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The lines of every patch journal of the run folder (segments hold disjoint keys)."""
    for path in journal_paths(run_dir):
        yield from iter_jsonl(path)


def _has_run(path: Path, run_id: str) -> bool:
    return any(line.get("patch_id") == run_id for line in iter_jsonl(path))


def check_layout(run_dir: Path, run_id: str, total: int | None) -> None:
    """Refuse to resume patch ``run_id`` in another layout than the one it was started in.

    ``total``: the number of segments asked for (None: the whole plan in one file). Nothing is written here.
    """
    layouts = set()
    if _has_run(run_dir / JOURNAL_FILE, run_id) or _has_run(run_dir / BACKUP_FILE, run_id):
        layouts.add(None)
    for seg in shards(run_dir):
        journal, backup = patch_files(run_dir, seg)
        if _has_run(journal, run_id) or _has_run(backup, run_id):
            layouts.add(seg[1])
    other = sorted((n for n in layouts if n != total), key=lambda n: -1 if n is None else n)
    if not other:
        return
    started = ", ".join("the whole plan in one process" if n is None else f"{n} segments" for n in other)
    asked = "the whole plan in one process" if total is None else f"{total} segments"
    hint = (
        "max_processes=1 and no segments"
        if other[0] is None
        else f"max_processes={other[0]} (or segments=(i, {other[0]}) on each machine)"
    )
    raise InputError(
        f"patch {run_id} was started as {started} (its files are in the run folder), and this call asks "
        f"for {asked}: a key's backup and journal must stay in one place. Nothing was written. Resume it "
        f"the way it was started ({hint}), or undo it and patch again."
    )


def segmented_run_id(digest: str, total: int, run_dir: Path) -> str:
    """The id of a new patch of ``digest`` in ``total`` segments, alike on every machine.

    ``<digest[:12]>-of<n>``; when shards already hold an earlier run of that id (patched and undone), the
    next free ``-of<n>.<k>``.
    """
    base = f"{digest[:12]}-of{total}"
    used: set[str] = set()
    for seg in shards(run_dir):
        if seg[1] == total:
            used.update(str(line.get("patch_id")) for line in iter_jsonl(patch_files(run_dir, seg)[0]))
    if base not in used:
        return base
    k = 2
    while f"{base}.{k}" in used:
        k += 1
    return f"{base}.{k}"


def run_state(
    run_dir: Path, run_id: str, total: int | None, seg: tuple[int, int] | None
) -> tuple[set[str], set[str]]:
    """Final and skipped key_ids of patch ``run_id``: in its segment's journal, or in all of its segments'."""
    segs = [seg] if seg or total is None else [(i, total) for i in range(total)]
    final: set[str] = set()
    noted: set[str] = set()
    for s in segs:
        f, _, n = journal_state(patch_files(run_dir, s)[0], run_id)
        final |= f
        noted |= n
    return final, noted


@contextlib.contextmanager
def segment_lock(folder: Path) -> Iterator[None]:
    """Hold the segment's lock while it is patched: a second process on the same segment is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): one process per segment is the engineer's to keep
            pass
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8").strip() or "another process"
            raise InputError(
                f"segment {folder.name} is being patched by {holder} right now: wait for it to finish (or "
                "stop it), then run the call again. Nothing was written by this one."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {os.uname().nodename}".encode())
        yield
    finally:
        os.close(fd)


def describe_layout(processes: int, segments: tuple[int, int] | None) -> str:
    """How a patch run is split, for its report: "" for one process over the whole plan."""
    if segments is not None:
        i, n = segments
        return f"segment {i} of {n}, files in {SHARDS_DIR}/segment-{i}-of-{n}/"
    if processes > 1:
        return f"{processes} processes, one segment each, files in {SHARDS_DIR}/"
    return ""
