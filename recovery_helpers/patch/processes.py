"""Patch from several processes: each patches one key-space segment in its own shard, the parent merges.

``apply_plan(max_processes=P)`` starts P worker processes ("spawn": a fresh interpreter, no state shared with
the notebook's kernel). Each builds its own boto3 clients from the Context's region, endpoint and credentials
(:class:`ContextSpec`), patches segment (i, P) of the plan with ``max_write_rate / P`` and its own backup and
journal (``patch-shards/segment-i-of-P/``), and sends back what it counted (:class:`SegmentOutcome`). The
parent sums them into one PatchReport, and shows one progress bar over every segment while they write
(:mod:`.live_bar`: each worker's engine adds to a shared counter). A worker that dies (SIGKILL, out of memory)
loses nothing it journaled: the same call run again resumes every segment, each settling its own writes in
flight. On Linux a worker is killed with its parent, so that a resumed run never races the workers of a run
that was stopped.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import boto3

from .. import errors
from ..context import CallRecorder, Context
from ..errors import InputError, RecoveryError
from ..incident import Incident
from ..kernel_guard import die_with_parent
from ..ratelimit import RateLimiter, RateStats
from .engine import Engine, EngineTuning
from .live_bar import POLL_SECONDS, CounterBar, ParentBar
from .reports import REPORT_LIMIT


@dataclass(frozen=True)
class SegmentOptions:
    """How each segment is patched (the same for every process of a run)."""

    attributes: tuple[str, ...] | None
    max_workers: int
    read_batch_size: int
    write_mode: str
    transact_batch_size: int
    progress: bool
    tuning: EngineTuning | None
    total: int  # keys to do (for the progress bar)


@dataclass(frozen=True)
class SegmentJob:
    """One worker's share of a patch run: which run and plan, the segment, how, and at what rate."""

    run_id: str
    digest: str
    stamp: tuple[int, int, int]  # plan.jsonl as the parent checked it (plan_reading.plan_stamp)
    segment: tuple[int, int]
    options: SegmentOptions
    rate: float | None  # this segment's share of max_write_rate


@dataclass(frozen=True)
class ContextSpec:
    """What a worker process needs to open the same Context: names, endpoint, and how to sign in."""

    incident_id: str
    runs_dir: str
    table_name: str
    region: str
    endpoint_url: str | None
    profile: str | None
    credentials: tuple[str, str, str | None] | None  # keys given in code (or assumed): passed as they are
    config: Any

    @classmethod
    def of(cls, ctx: Context) -> ContextSpec:
        session = ctx.aws.session
        creds = session.get_credentials()
        frozen = None
        profile = session.profile_name if session.profile_name != "default" else None
        if creds is not None and getattr(creds, "method", None) in ("explicit", None):
            f = creds.get_frozen_credentials()
            frozen = (f.access_key, f.secret_key, f.token)
        return cls(
            incident_id=ctx.incident.incident_id,
            runs_dir=str(ctx.incident.runs_dir.resolve()),
            table_name=ctx.table_name,
            region=ctx.aws.region,
            endpoint_url=ctx.aws.endpoint_url,
            profile=profile if frozen is None else None,
            credentials=frozen,
            config=ctx.aws.config,
        )

    def open(self) -> Context:
        """The Context in this process: its own session and clients, the same run folder."""
        from ..aws import Aws

        if self.credentials is not None:
            key, secret, token = self.credentials
            session = boto3.session.Session(
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=self.region,
            )
        else:
            session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        incident = Incident(self.incident_id, self.runs_dir)
        aws = Aws(
            region=self.region,
            endpoint_url=self.endpoint_url,
            session=session,
            config=self.config,
            recorder=CallRecorder(incident),
        )
        return Context(aws=aws, incident=incident, table_name=self.table_name)


