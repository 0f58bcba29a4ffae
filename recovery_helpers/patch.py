"""Step 5: apply the reviewed, approved plan to the live table, verify it, and undo it if needed.

Every write is conditional on the live item still being the one that was reviewed, so a legitimate write made
since the review is reported as a conflict and never overwritten. Before each write the live item (or its
absence) goes to ``backup.jsonl``, on disk (fsync) before the write is sent; the outcome goes to
``journal.jsonl``. A run that dies at any moment is simply run again: finished keys are skipped, and a key
whose backup exists without an outcome is settled by reading it again. Memory stays flat: the plan and the
files are streamed, and only the set of finished key_ids is held (plus the few backups of a crashed run).

Work is split by a stable hash of key_id over ``max_workers`` threads; each reads its keys with a consistent
BatchGetItem (READ_BATCH keys per call) and writes them one conditional PutItem/DeleteItem/UpdateItem at a
time.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from tqdm.auto import tqdm

from . import plan as planlib
from .aws import error_code, explain
from .context import Context
from .errors import ApprovalError, InputError, RecoveryError
from .incident import utc_now
from .items import (
    Item,
    Key,
    KeySchema,
    canonical_json,
    canonical_value,
    from_json_safe,
    item_digest,
    iter_chunks,
    to_json_safe,
)
from .journal import JsonlFile, iter_jsonl
from .ratelimit import RateLimiter, RateStats
from .scan import BATCH_GET_MAX, batch_get

BACKUP_FILE = "backup.jsonl"
JOURNAL_FILE = "journal.jsonl"
UNDO_FILE = "undo.jsonl"
#: Journal statuses after which a key is never touched again by the same patch. ("skipped", for an entry that
#: was not approved, is not final: approving it later and running again patches it.)
FINAL = frozenset({"patched", "undone", "unchanged", "conflict"})
#: Throttling answers: the engine pauses every worker and tries the same item again.
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
    }
)
#: Answers that no retry will change: the whole run stops (what is done stays journaled; run again later).
FATAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "ResourceNotFoundException",
    }
)
#: DynamoDB refuses expression strings longer than 4 KB.
MAX_EXPRESSION = 4096
#: How often one item is tried again after throttling that outlived botocore's own retries.
THROTTLE_ROUNDS = 8
#: Ask PutItem/DeleteItem for the replaced item (ReturnValues=ALL_OLD; free on AWS) to catch an attribute
#: added between the read and the write, which no condition expression can rule out (benchmarks may turn it
#: off).
RETURN_OLD = True
#: Keys per consistent BatchGetItem before the writes (at most 100). Each worker holds at most three such
#: batches (being filled, queued, being written): memory is bounded by max_workers x 3 x READ_BATCH entries.
READ_BATCH = 25
#: Conflicts/failures kept in a report (all of them are in the journal).
REPORT_LIMIT = 1000


# -- what one key needs -------------------------------------------------------------------------------------
_NO_BACKUP = object()


@dataclass
class _Change:
    """One key to bring from ``expected`` to ``target``.

    With ``attributes`` set, only those attributes are compared and written (UpdateItem); else whole items.
    ``pending`` is the backup of a previous run that has no outcome yet (crash between write and journal).
    """

    key_id: str
    key: Key
    expected_digest: str
    target: Item | None
    target_digest: str
    attributes: tuple[str, ...] | None
    action: str
    reviewed: Item | None = None
    classification: str | None = None
    pending: Any = _NO_BACKUP


def _project(item: Item | None, attributes: Sequence[str] | None) -> Item | None:
    """The part of an item the comparison looks at (whole item, or only ``attributes``; None = absent)."""
    if item is None or attributes is None:
        return item
    return {a: item[a] for a in attributes if a in item}


def _pdigest(item: Item | None, attributes: Sequence[str] | None) -> str:
    return item_digest(_project(item, attributes))


class _Expr:
    """Placeholders for an expression: names and values go through #n/:v, so any attribute name works."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        if attr not in self._by_name:
            ph = f"#n{len(self._by_name)}"
            self._by_name[attr] = ph
            self.names[ph] = attr
        return self._by_name[attr]

    def value(self, value: Any) -> str:
        ph = f":v{len(self.values)}"
        self.values[ph] = value
        return ph

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def _equals_condition(
    expr: _Expr, live: Item | None, schema: KeySchema, attributes: Sequence[str] | None = None
) -> str:
    """A condition true only while the item is ``live``: absent, or every (listed) attribute equal."""
    hash_ph = expr.name(schema.hash_name)
    if live is None:
        return f"attribute_not_exists({hash_ph})"
    parts = [f"attribute_exists({hash_ph})"]
    names = attributes if attributes is not None else sorted(a for a in live if a not in schema.names)
    for attr in names:
        if attr in live:
            parts.append(f"{expr.name(attr)} = {expr.value(live[attr])}")
        else:
            parts.append(f"attribute_not_exists({expr.name(attr)})")
    return " AND ".join(parts)


def _condition_summary(change: _Change) -> str:
    if change.reviewed is None:
        return "only if the item does not exist"
    if change.attributes is not None:
        return f"only if {', '.join(change.attributes)} still equal the reviewed values"
    return f"only if the item still equals the reviewed version ({len(change.reviewed)} attributes)"


def _code(exc: BaseException) -> str | None:
    return error_code(exc) or getattr(exc, "cause_response_code", None)


class _Fatal(Exception):
    """Stops every worker: an answer no retry will change (permissions, missing table)."""

    def __init__(self, error: RecoveryError) -> None:
        super().__init__(str(error))
        self.error = error


