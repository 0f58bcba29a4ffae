"""The reviewed plan (``plan.jsonl`` + ``plan.json``), its digest, and the approvals (``approvals.json``).

``04_diff`` writes the plan, ``05_patch`` reads it. The plan is written in key_id order by an external merge
sort (bounded memory however many keys), so the same findings always give the same file and the same digest:
a sha256 over one canonical line ``[key_id, action, restored_digest, live_digest]`` per entry.
An entry is approved iff ``decisions.get(key_id, classes.get(classification, default)) is True``; approvals
recorded for another digest (an older plan) never apply to the current one.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .incident import Incident, utc_now
from .items import from_json_safe, to_json_safe

PLAN_FILE = "plan.jsonl"
META_FILE = "plan.json"
APPROVALS_FILE = "approvals.json"
CLASSIFICATIONS = ("changed", "deleted", "created", "unchanged")
#: What the patch does per classification (from the incident's point of view, see docs/design.md).
ACTION_OF = {"changed": "put", "deleted": "put", "created": "delete", "unchanged": "none"}
#: Entries buffered in memory before a sorted run is spilled to disk.
RUN_SIZE = 20_000


def segment_of(key_id: str, total: int) -> int:
    """The segment (0..total-1) a key belongs to: a stable hash of its key_id, the same in every process."""
    if total <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(key_id.encode("utf-8")).digest()[:8], "big") % total


@dataclass
class PlanEntry:
    """One impacted key: both versions, what the patch would do, and where the finding came from.

    Items are DynamoDB JSON with bytes for binary; ``first_change`` is ISO 8601 text or None.
    """

    key_id: str
    key: dict
    classification: str
    action: str
    restored: dict | None
    live: dict | None
    restored_digest: str
    live_digest: str
    tenant: str | None = None
    sources: list[str] = field(default_factory=list)
    first_change: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (binary as base64), one line of ``plan.jsonl``."""
        return to_json_safe(asdict(self))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PlanEntry:
        return cls(
            key_id=obj["key_id"],
            key=from_json_safe(obj["key"]),
            classification=obj["classification"],
            action=obj["action"],
            restored=from_json_safe(obj["restored"]),
            live=from_json_safe(obj["live"]),
            restored_digest=obj["restored_digest"],
            live_digest=obj["live_digest"],
            tenant=obj.get("tenant"),
            sources=list(obj.get("sources") or []),
            first_change=obj.get("first_change"),
        )

    def digest_line(self) -> str:
        """The canonical line this entry contributes to the plan digest."""
        return digest_line(self.key_id, self.action, self.restored_digest, self.live_digest)


def digest_line(key_id: str, action: str, restored_digest: str, live_digest: str) -> str:
    """One entry's canonical line of the plan digest (04_diff sums them when it writes the plan, 05_patch again
    when it reads it)."""
    return json.dumps([key_id, action, restored_digest, live_digest], separators=(",", ":")) + "\n"


class PlanWriter:
    """Writes ``plan.jsonl`` in key_id order from entries added in any order, from any thread.

    Entries are buffered, spilled as sorted runs, then merged; ``close(meta)`` computes the digest and writes
    ``plan.json``. Nothing replaces the previous plan until ``close`` succeeds.
    """

    def __init__(self, incident: Incident, run_size: int = RUN_SIZE) -> None:
        self.incident = incident
        self.run_size = run_size
        self._buffer: list[tuple[str, str]] = []
        self._runs: list[Path] = []
        self._lock = threading.Lock()
        self._tmpdir = Path(tempfile.mkdtemp(prefix=".plan-", dir=incident.path))

    def add(self, entry: PlanEntry) -> None:
        if entry.classification not in ACTION_OF or ACTION_OF[entry.classification] != entry.action:
            raise ValueError(f"inconsistent plan entry {entry.key_id}: {entry.classification}/{entry.action}")
        line = json.dumps(entry.to_json(), separators=(",", ":"))
        with self._lock:
            self._buffer.append((entry.key_id, line))
            if len(self._buffer) >= self.run_size:
                self._spill()

    def _spill(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=lambda kv: kv[0])
        path = self._tmpdir / f"run-{len(self._runs):05d}"
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(
                f"{key_id}\t{line}\n" for key_id, line in self._buffer
            )  # key_ids are JSON text: they never hold a raw tab or newline
        self._runs.append(path)
        self._buffer = []

    def close(self, meta: dict[str, Any]) -> str:
        """Merge the runs into ``plan.jsonl``, write ``plan.json``; return the digest."""
        with self._lock:
            self._spill()
            files = [open(p, encoding="utf-8") for p in self._runs]
            digest = hashlib.sha256()
            counts: Counter[str] = Counter()
            tmp = self.incident.path / (PLAN_FILE + ".tmp")
            previous = None
            try:
                with open(tmp, "w", encoding="utf-8") as out:
                    for raw in heapq.merge(*files, key=lambda line: line.split("\t", 1)[0]):
                        key_id, line = raw.rstrip("\n").split("\t", 1)
                        if key_id == previous:
                            raise ValueError(f"key {key_id} appears twice in the plan")
                        previous = key_id
                        obj = json.loads(line)
                        entry_line = digest_line(
                            key_id, obj["action"], obj["restored_digest"], obj["live_digest"]
                        )
                        digest.update(entry_line.encode())
                        counts[obj["classification"]] += 1
                        out.write(line + "\n")
                    out.flush()
                    os.fsync(out.fileno())
            finally:
                for f in files:
                    f.close()
                self._cleanup()
            value = digest.hexdigest()
            written = file_sha256(tmp)
            os.replace(tmp, self.incident.path / PLAN_FILE)
            full_meta = {
                **meta,
                "digest": value,
                "file_sha256": written,
                "total": sum(counts.values()),
                "counts": {c: counts.get(c, 0) for c in CLASSIFICATIONS},
                "written_at": utc_now(),
            }
            _write_json(self.incident.path / META_FILE, full_meta)
            _archive_stale_approvals(self.incident, value)
            return value

    def abort(self) -> None:
        """Forget everything added; the previous plan (if any) stays as it was."""
        with self._lock:
            self._buffer = []
            self._cleanup()

    def _cleanup(self) -> None:
        for p in self._runs:
            p.unlink(missing_ok=True)
        self._runs = []
        try:
            self._tmpdir.rmdir()
        except OSError:
            pass


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (``plan.json`` keeps the one of the ``plan.jsonl`` it was written with)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_plan(incident: Incident, entries: Iterable[PlanEntry], meta: dict[str, Any]) -> str:
    """Write ``plan.jsonl`` (key_id order) and ``plan.json``; return the plan digest."""
    writer = PlanWriter(incident)
    try:
        for entry in entries:
            writer.add(entry)
    except BaseException:
        writer.abort()
        raise
    return writer.close(meta)