@dataclass
class SegmentOutcome:
    """What one segment's engine counted, small enough to send between processes."""

    segment: tuple[int, int]
    counts: dict[str, int]
    conflicts: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    ambiguous_items: list[dict[str, Any]]
    write_units: float
    writes_by_path: dict[str, int]
    elapsed: float
    rate: RateStats
    error: tuple[str, str] | None = None  # (RecoveryError class name, message): the segment's fatal error

    @classmethod
    def of(cls, segment: tuple[int, int], engine: Engine, elapsed: float, rate: RateStats) -> SegmentOutcome:
        fatal = engine.fatal
        return cls(
            segment=segment,
            counts=dict(engine.counts),
            conflicts=engine.conflicts[:REPORT_LIMIT],
            failures=engine.failures[:REPORT_LIMIT],
            ambiguous_items=list(engine.ambiguous_items)[:REPORT_LIMIT],
            write_units=engine.write_units,
            writes_by_path=engine.writes_by_path(),
            elapsed=elapsed,
            rate=rate,
            error=(type(fatal).__name__, str(fatal)) if fatal is not None else None,
        )


@dataclass
class MergedRun:
    """The segments' outcomes summed: read by apply_plan's report filling as one engine's would be."""

    verb: str = "patched"
    counts: Counter[str] = field(default_factory=Counter)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    ambiguous_items: list[dict[str, Any]] = field(default_factory=list)
    write_units: float = 0.0
    by_path: Counter[str] = field(default_factory=Counter)
    fatal: RecoveryError | None = None
    stats: RateStats = field(default_factory=RateStats)  # the limiters' grants, summed
    rate: float | None = None

    def writes_by_path(self) -> dict[str, int]:
        return dict(self.by_path)

    def add(self, outcome: SegmentOutcome) -> None:
        self.counts.update(outcome.counts)
        for mine, theirs in (
            (self.conflicts, outcome.conflicts),
            (self.failures, outcome.failures),
            (self.ambiguous_items, outcome.ambiguous_items),
        ):
            mine.extend(theirs[: max(0, REPORT_LIMIT - len(mine))])
        self.write_units += outcome.write_units
        self.by_path.update(outcome.writes_by_path)
        s, o = self.stats, outcome.rate
        s.granted += o.granted
        s.waited_seconds += o.waited_seconds
        s.pauses += o.pauses
        s.paused_seconds += o.paused_seconds
        # each process has its own monotonic clock: first/last grants are only comparable within one
        if o.first_grant is not None and o.last_grant is not None:
            span = (s.last_grant or 0.0) - (s.first_grant or 0.0)
            s.first_grant, s.last_grant = 0.0, max(span, o.last_grant - o.first_grant)
        if outcome.error is not None and self.fatal is None:
            self.fatal = _segment_error(outcome.segment, *outcome.error)


def _segment_error(segment: tuple[int, int], name: str, message: str) -> RecoveryError:
    """A segment's error as its own RecoveryError class (sent by name between processes), naming the segment."""
    kind = getattr(errors, str(name), RecoveryError)
    if not (isinstance(kind, type) and issubclass(kind, RecoveryError)):
        kind = RecoveryError
    return kind(f"segment {segment[0]} of {segment[1]}: {message}")


