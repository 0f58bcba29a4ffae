"""Impacted-item sources: each module finds the keys an incident touched; ``find_impacted`` merges them.

A source is a module ``recovery_helpers/sources/<name>.py`` with ``find(request) -> Iterator[ImpactedKey]``.
``find_impacted(request, names)`` imports the named modules, spills every finding to per-segment files in the
run folder (so a million keys never sit in memory at once), merges the findings by ``key_id`` one segment at a
time, and reports per source how many keys it found and how many only it found.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import pkgutil
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aws import Aws
from ..errors import InputError
from ..items import KeySchema, from_json_safe, to_json_safe
from ..plan import segment_of
from ..tenancy import Tenancy, selects

#: Sources whose findings carry both versions of the item (no restored table needed for them).
IMAGE_SOURCES = frozenset({"incremental_export", "full_export"})
#: The request field each source cannot work without (checked before anything runs).
REQUIRED_INPUT = {
    "keys_file": "keys_file",
    "log_file": "log_file",
    "cloudwatch_logs": "log_group",
    "audit_table": "audit_table_name",
    "updated_attribute": "updated_attribute",
}
ACTIONS = ("create", "update", "delete", "unknown")
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class ImpactedKey:
    """One finding of one source: this key was (probably) touched by the incident."""

    key: dict
    action: str  # "create" | "update" | "delete" | "unknown"
    first_change: dt.datetime | None
    source: str
    before: dict | None = (
        None  # pre-incident item, for sources that carry it (incremental_export, full_compare)
    )
    after: dict | None = None  # live item as the source saw it
    has_images: bool = False  # True: before/after are authoritative (None means absent)


@dataclass
class SourceStats:
    """Counters of one source's run, shown in the sources report so a reviewer can trust (or doubt) it.

    Sources bump ``read`` / ``malformed`` / ``skipped`` directly (``request.stats.read += 1``) or by name
    (``request.stats.add("filtered_tenant")``), and keep the first few problems with ``problem(text)``.
    ``found`` and ``only`` are filled in by :func:`find_impacted`.
    """

    source: str = ""
    read: int = 0
    malformed: int = 0
    skipped: int = 0
    found: int = 0
    only: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, counter: str, n: int = 1) -> None:
        """Increase a counter by name (the standard ones are attributes, others go to ``counters``)."""
        if counter in ("read", "malformed", "skipped", "found", "only"):
            setattr(self, counter, getattr(self, counter) + n)
        else:
            self.counters[counter] = self.counters.get(counter, 0) + n

    def problem(self, message: str) -> None:
        """Remember a problem (e.g. ``line 7: not JSON``); only the first few are kept."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "found": self.found,
            "only": self.only,
            "read": self.read,
            "malformed": self.malformed,
            "skipped": self.skipped,
            **self.counters,
            "problems": list(self.problems),
        }


@dataclass
class SourceRequest:
    """Everything a source may need. Windows are aware UTC datetimes, ``[window_start, window_end)``.

    ``options`` carries source-specific settings; ``options["record"]`` is ``ctx.record`` (sources that change
    something in AWS, like starting an export, record it with it).
    """

    aws: Aws
    table_name: str
    key_schema: KeySchema
    restored_table_name: str | None
    window_start: dt.datetime
    window_end: dt.datetime
    tenancy: Tenancy = field(default_factory=Tenancy)
    tenants: list[str] = field(default_factory=lambda: ["all"])
    keys_file: str | None = None
    log_file: str | None = None
    log_group: str | None = None
    audit_table_name: str | None = None
    updated_attribute: str | None = None
    scratch_dir: Path = field(default_factory=lambda: Path("."))
    stats: SourceStats = field(default_factory=SourceStats)
    #: Source-specific settings (export_bucket, log_filter_pattern, total_segments, max_workers, record...).
    options: dict[str, Any] = field(default_factory=dict)

    def in_window(self, when: dt.datetime) -> bool:
        """Is this (aware) time inside ``[window_start, window_end)``?"""
        return self.window_start <= when < self.window_end

    @property
    def tenant_in_key(self) -> bool:
        """True when the tenancy attribute is a key attribute, so the key alone tells the tenant."""
        return self.tenancy.attribute is not None and self.tenancy.attribute in self.key_schema.names

    def selects_key(self, key: Mapping[str, Any]) -> bool:
        """Tenant filter on a key: False only when the key tells the tenant and it is not selected."""
        if not self.tenant_in_key or "all" in self.tenants:
            return True
        return selects(self.tenants, self.tenancy.tenant_of(key))


@dataclass
class Impacted:
    """One impacted key after merging every source's findings."""

    key_id: str
    key: dict
    action: str
    first_change: dt.datetime | None
    sources: list[str]
    before: dict | None = None
    after: dict | None = None
    has_images: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "key": to_json_safe(self.key),
            "action": self.action,
            "first_change": _iso(self.first_change),
            "sources": self.sources,
            "has_images": self.has_images,
        }


