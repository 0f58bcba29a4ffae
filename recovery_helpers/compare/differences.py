"""What both engines write: one JSON line per differing item, and the counts of the comparison.

Every engine finds candidate pairs (same key, export lines not byte-identical, or one side missing) in its own
way; the decision and the output line are made here, by the same Python code for every engine, so engines
give identical output on the same input.

Output line: ``{"key": {...}, "classification": "changed"|"deleted"|"created", "restored": item|null,
"live": item|null}``: DynamoDB JSON as exported (binary as base64), ``restored`` the "before" export's item,
``live`` the "after" export's. ``deleted``/``created`` are from the incident's point of view (the item was
deleted / created between the two exports), as in the run folder's plan.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .canonical import MalformedItemError, items_equal, key_of, key_text

CLASSES = ("changed", "deleted", "created")


@dataclass
class CompareSummary:
    """Counts of one comparison (``compared`` = items in the "before" export)."""

    compared: int = 0
    after_items: int = 0
    changed: int = 0
    deleted: int = 0
    created: int = 0
    equal_but_rewritten: int = 0  # lines that differed as text but are the same item (reordered, renotated)
    engine: str = ""
    files: tuple[str, ...] = ()

    def line(self) -> str:
        """The last line compare-exports prints."""
        return (
            f"compared={self.compared} changed={self.changed} deleted={self.deleted} created={self.created}"
        )

    def add(self, classification: str) -> None:
        setattr(self, classification, getattr(self, classification) + 1)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = list(self.files)
        return out


def _item(line: str | None, side: str) -> dict[str, Any] | None:
    if line is None:
        return None
    try:
        item = json.loads(line)["Item"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedItemError(
            f'a line of the {side} export is not {{"Item": ...}}: {line[:200]!r}'
        ) from exc
    if not isinstance(item, dict):
        raise MalformedItemError(f'a line of the {side} export is not {{"Item": ...}}: {line[:200]!r}')
    return item


def decide(
    before_line: str | None, after_line: str | None, key_names: Sequence[str]
) -> tuple[str, str, str] | None:
    """``(key_text, classification, output_line)`` for a candidate pair, or None when the items are equal."""
    before, after = _item(before_line, "before"), _item(after_line, "after")
    if before is None and after is None:
        return None
    if before is not None and after is not None:
        if items_equal(before, after):
            return None
        classification = "changed"
    else:
        classification = "deleted" if after is None else "created"
    key = key_of(before if before is not None else after, key_names)
    text = (
        f'{{"key":{json.dumps(key, separators=(",", ":"), ensure_ascii=False)},'
        f'"classification":"{classification}","restored":{_item_text(before_line, before)},'
        f'"live":{_item_text(after_line, after)}}}'
    )
    return key_text(key, key_names), classification, text


def _item_text(line: str | None, item: dict[str, Any] | None) -> str:
    """The item's JSON as exported (the line minus its ``{"Item":...}`` wrapper), without re-serialising it."""
    if line is None or item is None:
        return "null"
    body = line.rstrip()
    if body.startswith(_PREFIX) and body.endswith("}"):
        return body[len(_PREFIX) : -1]
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


_PREFIX = '{"Item":'


def output_path(out_dir: Path, gzip_output: bool, index: int = 0) -> Path:
    return Path(out_dir) / f"part-{index:05d}.jsonl{'.gz' if gzip_output else ''}"


def open_output(path: Path) -> IO[str]:
    """A text file to write; ``.gz``: gzip with no time stamp, so equal content gives equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        raw = gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)
        return io.TextIOWrapper(raw, encoding="utf-8")
    return open(path, "w", encoding="utf-8")


def prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir``; refuse one that already holds a comparison (nothing is overwritten silently)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.glob("part-*.jsonl*")):
        raise FileExistsError(str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)


def write_summary(out_dir: Path, summary: CompareSummary) -> None:
    (Path(out_dir) / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")


def read_differences(out_dir: Path) -> Iterable[dict[str, Any]]:
    """Every line of a compare-exports output folder, in order (for tests and the full_export source)."""
    for path in sorted(Path(out_dir).glob("part-*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