def run_processes(
    ctx: Context,
    run_id: str,
    processes: int,
    options: SegmentOptions,
    max_write_rate: float | None,
    digest: str,
    stamp: tuple[int, int, int],
) -> tuple[MergedRun, float]:
    """Patch segment (i, P) in worker process i, for every i; their outcomes merged, and the seconds taken."""
    started = time.monotonic()
    spec = ContextSpec.of(ctx)
    tuning = dataclasses.replace(options.tuning, worker_context=None) if options.tuning else None
    worker_options = dataclasses.replace(options, progress=False, tuning=tuning)
    rate = max_write_rate / processes if max_write_rate is not None else None
    mp = multiprocessing.get_context("spawn")
    counters = [mp.Value("q", 0) if options.progress else None for _ in range(processes)]
    workers = []
    for i in range(processes):
        receive, send = mp.Pipe(duplex=False)
        job = SegmentJob(run_id, digest, stamp, (i, processes), worker_options, rate)
        proc = mp.Process(
            target=_worker_main,
            args=(send, spec, job, os.getpid(), counters[i]),
            name=f"patch-segment-{i}-of-{processes}",
        )
        proc.start()
        send.close()
        workers.append((i, proc, receive))
    merged = MergedRun(rate=max_write_rate)
    bar = ParentBar(counters, options.total) if options.progress else None
    try:
        answers = _collect(workers, bar)
    except BaseException as exc:
        for _, proc, _ in workers:
            proc.join(timeout=30)  # Ctrl-C reaches the workers too: let them journal their "interrupted"
            if proc.is_alive():
                proc.terminate()
        ctx.record(
            "patch interrupted", result="stopped", patch_id=run_id, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    for i, proc, _ in workers:
        answer = answers.get(i)
        if isinstance(answer, SegmentOutcome):
            merged.add(answer)
        elif merged.fatal is None:
            merged.fatal = _lost(i, processes, proc.exitcode, answer)
    return merged, time.monotonic() - started


def _collect(workers: list[tuple[int, Any, Connection]], bar: ParentBar | None = None) -> dict[int, Any]:
    """Each worker's answer (a SegmentOutcome, or the error it sent), waiting until every worker has ended;
    ``bar`` is moved every ``POLL_SECONDS`` meanwhile."""
    answers: dict[int, Any] = {}
    open_pipes = {receive: i for i, _, receive in workers}
    while open_pipes:
        ready_pipes = wait(list(open_pipes), timeout=POLL_SECONDS if bar is not None else None)
        if bar is not None:
            bar.refresh()
        for ready in ready_pipes:
            i = open_pipes.pop(ready)  # type: ignore[call-overload]
            try:
                answers[i] = ready.recv()  # type: ignore[union-attr]
            except EOFError:  # the worker ended without an answer (killed)
                pass
    for _, proc, receive in workers:
        proc.join()
        receive.close()
    return answers


def _lost(i: int, processes: int, exitcode: int | None, answer: Any) -> RecoveryError:
    """The error of a segment that sent no outcome: the one it sent, or its death."""
    if isinstance(answer, tuple) and len(answer) == 2:
        return _segment_error((i, processes), *answer)
    return RecoveryError(
        f"the process patching segment {i} of {processes} stopped (exit code {exitcode}) before it finished. "
        "Nothing it journaled is lost: run the same call again (same max_processes) to resume; each segment "
        "settles its own writes in flight, and keys it cannot settle are reported as ambiguous."
    )


def _worker_main(
    send: Connection, spec: ContextSpec, job: SegmentJob, parent: int, counter: Any = None
) -> None:
    """One worker process: patch its segment (adding to ``counter`` as keys are done), send back its outcome
    (or its error)."""
    die_with_parent(parent)  # on Linux killed with the parent: no orphan writing on after a kill
    try:
        ctx = spec.open()
        bar = CounterBar(counter) if counter is not None else None
        outcome: Any = patch_segment(ctx, job, bar)
    except RecoveryError as exc:
        outcome = (type(exc).__name__, str(exc))
    except BaseException as exc:  # a bug: the parent names it, the traceback goes to this process's stderr
        send.send(("RecoveryError", f"{type(exc).__name__}: {exc}"))
        raise
    send.send(outcome)
    send.close()


def patch_segment(ctx: Context, job: SegmentJob, bar: Any = None) -> SegmentOutcome:
    """Patch one segment of run ``job.run_id`` (started by the parent) in this process; what its engine
    counted. ``bar``: what the engine updates instead of a progress bar of its own (the parent's counter)."""
    from .apply import PatchRun, run_segment
    from .checks import key_schema
    from .plan_reading import check_plan
    from .shards import run_state

    run_id, segment = job.run_id, job.segment
    ctx.incident.reload()
    current, _, approvals = check_plan(ctx)
    if current != job.digest or ctx.incident.get("patch_id") != run_id:
        raise InputError(
            f"the plan or the patch changed while patch {run_id} was starting: nothing was written by "
            f"segment {segment[0]}. Run the patch again."
        )
    schema = key_schema(ctx)
    final, noted = run_state(ctx.incident.path, run_id, segment[1], segment)
    run = PatchRun(run_id=run_id, resuming=True, final=final, noted=noted)
    limiter = RateLimiter(job.rate)
    engine, elapsed = run_segment(
        ctx, run, job.digest, approvals, schema, job.stamp, segment, job.options, limiter, bar
    )
    return SegmentOutcome.of(segment, engine, elapsed, limiter.stats)