# -- the engine shared by patch and undo ---------------------------------------------------------------------
class _Engine:
    """Reads, compares, backs up, writes conditionally and journals changes, in worker threads."""

    def __init__(
        self,
        ctx: Context,
        schema: KeySchema,
        *,
        run_fields: dict[str, Any],
        journal: JsonlFile,
        backup: JsonlFile | None,
        limiter: RateLimiter,
        max_workers: int,
        read_batch_size: int,
        bar: Any,
        verb: str,
    ) -> None:
        self.ctx = ctx
        self.ddb = ctx.aws.dynamodb
        self.table = ctx.table_name
        self.schema = schema
        self.run_fields = run_fields
        self.journal = journal
        self.backup = backup
        self.limiter = limiter
        self.max_workers = max_workers
        self.read_batch_size = read_batch_size
        self.bar = bar
        self.verb = verb  # "patched" or "undone"
        self.counts: Counter[str] = Counter()
        self.conflicts: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.write_units = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.fatal: RecoveryError | None = None

    # .. orchestration ......................................................................................
    def run(self, changes: Iterable[_Change]) -> None:
        """Route changes to workers by a stable hash of key_id; return when done (or on a fatal error)."""
        workers = self.max_workers
        batch = max(1, min(self.read_batch_size, BATCH_GET_MAX))
        queues: list[queue.Queue[list[_Change] | None]] = [queue.Queue(maxsize=1) for _ in range(workers)]
        threads = [
            threading.Thread(target=self._worker, args=(q,), name=f"patch-{i}", daemon=True)
            for i, q in enumerate(queues)
        ]
        for t in threads:
            t.start()
        buffers: list[list[_Change]] = [[] for _ in range(workers)]

        def hand_over(i: int) -> None:
            while not self._stop.is_set():
                try:
                    queues[i].put(buffers[i], timeout=0.2)
                    break
                except queue.Full:
                    continue
            buffers[i] = []

        try:
            for change in changes:
                if self._stop.is_set():
                    break
                # salted, so that a plan segment (segments=(i, n)) still spreads over all workers
                i = planlib.segment_of(change.key_id + "/worker", workers)
                buffers[i].append(change)
                if len(buffers[i]) >= batch:
                    hand_over(i)
            for i in range(workers):
                if buffers[i]:
                    hand_over(i)
        except BaseException:
            self._stop.set()  # Ctrl-C or a bug here: workers finish the item in hand, then stop
            raise
        finally:
            for q in queues:
                while True:
                    try:
                        q.put(None, timeout=0.2)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            _drain(q)
            for t in threads:
                t.join()

    def _worker(self, q: queue.Queue[list[_Change] | None]) -> None:
        while True:
            changes = q.get()
            if changes is None:
                return
            if self._stop.is_set():
                continue
            try:
                self._process(changes)
            except _Fatal as exc:
                with self._lock:
                    self.fatal = self.fatal or exc.error
                self._stop.set()
            except Exception as exc:  # a bug or an unexpected SDK error: record it per item, keep going
                try:
                    for change in changes:
                        self._finish(change, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                except Exception as exc2:  # cannot even journal (disk full...): stop everything
                    with self._lock:
                        self.fatal = self.fatal or RecoveryError(
                            f"the run cannot record its results ({exc2}); fix that and run again", cause=exc2
                        )
                    self._stop.set()

    # .. one batch .........................................................................................
    def _process(self, changes: list[_Change]) -> None:
        try:
            live_by_id = self._read([c.key for c in changes])
        except RecoveryError as exc:
            for change in changes:
                self._finish(change, {"status": "failed", "error": str(exc)})
            return
        writes: list[tuple[_Change, Item | None, str]] = []
        backups: list[dict[str, Any]] = []
        for change in changes:
            live = live_by_id.get(change.key_id)
            now = _pdigest(live, change.attributes)
            if change.pending is not _NO_BACKUP:
                # a previous run backed this key up and then stopped before journaling the outcome
                if now == change.target_digest:
                    self._finish(
                        change,
                        self._done(
                            change,
                            change.pending,
                            live,
                            note="settled on resume: the write had landed before the run stopped",
                        ),
                    )
                elif now == _pdigest(change.pending, change.attributes):
                    writes.append((change, live, now))  # never landed: send it (the backup is on disk)
                else:
                    self._finish(change, self._conflict(change, live, "changed since the backup was taken"))
                continue
            if now == change.target_digest:
                self._finish(change, {"status": "unchanged", "note": "already as intended"})
            elif now != change.expected_digest:
                self._finish(change, self._conflict(change, live, "changed since it was reviewed"))
            else:
                writes.append((change, live, now))
                if self.backup is not None:
                    backups.append(self._backup_line(change, live, "read"))
        if backups and self.backup is not None:
            self.backup.append_many(backups)  # on disk before any of these writes is sent
        for change, live, now in writes:
            if self._stop.is_set():
                return
            self._finish(change, self._write(change, live, now if change.attributes is None else None))

    def _read(self, keys: list[Key]) -> dict[str, Item]:
        """Consistent reads of the live items (BatchGetItem, or GetItem per key when read_batch_size == 1)."""
        delay = 1.0
        for attempt in range(THROTTLE_ROUNDS + 1):
            self.limiter.wait_if_paused()
            try:
                if self.read_batch_size > 1:
                    found: dict[str, Item] = {}
                    for chunk in iter_chunks(keys, BATCH_GET_MAX):
                        found.update(
                            batch_get(self.ddb, self.table, chunk, self.schema, consistent_read=True)
                        )
                    return found
                out: dict[str, Item] = {}
                for key in keys:
                    resp = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
                    if "Item" in resp:
                        out[self.schema.key_id(key)] = resp["Item"]
                return out
            except (ClientError, RecoveryError) as exc:
                code = _code(exc)
                if code in FATAL_CODES:
                    raise _Fatal(
                        exc
                        if isinstance(exc, RecoveryError)
                        else explain(exc, "dynamodb:GetItem", self.table)
                    ) from exc
                throttled = code in THROTTLE_CODES or (isinstance(exc, RecoveryError) and code is None)
                if throttled and attempt < THROTTLE_ROUNDS:
                    delay = self._throttled(delay)
                    continue
                if isinstance(exc, RecoveryError):
                    raise
                raise explain(exc, "dynamodb:GetItem", self.table) from exc
            except BotoCoreError as exc:
                raise RecoveryError(f"reading {self.table} failed: {exc}", cause=exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _throttled(self, delay: float) -> float:
        """Hold every worker back a while (jittered, growing) so the engine slows down instead of failing."""
        with self._lock:
            self.counts["throttled"] += 1
        self.limiter.pause(delay * (0.5 + random.random() / 2))
        return min(delay * 2, 20.0)

    def _write(self, change: _Change, live: Item | None, live_digest: str | None = None) -> dict[str, Any]:
        """One conditional write; its outcome as a journal record. ``live_digest``: digest of ``live``."""
        key = change.key
        expr = _Expr()
        update = change.attributes is not None and live is not None and change.target is not None
        common: dict[str, Any] = {
            "TableName": self.table,
            "ReturnConsumedCapacity": "TOTAL",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if update:
            assert change.attributes is not None and change.target is not None
            sets, removes = [], []
            for attr in change.attributes:
                if attr in change.target:
                    sets.append(f"{expr.name(attr)} = {expr.value(change.target[attr])}")
                else:
                    removes.append(expr.name(attr))
            clauses = ([f"SET {', '.join(sets)}"] if sets else []) + (
                [f"REMOVE {', '.join(removes)}"] if removes else []
            )
            cond = _equals_condition(expr, live, self.schema, change.attributes)
            op, call = (
                "UpdateItem",
                lambda: self.ddb.update_item(
                    Key=key,
                    UpdateExpression=" ".join(clauses),
                    ConditionExpression=cond,
                    ReturnValues="ALL_NEW",
                    **common,
                    **expr.kwargs(),
                ),
            )
            size = len(cond) + sum(len(c) for c in clauses)
        else:
            cond = _equals_condition(expr, live, self.schema)
            returns = {"ReturnValues": "ALL_OLD"} if RETURN_OLD else {}
            if change.target is None:
                op, call = (
                    "DeleteItem",
                    lambda: self.ddb.delete_item(
                        Key=key, ConditionExpression=cond, **returns, **common, **expr.kwargs()
                    ),
                )
            else:
                op, call = (
                    "PutItem",
                    lambda: self.ddb.put_item(
                        Item=change.target, ConditionExpression=cond, **returns, **common, **expr.kwargs()
                    ),
                )
            size = len(cond)
        if size > MAX_EXPRESSION:
            return {
                "status": "failed",
                "error": f"the item has too many attributes for one DynamoDB condition "
                f"expression ({size} characters, the limit is {MAX_EXPRESSION}); patch it by hand, or with "
                "attributes=[...] naming fewer attributes",
            }
        delay = 1.0
        for attempt in range(THROTTLE_ROUNDS + 1):
            self.limiter.acquire()
            try:
                resp = call()
            except ClientError as exc:
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    found = exc.response.get("Item")
                    if _pdigest(found, change.attributes) == change.target_digest:
                        # an earlier attempt of this call landed (the SDK retried after a lost answer), or
                        # someone wrote exactly the target meanwhile: either way the item is as intended
                        return self._done(
                            change,
                            live,
                            found,
                            note="the item already equals the target (an "
                            "earlier attempt of this write landed, or someone wrote the same)",
                        )
                    return self._conflict(change, found, "changed between the read and the write")
                if code in FATAL_CODES:
                    raise _Fatal(explain(exc, f"dynamodb:{op}", self.table)) from exc
                if code in THROTTLE_CODES and attempt < THROTTLE_ROUNDS:
                    delay = self._throttled(delay)
                    continue
                return {"status": "failed", "error": str(explain(exc, f"dynamodb:{op}", self.table))}
            except BotoCoreError as exc:
                return {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc} (whether the write landed is "
                    "settled by reading the item again on the next run)",
                }
            capacity = (resp.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0
            retries = resp.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            with self._lock:
                self.write_units += capacity
                if retries:
                    self.counts["retried_calls"] += 1
            if update:
                return self._done(change, live, resp.get("Attributes"), capacity=capacity)
            old = resp.get("Attributes")  # ALL_OLD: what the write replaced
            live_digest = live_digest or item_digest(live)
            if RETURN_OLD and item_digest(old) != live_digest:
                # DynamoDB conditions cannot say "and no other attribute": one was added in the moment between
                # the read and the write. The replaced item is kept (backup + journal), the fact reported.
                added = sorted(set(old or {}) - set(live or {}))
                if self.backup is not None:
                    self.backup.append(self._backup_line(change, old, "replaced"))
                return self._done(
                    change,
                    old,
                    change.target,
                    capacity=capacity,
                    note=f"attributes {added} were added between the read and the write and "
                    "were overwritten; the replaced item is in the backup",
                    raced=True,
                )
            return self._done(
                change,
                live,
                change.target,
                capacity=capacity,
                before_digest=live_digest,
                after_digest=change.target_digest,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # .. records ...........................................................................................
    def _backup_line(self, change: _Change, item: Item | None, source: str) -> dict[str, Any]:
        return {
            **self.run_fields,
            "key_id": change.key_id,
            "key": to_json_safe(change.key),
            "item": to_json_safe(item),
            "source": source,
            "time": utc_now(),
        }

    def _done(
        self,
        change: _Change,
        before: Any,
        after: Item | None,
        *,
        capacity: float = 0.0,
        note: str | None = None,
        raced: bool = False,
        before_digest: str | None = None,
        after_digest: str | None = None,
    ) -> dict[str, Any]:
        before = None if before is _NO_BACKUP else before
        rec = {
            "status": self.verb,
            "action": change.action,
            "before": to_json_safe(before),
            "before_digest": before_digest or item_digest(before),
            "after_digest": after_digest or item_digest(after),
            "target_digest": change.target_digest,
            "capacity": capacity,
        }
        if note:
            rec["note"] = note
        if raced:
            rec["raced"] = True
        return rec

    def _conflict(self, change: _Change, found: Item | None, why: str) -> dict[str, Any]:
        rec = {
            "status": "conflict",
            "action": change.action,
            "reason": why,
            "found": to_json_safe(found),
            "found_digest": item_digest(found),
        }
        if self.verb == "patched":  # undo knows what the patch wrote only by its digest
            rec["reviewed"] = to_json_safe(change.reviewed)
        return rec

    def _finish(self, change: _Change, rec: dict[str, Any]) -> None:
        line = {
            **self.run_fields,
            "key_id": change.key_id,
            "key": to_json_safe(change.key),
            "attributes": list(change.attributes) if change.attributes else None,
            "target_digest": change.target_digest,
            **rec,
            "time": utc_now(),
        }
        self.journal.append(line)
        status = rec["status"]
        with self._lock:
            self.counts[status] += 1
            if rec.get("raced"):
                self.counts["raced"] += 1
            if status == "conflict" and len(self.conflicts) < REPORT_LIMIT:
                self.conflicts.append(line)
            elif status == "failed" and len(self.failures) < REPORT_LIMIT:
                self.failures.append(line)
            if self.bar is not None:
                self.bar.update(1)


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


# -- reports -------------------------------------------------------------------------------------------------
def _key_columns(schema: KeySchema | None, key: Any) -> dict[str, Any]:
    if schema is None:
        return {"key": json.dumps(key)}
    return schema.key_to_plain(from_json_safe(key))


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(canonical_value(value), sort_keys=True) if value is not None else "(absent)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def difference(before: Item | None, after: Item | None) -> str:
    """What differs between two versions of an item, in one line: ``status: {"S":"a"} → {"S":"b"}; ...``."""
    if before is None and after is None:
        return ""
    if before is None:
        return "the item exists now"
    if after is None:
        return "the item is gone now"
    parts = [
        f"{name}: {_short(before.get(name))} → {_short(after.get(name))}"
        for name in sorted(set(before) | set(after))
        if canonical_json({"v": before[name]} if name in before else None)
        != canonical_json({"v": after[name]} if name in after else None)
    ]
    return "; ".join(parts)


def _items_frame(schema: KeySchema | None, lines: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """One row per journal line: key columns, a one-line ``difference`` (reviewed → found), ``columns``."""
    rows = []
    for line in lines:
        row = _key_columns(schema, line["key"])
        if "found" in line and "reviewed" in line:
            row["difference"] = difference(
                from_json_safe(line.get("reviewed")), from_json_safe(line["found"])
            )
        for col in columns:
            value = line.get(col)
            row[col] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        rows.append(row)
    names = list(schema.names) if schema else ["key"]
    return pd.DataFrame(rows, columns=[*names, "difference", *columns])


@dataclass
class PatchReport:
    """What apply_plan did (or, in a dry run, would do). ``print(report)`` gives the summary."""

    incident_id: str
    table_name: str
    plan_digest: str
    patch_id: str | None
    dry_run: bool
    attributes: list[str] | None
    executor: str
    approved_by: str | None
    approved: int = 0
    not_approved: int = 0
    no_change: int = 0
    already_done: int = 0
    to_do: int = 0
    patched: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    throttled: int = 0
    retried_calls: int = 0
    raced: int = 0
    write_capacity_units: float = 0.0
    elapsed_seconds: float = 0.0
    would_write: dict[str, int] = field(default_factory=dict)
    writes: pd.DataFrame | None = None
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    rate: RateStats | None = None
    schema: KeySchema | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when every approved change is applied (or already was) and nothing failed or conflicted."""
        return not self.dry_run and self.failed == 0 and self.conflicts == 0 and self.stopped_early == 0

    @property
    def stopped_early(self) -> int:
        """Approved changes left for another run (a fatal error stopped this one)."""
        if self.dry_run:
            return 0
        return max(0, self.to_do - self.patched - self.unchanged - self.conflicts - self.failed)

    def summary(self) -> str:
        scope = "whole items" if not self.attributes else f"attributes {', '.join(self.attributes)}"
        head = (
            f"patch of {self.table_name} (incident {self.incident_id}, plan {self.plan_digest[:12]}, "
            f"{scope}) "
            f"as {self.executor}; approved by {self.approved_by or 'nobody'}"
        )
        lines = [
            head,
            f"  approved changes: {self.approved}; not approved: {self.not_approved} (never written); "
            f"no change needed: {self.no_change}",
        ]
        if self.dry_run:
            parts = ", ".join(f"{n} {a}" for a, n in sorted(self.would_write.items())) or "nothing"
            lines.append(
                f"  DRY RUN, nothing written. Would write: {parts}; already done by an earlier run: "
                f"{self.already_done}"
            )
            return "\n".join(lines)
        lines.append(
            f"  patched: {self.patched}; already as intended: {self.unchanged}; conflicts (not "
            f"overwritten): {self.conflicts}; failed: {self.failed}; done by an earlier run: "
            f"{self.already_done}"
        )
        if self.stopped_early:
            lines.append(
                f"  STOPPED EARLY: {self.stopped_early} approved changes not attempted; run again to resume"
            )
        if self.raced:
            lines.append(
                f"  {self.raced} items gained an attribute between read and write (kept in backup.jsonl)"
            )
        rate = (
            f"{self.to_do / self.elapsed_seconds:.0f} items/s" if self.elapsed_seconds and self.to_do else "-"
        )
        lines.append(
            f"  {self.elapsed_seconds:.1f} s ({rate}); write capacity units: "
            f"{self.write_capacity_units:g}; throttled: {self.throttled}; calls retried by the SDK: "
            f"{self.retried_calls}"
        )
        if self.conflicts:
            lines.append(
                "  conflicts: these items changed after the review; look at them (to_frame()), then "
                "re-run 04_diff if they still need recovering"
            )
        if self.failed:
            lines.append("  failures: run the patch again to retry them (finished items are skipped)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        """Dry run: the writes it would make. Otherwise: the items that need a look (conflicts, failures)."""
        if self.dry_run:
            return self.writes if self.writes is not None else pd.DataFrame()
        return _items_frame(
            self.schema,
            [*self.conflict_items, *self.failures],
            ["status", "reason", "error", "reviewed", "found"],
        )


@dataclass
class VerifyReport:
    """Every patched item read again and compared with its target."""

    incident_id: str
    table_name: str
    patch_id: str | None
    checked: int = 0
    matching: int = 0
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    conflicts: int = 0
    failed: int = 0
    schema: KeySchema | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.mismatched and self.pending == 0 and self.failed == 0 and self.conflicts == 0

    def summary(self) -> str:
        lines = [
            f"verification of {self.table_name} (incident {self.incident_id}, patch {self.patch_id}): "
            f"{self.matching}/{self.checked} patched items equal their target"
        ]
        if self.mismatched:
            lines.append(
                f"  {len(self.mismatched)} patched items differ from their target now (changed since "
                "the patch, or undone)"
            )
        if self.conflicts:
            lines.append(f"  {self.conflicts} conflicts were left as found (changed after the review)")
        if self.failed:
            lines.append(f"  {self.failed} items failed: run the patch again")
        if self.pending:
            lines.append(f"  {self.pending} approved changes were not attempted yet: run the patch again")
        if self.ok:
            lines.append("  OK")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        return _items_frame(
            self.schema,
            [*self.mismatched, *self.conflict_items, *self.failures],
            ["status", "reason", "error", "found"],
        )

    def check(self) -> VerifyReport:
        """Raise VerificationError if a patched item differs from its target or approved work is left."""
        from .errors import VerificationError

        if self.mismatched or self.pending or self.failed:
            raise VerificationError(self.summary())
        return self


@dataclass
class UndoReport:
    """What undo put back. ``print(report)`` gives the summary; ``ok`` is False if anything was left."""

    incident_id: str
    table_name: str
    patch_id: str | None
    executor: str
    to_undo: int = 0
    already_done: int = 0
    undone: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0
    conflict_items: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    schema: KeySchema | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.conflicts == 0 and self.failed == 0

    def summary(self) -> str:
        lines = [
            f"undo of patch {self.patch_id} on {self.table_name} (incident {self.incident_id}) as "
            f"{self.executor}",
            f"  put back: {self.undone}; already as before the patch: {self.unchanged}; conflicts (changed "
            f"since the patch, not overwritten): {self.conflicts}; failed: {self.failed}; done by an "
            f"earlier run: {self.already_done}",
        ]
        if self.conflicts:
            lines.append(
                "  conflicts: these items were written after the patch; their backups stay in "
                "backup.jsonl for a decision by hand"
            )
        if self.failed:
            lines.append("  failures: run undo again to retry them")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_frame(self) -> pd.DataFrame:
        return _items_frame(
            self.schema, [*self.conflict_items, *self.failures], ["status", "reason", "error", "found"]
        )


# -- checks before anything is written ----------------------------------------------------------------------
def _validate_attributes(attributes: Any, schema: KeySchema) -> tuple[str, ...] | None:
    if attributes is None:
        return None
    if isinstance(attributes, str) or not isinstance(attributes, (list, tuple)):
        raise InputError(
            f"attributes must be None (whole items) or a list of attribute names, got "
            f'{attributes!r}; e.g. attributes=["status", "price"].'
        )
    if not attributes:
        raise InputError(
            "attributes=[] names nothing to restore: use None for whole items, or list the names."
        )
    names = []
    for a in attributes:
        if not isinstance(a, str) or not a:
            raise InputError(f"attributes must be non-empty strings (top-level attribute names), got {a!r}.")
        if a in schema.names:
            raise InputError(
                f"attributes may not include the key attribute {a!r} (the table's key is "
                f"{schema.describe()}); a key cannot be changed in place."
            )
        names.append(a)
    return tuple(dict.fromkeys(names))


def _validate_numbers(max_workers: Any, segments: Any) -> tuple[int, int] | None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or not 1 <= max_workers <= 256:
        raise InputError(f"max_workers must be an integer between 1 and 256, got {max_workers!r}.")
    if segments is None:
        return None
    if (
        not isinstance(segments, (tuple, list))
        or len(segments) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in segments)
        or not 0 <= segments[0] < segments[1]
    ):
        raise InputError(
            f"segments must be (index, total) with 0 <= index < total, e.g. (0, 4) for the first "
            f"of four processes sharing the plan; got {segments!r}."
        )
    return int(segments[0]), int(segments[1])


def _in_segment(key_id: str, segments: tuple[int, int] | None) -> bool:
    return segments is None or planlib.segment_of(key_id, segments[1]) == segments[0]


def _check_plan(ctx: Context) -> tuple[str, dict[str, Any], planlib.Approvals]:
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


def _plan_changes(
    ctx: Context,
    approvals: planlib.Approvals,
    attributes: tuple[str, ...] | None,
    segments: tuple[int, int] | None,
    counts: Counter[str] | None = None,
) -> Iterator[tuple[planlib.PlanEntry, _Change | None]]:
    """Stream (entry, change) for the plan entries of this segment; change is None when nothing is to do."""
    for entry in planlib.iter_plan(ctx.incident):
        if not _in_segment(entry.key_id, segments):
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
        live_digest, restored_digest = item_digest(entry.live), item_digest(entry.restored)
        if live_digest != entry.live_digest or restored_digest != entry.restored_digest:
            raise InputError(
                f"plan.jsonl entry {entry.key_id} does not match its own digests: the file was edited "
                "after the "
                "review. Re-run 04_diff and approve again."
            )
        if counts is not None:
            counts["approved"] += 1
        target = entry.restored if entry.action == "put" else None
        by_attribute = attributes is not None and entry.live is not None and target is not None
        attrs = attributes if by_attribute else None
        yield (
            entry,
            _Change(
                key_id=entry.key_id,
                key=entry.key,
                target=target,
                attributes=attrs,
                expected_digest=live_digest if attrs is None else _pdigest(entry.live, attrs),
                target_digest=(restored_digest if target is not None else item_digest(None))
                if attrs is None
                else _pdigest(target, attrs),
                action="revert-attributes" if by_attribute else entry.action,
                reviewed=_project(entry.live, attrs),
                classification=entry.classification,
            ),
        )


def _journal_state(path: Any, run_id: str) -> tuple[set[str], Counter[str], set[str]]:
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


def _pending_backups(path: Any, run_id: str, final: set[str]) -> dict[str, Item | None]:
    """Backups of this run without a final outcome: the keys a stopped run may or may not have written."""
    out: dict[str, Item | None] = {}
    for line in iter_jsonl(path):
        if line.get("patch_id") == run_id and line.get("source") == "read" and line["key_id"] not in final:
            out.setdefault(line["key_id"], from_json_safe(line["item"]))
    return out


def _key_schema(ctx: Context) -> KeySchema:
    try:
        return KeySchema.of_table(ctx.aws.dynamodb, ctx.table_name)
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeTable", ctx.table_name) from exc


# -- apply --------------------------------------------------------------------------------------------------
def apply_plan(
    ctx: Context,
    *,
    dry_run: bool = True,
    max_workers: int = 8,
    max_write_rate: float | None = None,
    attributes: Sequence[str] | None = None,
    require_distinct_approver: bool = False,
    segments: tuple[int, int] | None = None,
    progress: bool = True,
    read_batch_size: int = READ_BATCH,
    limiter: RateLimiter | None = None,
) -> PatchReport:
    """Apply the approved entries of the reviewed plan to the live table (``dry_run=True``: only list them).

    ``attributes``: None restores whole items; a list reverts only those attributes of updated items
    (items the incident deleted are put back whole, items it created are deleted). ``segments=(i, n)``: only
    the keys of segment i of n, so n processes can share one plan. ``read_batch_size``: keys per consistent
    BatchGetItem (1: GetItem per key instead). ``limiter``: a RateLimiter to share (else one for
    max_write_rate).
    """
    if not isinstance(dry_run, bool):
        raise InputError(f"dry_run must be True or False, got {dry_run!r}")
    seg = _validate_numbers(max_workers, segments)
    limiter = limiter or RateLimiter(max_write_rate)  # validates max_write_rate
    if not isinstance(read_batch_size, int) or not 1 <= read_batch_size <= BATCH_GET_MAX:
        raise InputError(f"read_batch_size must be 1..{BATCH_GET_MAX}, got {read_batch_size!r}")
    incident = ctx.incident
    incident.reload()  # another process (a killed run, a parallel segment) may have moved the state on
    digest, _meta, approvals = _check_plan(ctx)
    schema = _key_schema(ctx)
    attrs = _validate_attributes(attributes, schema)
    executor = ctx.who
    if require_distinct_approver and (approvals.approved_by is None or approvals.approved_by == executor):
        raise ApprovalError(
            f"require_distinct_approver=True: the plan was approved by {approvals.approved_by or 'nobody'} "
            "and "
            f"would be executed by {executor}. Have another person approve it in 04_diff, or run the "
            "patch as "
            "another identity."
        )

    # which patch run: resume the one in progress for this plan, else start a new one
    status = incident.get("patch_status")
    run_id = incident.get("patch_id")
    resuming = bool(run_id) and incident.get("patch_plan_digest") == digest and status not in ("undone", None)
    if status == "undoing":
        raise InputError(
            f"an undo of patch {run_id} is unfinished: run undo again until it completes, then "
            "re-run 04_diff before patching again."
        )
    if resuming:
        previous = incident.get("patch_attributes")
        if (tuple(previous) if previous else None) != attrs:
            raise InputError(
                f"patch {run_id} of this plan was started with attributes={previous!r}; resume it with the "
                "same "
                "attributes, or undo it first."
            )
    if not resuming:
        run_id = f"{digest[:12]}-{utc_now().replace(':', '').replace('-', '')}"
    final, _, noted = (
        _journal_state(incident.path / JOURNAL_FILE, run_id) if resuming else (set(), None, set())
    )

    counts: Counter[str] = Counter()
    report = PatchReport(
        incident_id=incident.incident_id,
        table_name=ctx.table_name,
        plan_digest=digest,
        patch_id=run_id,
        dry_run=dry_run,
        attributes=list(attrs) if attrs else None,
        executor=executor,
        approved_by=approvals.approved_by,
        schema=schema,
    )

    # pass 1: count and check every entry (nothing is written if the plan is unusable)
    for _entry, change in _plan_changes(ctx, approvals, attrs, seg, counts):
        if change is not None and change.key_id in final:
            counts["already_done"] += 1
        elif change is not None:
            counts["to_do"] += 1
            counts[f"would:{change.action}"] += 1
    report.approved, report.not_approved = counts["approved"], counts["not_approved"]
    report.no_change, report.to_do = counts["no_change"], counts["to_do"]
    report.already_done = counts["already_done"]
    report.would_write = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("would:")}
    if counts["approved"] == 0:
        raise ApprovalError(
            f"nothing in plan {digest[:12]} is approved ({counts['not_approved']} proposed changes await a "
            "decision): "
            "approve in 04_diff (the buttons, approve=True, or approval_token=<digest>)."
        )

    if dry_run:
        rows = []
        for entry, change in _plan_changes(ctx, approvals, attrs, seg):
            if change is None or change.key_id in final:
                continue
            rows.append(
                {
                    **schema.key_to_plain(change.key),
                    "action": change.action,
                    "classification": change.classification,
                    "tenant": entry.tenant,
                    "condition": _condition_summary(change),
                }
            )
        report.writes = pd.DataFrame(
            rows, columns=[*schema.names, "action", "classification", "tenant", "condition"]
        )
        ctx.record(
            "patch dry run",
            plan_digest=digest,
            would_write=report.would_write,
            not_approved=report.not_approved,
            attributes=report.attributes,
        )
        return report

    incident.update(
        patch_id=run_id,
        patch_plan_digest=digest,
        patch_status="running",
        patch_attributes=list(attrs) if attrs else None,
    )
    ctx.record(
        "patch started",
        patch_id=run_id,
        plan_digest=digest,
        executor=executor,
        approved_by=approvals.approved_by,
        approved=report.approved,
        to_do=report.to_do,
        already_done=report.already_done,
        attributes=report.attributes,
        max_workers=max_workers,
        max_write_rate=max_write_rate,
        segments=list(seg) if seg else None,
        resumed=resuming,
    )
    pending = _pending_backups(incident.path / BACKUP_FILE, run_id, final) if resuming else {}
    run_fields = {"patch_id": run_id, "plan_digest": digest}
    started = time.monotonic()
    bar = tqdm(total=report.to_do, desc="patch", unit="item", disable=not progress)
    with (
        JsonlFile(incident.path / JOURNAL_FILE) as journal,
        JsonlFile(incident.path / BACKUP_FILE, durable=True) as backup,
    ):
        engine = _Engine(
            ctx,
            schema,
            run_fields=run_fields,
            journal=journal,
            backup=backup,
            limiter=limiter,
            max_workers=max_workers,
            read_batch_size=read_batch_size,
            bar=bar,
            verb="patched",
        )
        skipped: list[dict[str, Any]] = []

        def changes() -> Iterator[_Change]:
            for entry, change in _plan_changes(ctx, approvals, attrs, seg):
                if change is None:
                    if entry.key_id not in noted:  # journal each skipped entry once per patch run
                        skipped.append(
                            {
                                **run_fields,
                                "key_id": entry.key_id,
                                "key": to_json_safe(entry.key),
                                "status": "skipped",
                                "reason": "no change needed" if entry.action == "none" else "not approved",
                                "time": utc_now(),
                            }
                        )
                        if len(skipped) >= 1000:
                            journal.append_many(skipped)
                            skipped.clear()
                    continue
                if change.key_id in final:
                    continue
                if change.key_id in pending:
                    change.pending = pending.pop(change.key_id)
                yield change

        try:
            engine.run(changes())
            journal.append_many(skipped)
        except BaseException as exc:
            ctx.record(
                "patch interrupted",
                result="stopped",
                patch_id=run_id,
                executor=executor,
                error=f"{type(exc).__name__}: {exc}",
                **{k: engine.counts[k] for k in ("patched", "unchanged", "conflict", "failed")},
            )
            raise
        finally:
            bar.close()
    report.elapsed_seconds = time.monotonic() - started
    c = engine.counts
    report.patched, report.unchanged, report.conflicts, report.failed = (
        c["patched"],
        c["unchanged"],
        c["conflict"],
        c["failed"],
    )
    report.throttled, report.retried_calls, report.raced = c["throttled"], c["retried_calls"], c["raced"]
    report.write_capacity_units = engine.write_units
    report.conflict_items, report.failures = engine.conflicts, engine.failures
    report.rate = limiter.stats
    result = (
        "ok"
        if engine.fatal is None and not report.failed and not report.conflicts
        else ("stopped" if engine.fatal is not None else "conflicts" if not report.failed else "failed")
    )
    incident.update(patch_status="finished" if engine.fatal is None and not report.failed else "running")
    ctx.record(
        "patch finished",
        result=result,
        patch_id=run_id,
        executor=executor,
        patched=report.patched,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        failed=report.failed,
        not_approved=report.not_approved,
        already_done=report.already_done,
        raced=report.raced,
        throttled=report.throttled,
        write_capacity_units=report.write_capacity_units,
        seconds=round(report.elapsed_seconds, 3),
        error=str(engine.fatal) if engine.fatal else None,
    )
    if engine.fatal is not None:
        raise engine.fatal
    return report


# -- verify -------------------------------------------------------------------------------------------------
def _current_patch(ctx: Context) -> str:
    ctx.incident.reload()
    run_id = ctx.incident.get("patch_id")
    if not run_id:
        raise InputError(
            f"incident {ctx.incident.incident_id!r} has no patch yet: run 05_patch with dry_run=False first."
        )
    return run_id


def verify(ctx: Context, *, max_workers: int = 8) -> VerifyReport:
    """Read every item the patch wrote again and check it equals its target; list conflicts and leftovers."""
    _validate_numbers(max_workers, None)
    incident = ctx.incident
    run_id = _current_patch(ctx)
    schema = _key_schema(ctx)
    report = VerifyReport(
        incident_id=incident.incident_id, table_name=ctx.table_name, patch_id=run_id, schema=schema
    )
    final: set[str] = set()
    lock = threading.Lock()

    def patched_lines() -> Iterator[dict[str, Any]]:
        for line in iter_jsonl(incident.path / JOURNAL_FILE):
            if line.get("patch_id") != run_id or line.get("status") not in FINAL or line["key_id"] in final:
                continue
            final.add(line["key_id"])
            if line["status"] == "conflict":
                report.conflicts += 1
                if len(report.conflict_items) < REPORT_LIMIT:
                    report.conflict_items.append(line)
            elif line["status"] in ("patched", "unchanged"):
                yield line

    def check(lines: list[dict[str, Any]]) -> None:
        keys = [from_json_safe(line["key"]) for line in lines]
        found = batch_get(ctx.aws.dynamodb, ctx.table_name, keys, schema, consistent_read=True)
        for line in lines:
            live = found.get(line["key_id"])
            ok = (
                _pdigest(live, line.get("attributes")) == line["target_digest"]
                if "target_digest" in line
                else True
            )
            with lock:
                report.checked += 1
                if ok:
                    report.matching += 1
                elif len(report.mismatched) < REPORT_LIMIT:
                    report.mismatched.append(
                        {
                            **line,
                            "status": "mismatch",
                            "found": to_json_safe(live),
                            "reason": "differs from the patch's target",
                        }
                    )

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="verify") as pool:
        futures = []
        for chunk in iter_chunks(patched_lines(), BATCH_GET_MAX):
            futures.append(pool.submit(check, chunk))
            if len(futures) >= max_workers * 2:
                futures.pop(0).result()
        for f in futures:
            f.result()
    # failures still open, and approved work never attempted
    failed_ids: set[str] = set()
    for line in iter_jsonl(incident.path / JOURNAL_FILE):
        if line.get("patch_id") == run_id and line.get("status") == "failed" and line["key_id"] not in final:
            if line["key_id"] not in failed_ids and len(report.failures) < REPORT_LIMIT:
                report.failures.append(line)
            failed_ids.add(line["key_id"])
    report.failed = len(failed_ids)
    digest = incident.get("patch_plan_digest")
    if digest == planlib.load_plan_meta(incident)["digest"]:
        approvals = planlib.load_approvals(incident)
        attrs = incident.get("patch_attributes")
        for _, change in _plan_changes(ctx, approvals, tuple(attrs) if attrs else None, None):
            if change is not None and change.key_id not in final and change.key_id not in failed_ids:
                report.pending += 1
    ctx.record(
        "verify patch",
        result="ok" if report.ok else "problems",
        patch_id=run_id,
        checked=report.checked,
        matching=report.matching,
        mismatched=len(report.mismatched),
        conflicts=report.conflicts,
        failed=report.failed,
        pending=report.pending,
    )
    return report


# -- undo ---------------------------------------------------------------------------------------------------
def undo(
    ctx: Context, *, max_workers: int = 8, progress: bool = True, limiter: RateLimiter | None = None
) -> UndoReport:
    """Put back every item the patch changed, where it is still exactly what the patch wrote.

    Anything written since the patch is a conflict: reported, never overwritten. Journaled in ``undo.jsonl``
    and resumable like the patch itself.
    """
    _validate_numbers(max_workers, None)
    incident = ctx.incident
    run_id = _current_patch(ctx)
    schema = _key_schema(ctx)
    executor = ctx.who
    undo_path = incident.path / UNDO_FILE
    final, done_counts, _ = _journal_state(undo_path, run_id)
    report = UndoReport(
        incident_id=incident.incident_id,
        table_name=ctx.table_name,
        patch_id=run_id,
        executor=executor,
        already_done=sum(done_counts.values()),
        schema=schema,
    )

    def patched() -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for line in iter_jsonl(incident.path / JOURNAL_FILE):
            if (
                line.get("patch_id") == run_id
                and line.get("status") == "patched"
                and line["key_id"] not in seen
            ):
                seen.add(line["key_id"])
                yield line

    for line in patched():
        if line["key_id"] not in final:
            report.to_undo += 1
    if report.to_undo == 0 and report.already_done == 0:
        raise InputError(
            f"patch {run_id} of incident {incident.incident_id!r} changed no item: nothing to undo."
        )

    def changes() -> Iterator[_Change]:
        for line in patched():
            if line["key_id"] in final:
                continue
            before = from_json_safe(line["before"])
            yield _Change(
                key_id=line["key_id"],
                key=from_json_safe(line["key"]),
                expected_digest=line["after_digest"],
                target=before,
                target_digest=item_digest(before),
                attributes=None,
                action="put" if before is not None else "delete",
                reviewed=None,
                classification="undo",
            )

    incident.update(patch_status="undoing")
    ctx.record(
        "undo started",
        patch_id=run_id,
        executor=executor,
        to_undo=report.to_undo,
        already_done=report.already_done,
    )
    started = time.monotonic()
    bar = tqdm(total=report.to_undo, desc="undo", unit="item", disable=not progress)
    with JsonlFile(undo_path) as journal:
        engine = _Engine(
            ctx,
            schema,
            run_fields={"patch_id": run_id},
            journal=journal,
            backup=None,
            limiter=limiter or RateLimiter(None),
            max_workers=max_workers,
            read_batch_size=READ_BATCH,
            bar=bar,
            verb="undone",
        )
        try:
            engine.run(changes())
        except BaseException as exc:
            ctx.record(
                "undo interrupted",
                result="stopped",
                patch_id=run_id,
                executor=executor,
                error=f"{type(exc).__name__}: {exc}",
                undone=engine.counts["undone"],
            )
            raise
        finally:
            bar.close()
    c = engine.counts
    report.undone, report.unchanged, report.conflicts, report.failed = (
        c["undone"],
        c["unchanged"],
        c["conflict"],
        c["failed"],
    )
    report.conflict_items, report.failures = engine.conflicts, engine.failures
    report.elapsed_seconds = time.monotonic() - started
    complete = engine.fatal is None and report.failed == 0
    incident.update(patch_status="undone" if complete else "undoing")
    ctx.record(
        "undo finished",
        result="ok" if report.ok and complete else "problems",
        patch_id=run_id,
        executor=executor,
        undone=report.undone,
        unchanged=report.unchanged,
        conflicts=report.conflicts,
        failed=report.failed,
        seconds=round(report.elapsed_seconds, 3),
        error=str(engine.fatal) if engine.fatal else None,
    )
    if engine.fatal is not None:
        raise engine.fatal
    return report


__all__ = [
    "apply_plan",
    "verify",
    "undo",
    "PatchReport",
    "VerifyReport",
    "UndoReport",
    "BACKUP_FILE",
    "JOURNAL_FILE",
    "UNDO_FILE",
]