@dataclass
class ImpactedSet:
    """The merged findings, kept on disk in segments; iterate one segment at a time with :meth:`segment`."""

    key_schema: KeySchema
    segments: int
    directory: Path
    stats: dict[str, SourceStats]
    total: int = 0

    def segment(self, index: int) -> list[Impacted]:
        """The merged impacted keys of one segment, in key_id order."""
        return _merge(self.key_schema, _read_spill(self.directory / f"seg-{index:04d}.jsonl"))

    def __iter__(self) -> Iterator[Impacted]:
        for i in range(self.segments):
            yield from self.segment(i)

    @property
    def needs_restored_table(self) -> bool:
        """Does any key lack images (so its pre-incident version must come from the restored table)?"""
        return any(not k.has_images for k in self)

    def report(self) -> dict[str, dict[str, Any]]:
        return {name: s.as_dict() for name, s in self.stats.items()}

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def available_sources() -> list[str]:
    """Source modules present in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def normalize_source_names(names: str | Iterable[str]) -> list[str]:
    """``"log_file"``, ``"log_file,keys_file"`` or a list, as known source names (else InputError)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    out: list[str] = []
    for n in names or []:
        if not isinstance(n, str):
            raise InputError(f"impacted_source entries must be strings, got {n!r}")
        if n and n not in out:
            out.append(n)
    available = available_sources()
    if not out:
        raise InputError(f"impacted_source is empty: choose one or more of {', '.join(available)}.")
    unknown = [n for n in out if n not in available]
    if unknown:
        raise InputError(
            f"unknown impacted_source {', '.join(map(repr, unknown))}: available sources are "
            f"{', '.join(available)}."
        )
    return out


def check_inputs(request: SourceRequest, names: list[str]) -> None:
    """Refuse a source whose input parameter is missing, naming the parameter."""
    for name in names:
        param = REQUIRED_INPUT.get(name)
        if param and not getattr(request, param):
            raise InputError(f"impacted_source {name!r} needs the `{param}` parameter; it is not set.")


def find_impacted(request: SourceRequest, names: str | Iterable[str], *, segments: int = 1) -> ImpactedSet:
    """Run the named sources, merge their findings by key_id, and count per source found / only-this-source.

    Every source runs to completion before anything is fetched or written to AWS, so bad input (a keys file
    with a wrong attribute) stops the step with nothing done. Findings are spilled to ``segments`` files under
    ``request.scratch_dir`` by :func:`~recovery_helpers.plan.segment_of`.
    """
    names = normalize_source_names(names)
    check_inputs(request, names)
    if segments < 1:
        raise InputError(f"segments must be at least 1, got {segments}")
    modules = {name: importlib.import_module(f"{__name__}.{name}") for name in names}
    directory = Path(request.scratch_dir) / "impacted-work"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    files = [open(directory / f"seg-{i:04d}.jsonl", "w", encoding="utf-8") for i in range(segments)]
    stats: dict[str, SourceStats] = {}
    try:
        for name, module in modules.items():
            stats[name] = SourceStats(source=name)
            sub = dataclasses.replace(request, stats=stats[name])
            for finding in module.find(sub):
                key = request.key_schema.key_of(finding.key)
                if not request.selects_key(key):
                    stats[name].add("filtered_tenant")
                    continue
                key_id = request.key_schema.key_id(key)
                files[segment_of(key_id, segments)].write(
                    json.dumps(_spill_line(key_id, key, finding, name)) + "\n"
                )
    except BaseException:
        for f in files:
            f.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    for f in files:
        f.close()
    result = ImpactedSet(request.key_schema, segments, directory, stats)
    found: Counter[str] = Counter()
    only: Counter[str] = Counter()
    for merged in result:
        result.total += 1
        found.update(merged.sources)
        if len(merged.sources) == 1:
            only[merged.sources[0]] += 1
    for name, s in stats.items():
        s.found, s.only = found[name], only[name]
    request.stats.found = result.total
    return result


def _spill_line(key_id: str, key: dict, finding: ImpactedKey, name: str) -> dict[str, Any]:
    if finding.action not in ACTIONS:
        raise ValueError(f"source {name!r} produced action {finding.action!r}; expected one of {ACTIONS}")
    return {
        "key_id": key_id,
        "key": to_json_safe(key),
        "action": finding.action,
        "first_change": _iso(finding.first_change),
        "source": finding.source or name,
        "before": to_json_safe(finding.before),
        "after": to_json_safe(finding.after),
        "has_images": bool(finding.has_images),
    }


def _read_spill(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _merge(key_schema: KeySchema, lines: Iterable[dict[str, Any]]) -> list[Impacted]:
    """Merge spilled findings by key_id: the earliest change gives the action; images come from a source."""
    merged: dict[str, Impacted] = {}
    for line in lines:
        first = _parse_iso(line["first_change"])
        has_images = line["has_images"]
        m = merged.get(line["key_id"])
        if m is None:
            m = merged[line["key_id"]] = Impacted(
                line["key_id"], from_json_safe(line["key"]), line["action"], first, [line["source"]]
            )
        else:
            if line["source"] not in m.sources:
                m.sources.append(line["source"])
            if first is not None and (m.first_change is None or first < m.first_change):
                m.first_change, m.action = first, line["action"]
            elif m.action == "unknown" and m.first_change is None:
                m.action = line["action"]
        if has_images and not m.has_images:
            m.before, m.after, m.has_images = (
                from_json_safe(line["before"]),
                from_json_safe(line["after"]),
                True,
            )
    for m in merged.values():
        m.sources.sort()
    return [merged[k] for k in sorted(merged)]


def _iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat() if when is not None else None


def _parse_iso(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
