"""The one run loop of patch and undo: open the journal (and the backup), drive the engine, record the end.

apply_plan and undo differ in what they feed the engine (plan entries, or the patch's own journal) and in
what they report; everything between is here, once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context import Context
from ..items import KeySchema
from ..journal import JsonlFile
from ..progress import progress_bar
from ..ratelimit import RateLimiter
from .engine import Engine, EngineTuning
from .gc_tuning import fewer_collections
from .reports import PatchReport, UndoReport
from .requests import Change
from .resume import in_flight, settle_in_flight


@dataclass
class RunSpec:
    """One pass of the engine over a stream of changes (a patch run, or an undo of one)."""

    kind: str  # "patch" or "undo": names the timeline records and the progress bar
    verb: str  # the journal status of a key this run wrote: "patched" or "undone"
    run_id: str
    run_fields: dict[str, Any]
    journal_path: Path
    backup_path: Path | None  # None: no backup (undo puts back what the backup holds)
    token_scope: str
    total: int  # keys to do, for the progress bar
    limiter: RateLimiter
    max_workers: int
    read_batch_size: int
    write_mode: str
    transact_batch_size: int
    progress: bool = True
    #: what the engine updates instead of a new progress bar (a worker process's counter, which the parent draws)
    bar: Any = None
    tuning: EngineTuning | None = None
    #: engine counts named in the "interrupted" timeline record
    interrupted_counts: tuple[str, ...] = ()
    #: keys with a final outcome in this run's journal already (a resumed run)
    final: set[str] = field(default_factory=set)
    #: for a resumed run: the Changes of the given key_ids (to settle the writes a stopped run left in flight)
    resume_lookup: Callable[[set[str]], dict[str, Change]] | None = None


def run_engine(
    ctx: Context,
    schema: KeySchema,
    spec: RunSpec,
    changes_for: Callable[[JsonlFile], Iterable[Change]],
    after: Callable[[JsonlFile], None] | None = None,
) -> tuple[Engine, float]:
    """Run the engine over ``changes_for(journal)``; the engine and the seconds it took.

    A run stopped by anything (Ctrl-C, a bug) is recorded as "<kind> interrupted" before the error goes on;
    a fatal AWS answer is left in ``engine.fatal`` for the caller to record and raise.
    """
    started = time.monotonic()
    done = {"patch": "patched {n}/{total} items", "undo": "undid {n}/{total} items"}.get(spec.kind)
    if spec.bar is not None:
        bar = spec.bar
    else:
        bar = progress_bar(
            total=spec.total, desc=spec.kind, unit="item", disable=not spec.progress, done=done
        )
    with contextlib.ExitStack() as files:
        files.enter_context(fewer_collections())
        journal = files.enter_context(JsonlFile(spec.journal_path))
        backup = files.enter_context(JsonlFile(spec.backup_path, durable=True)) if spec.backup_path else None
        engine = Engine(
            ctx,
            schema,
            run_fields=spec.run_fields,
            journal=journal,
            backup=backup,
            limiter=spec.limiter,
            max_workers=spec.max_workers,
            read_batch_size=spec.read_batch_size,
            bar=bar,
            verb=spec.verb,
            write_mode=spec.write_mode,
            transact_batch_size=spec.transact_batch_size,
            token_scope=spec.token_scope,
            tuning=spec.tuning,
        )
        try:
            settled: set[str] = set()
            if spec.backup_path is not None and spec.resume_lookup is not None:
                pending = in_flight(spec.backup_path, spec.run_id, spec.final)
                if pending.keys:
                    settled = settle_in_flight(engine, pending, spec.resume_lookup(pending.needed_keys()))
            engine.run(c for c in changes_for(journal) if c.key_id not in settled)
            if after is not None:
                after(journal)
        except BaseException as exc:
            ctx.record(
                f"{spec.kind} interrupted",
                result="stopped",
                patch_id=spec.run_id,
                executor=ctx.who,
                error=f"{type(exc).__name__}: {exc}",
                **{k: engine.counts[k] for k in spec.interrupted_counts},
            )
            raise
        finally:
            bar.close()
    return engine, time.monotonic() - started


def fill_report(report: PatchReport | UndoReport, engine: Engine, elapsed: float) -> None:
    """Copy what the engine counted into the report of its run."""
    c = engine.counts
    setattr(report, engine.verb, c[engine.verb])  # report.patched or report.undone
    report.unchanged, report.conflicts, report.failed = c["unchanged"], c["conflict"], c["failed"]
    report.conflict_items, report.failures = engine.conflicts, engine.failures
    report.ambiguous = c["ambiguous"]
    report.ambiguous_items = list(engine.ambiguous_items)
    report.write_capacity_units = engine.write_units
    report.writes_by_path = engine.writes_by_path()
    report.transactions = c["transactions"]
    report.transactions_cancelled = c["transactions_cancelled"]
    report.elapsed_seconds = elapsed