def iter_plan(incident: Incident) -> Iterator[PlanEntry]:
    """Stream the plan's entries in key_id order."""
    path = incident.path / PLAN_FILE
    if not path.exists():
        raise InputError(f"incident {incident.incident_id!r} has no plan yet ({path}): run 04_diff first.")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield PlanEntry.from_json(json.loads(line))


def load_plan_meta(incident: Incident) -> dict[str, Any]:
    """``plan.json``: digest, tables, key schema, window, sources report, counts."""
    path = incident.path / META_FILE
    if not path.exists():
        raise InputError(f"incident {incident.incident_id!r} has no plan yet ({path}): run 04_diff first.")
    return json.loads(path.read_text(encoding="utf-8"))


def plan_digest(incident: Incident) -> str:
    """The current plan's digest (what ``approval_token`` must equal)."""
    return load_plan_meta(incident)["digest"]


@dataclass
class Approvals:
    """Who approved which entries of the plan with this digest. Nothing is approved by default."""

    digest: str | None = None
    default: bool | None = None
    classes: dict[str, bool] = field(default_factory=dict)
    decisions: dict[str, bool] = field(default_factory=dict)
    approved_by: str | None = None
    approved_at: str | None = None
    method: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def is_approved(self, entry: PlanEntry) -> bool:
        """Is this entry approved? A per-key decision wins over its class, which wins over the default."""
        return self.decisions.get(entry.key_id, self.classes.get(entry.classification, self.default)) is True

    def note(self, who: str, method: str, what: str) -> None:
        """Stamp a decision: who, when and how, also appended to ``history`` for the postmortem."""
        self.approved_by, self.approved_at, self.method = who, utc_now(), method
        self.history.append({"time": self.approved_at, "who": who, "method": method, "what": what})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Approvals:
        return cls(
            digest=obj.get("digest"),
            default=obj.get("default"),
            classes=dict(obj.get("classes") or {}),
            decisions=dict(obj.get("decisions") or {}),
            approved_by=obj.get("approved_by"),
            approved_at=obj.get("approved_at"),
            method=obj.get("method"),
            history=list(obj.get("history") or []),
        )


def load_approvals(incident: Incident) -> Approvals:
    """The approvals of the CURRENT plan (empty, i.e. nothing approved, if none were given for its digest)."""
    digest = plan_digest(incident)
    path = incident.path / APPROVALS_FILE
    if path.exists():
        approvals = Approvals.from_json(json.loads(path.read_text(encoding="utf-8")))
        if approvals.digest == digest:
            return approvals
    return Approvals(digest=digest)


def save_approvals(incident: Incident, approvals: Approvals) -> None:
    """Write ``approvals.json`` atomically; refuses approvals made for another plan."""
    digest = plan_digest(incident)
    if approvals.digest != digest:
        raise InputError(
            f"these approvals are for plan {approvals.digest}, but the current plan is {digest}: "
            "review the current plan (04_diff) and approve it."
        )
    _write_json(incident.path / APPROVALS_FILE, approvals.to_json())


def approval_counts(incident: Incident, approvals: Approvals | None = None) -> dict[str, dict[str, int]]:
    """Per classification: proposed changes, approved, not approved (streams the plan)."""
    approvals = approvals or load_approvals(incident)
    out = {c: {"proposed": 0, "approved": 0} for c in CLASSIFICATIONS if ACTION_OF[c] != "none"}
    for entry in iter_plan(incident):
        if entry.action == "none":
            continue
        out[entry.classification]["proposed"] += 1
        out[entry.classification]["approved"] += approvals.is_approved(entry)
    return out


def _archive_stale_approvals(incident: Incident, digest: str) -> None:
    """Approvals of an older plan are kept for the postmortem under another name, never applied."""
    path = incident.path / APPROVALS_FILE
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8")).get("digest")
    except ValueError:
        old = None
    if old != digest:
        os.replace(path, incident.path / f"approvals.{(old or 'unknown')[:12]}.json")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
