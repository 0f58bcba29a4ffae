"""The engine shared by patch and undo: worker threads that read, compare, back up, write and journal.

Work is split by a stable hash of key_id over ``max_workers`` threads. Each worker takes its keys a unit at
a time (READ_BATCH keys, or ``transact_batch_size`` in transactional modes), reads them with one consistent
BatchGetItem, settles those that need no write (unchanged, conflict), backs the others up durably (fsync),
writes them, and journals each outcome.

Two write paths, the same condition on every key (the item still equals the version read):

* single: one PutItem / DeleteItem / UpdateItem per key, with ``ReturnValues=ALL_OLD`` so that an attribute
  added between the read and the write is caught and kept (``raced``);
* transact: one TransactWriteItems per batch of keys, with a ClientRequestToken derived from the run and the
  batch, so that a retried call is idempotent on AWS. A cancelled transaction wrote nothing: the keys whose
  condition failed are settled from the item DynamoDB returns (conflict, or already the target), the others
  are written one by one on the single path. Transactions cannot return the replaced items, so on this path
  the guarantee is the backup read plus the condition on every attribute read (see docs/steps/05_patch.md).
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import plan as planlib
from ..aws import explain
from ..context import Context
from ..errors import RecoveryError
from ..items import Item, Key, KeySchema, iter_chunks
from ..journal import JsonlFile
from ..ratelimit import RateLimiter
from ..scan import BATCH_GET_MAX, batch_get
from .engine_basics import (
    AUTO_MIN_TRANSACTIONS,
    DEFAULT_WRITE_MODE,
    LOST_ANSWER_ROUNDS,
    READ_BATCH,
    RETURN_OLD,
    THROTTLE_ROUNDS,
    TRANSACT_BATCH,
    UNKNOWN_OUTCOME_CODES,
    EngineTuning,
    Fatal,
    SendOutcome,
    _code,
    engine_client,
)
from .engine_records import EngineRecords
from .engine_single import SinglePath
from .engine_transact import TransactPath
from .requests import (
    FATAL_CODES,
    THROTTLE_CODES,
    TRANSACT_MAX_ITEMS,
    Change,
    Write,
    build_write,
    transaction_batches,
)

__all__ = [
    "AUTO_MIN_TRANSACTIONS",
    "DEFAULT_WRITE_MODE",
    "LOST_ANSWER_ROUNDS",
    "READ_BATCH",
    "RETURN_OLD",
    "THROTTLE_ROUNDS",
    "TRANSACT_BATCH",
    "UNKNOWN_OUTCOME_CODES",
    "Engine",
    "EngineTuning",
    "Fatal",
    "SendOutcome",
    "engine_client",
]


class Engine(EngineRecords, TransactPath, SinglePath):
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
        write_mode: str = "single",
        transact_batch_size: int = 25,
        token_scope: str = "",
        tuning: EngineTuning | None = None,
    ) -> None:
        self.ctx = ctx
        self.tuning = tuning or EngineTuning()
        self.ddb = engine_client(ctx.aws)
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
        self.write_mode = write_mode
        rate = limiter.rate
        # a transaction never carries more items than one second of max_write_rate allows
        cap = TRANSACT_MAX_ITEMS if rate is None else max(1, int(rate))
        self.transact_batch_size = max(1, min(transact_batch_size, cap))
        self.unit = max(1, min(read_batch_size, BATCH_GET_MAX))
        if write_mode != "single":
            # one consistent BatchGetItem (up to 100 keys) reads for as many whole transactions as it can hold
            batch = self.transact_batch_size
            self.unit = max(self.unit, batch * max(1, BATCH_GET_MAX // batch))
        self.token_scope = token_scope or "|".join(f"{k}={v}" for k, v in sorted(run_fields.items()))
        self.counts: Counter[str] = Counter()
        self.conflicts: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.write_units = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.fatal: RecoveryError | None = None
        self.ambiguous_items: list[dict[str, Any]] = []
        self._tls = threading.local()
        self.ddb.meta.events.register("needs-retry.dynamodb", self._note_retry)

    # .. orchestration ......................................................................................
    def run(self, changes: Iterable[Change]) -> None:
        """Route changes to workers by a stable hash of key_id; return when done (or on a fatal error)."""
        workers = self.max_workers
        queues: list[queue.Queue[list[Change] | None]] = [queue.Queue(maxsize=1) for _ in range(workers)]
        threads = [
            threading.Thread(target=self._worker, args=(q,), name=f"patch-{i}", daemon=True)
            for i, q in enumerate(queues)
        ]
        for t in threads:
            t.start()
        buffers: list[list[Change]] = [[] for _ in range(workers)]

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
                if len(buffers[i]) >= self.unit:
                    hand_over(i)
            for i in range(workers):
                if buffers[i]:
                    hand_over(i)
        except BaseException:
            self._stop.set()  # Ctrl-C or a bug here: workers finish the call in hand, then stop
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

    def _worker(self, q: queue.Queue[list[Change] | None]) -> None:
        around = self.tuning.worker_context
        with around() if around is not None else contextlib.nullcontext():
            self._work(q)

    def _work(self, q: queue.Queue[list[Change] | None]) -> None:
        while True:
            changes = q.get()
            if changes is None:
                return
            if self._stop.is_set():
                continue
            try:
                self._process(changes)
            except Fatal as exc:
                with self._lock:
                    self.fatal = self.fatal or exc.error
                self._stop.set()
            except Exception as exc:  # noqa: BLE001 -- a bug or an unexpected SDK error: record it per item
                try:
                    for change in changes:
                        self._finish(change, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                except Exception as exc2:  # noqa: BLE001 -- cannot even journal (disk full): stop everything
                    with self._lock:
                        self.fatal = self.fatal or RecoveryError(
                            f"the run cannot record its results ({exc2}); fix that and run again", cause=exc2
                        )
                    self._stop.set()

    # .. one unit of keys ...................................................................................
    def _process(self, changes: list[Change]) -> None:
        try:
            live_by_id = self._read([c.key for c in changes])
        except RecoveryError as exc:
            for change in changes:
                self._finish(change, {"status": "failed", "error": str(exc)})
            return
        writes: list[Write] = []
        settled: list[tuple[Change, dict[str, Any]]] = []
        for change in changes:
            live = live_by_id.get(change.key_id)
            now = change.digest_of(live)
            if now == change.target_digest:
                settled.append((change, {"status": "unchanged", "note": "already as intended"}))
            elif now != change.expected_digest:
                settled.append((change, self._conflict(change, live, "changed since it was reviewed")))
            else:
                writes.append(self._prepare(change, live, now))
        if settled:
            self._finish_many(settled)
        sendable = []
        for w in writes:
            problem = w.request.too_large()
            if problem:
                self._finish(w.change, {"status": "failed", "error": problem})
            else:
                sendable.append(w)
        if self.write_mode == "single":
            self._write_each(sendable)
            return
        for batch in transaction_batches(sendable, self.transact_batch_size):
            if self._stop.is_set():
                return
            if self._use_transaction(len(batch)):
                self._transact(batch)
            else:
                self._write_each(batch)

    def _prepare(self, change: Change, live: Item | None, now: str) -> Write:
        return Write(change, live, now, build_write(change, live, self.schema))

    def _use_transaction(self, n: int) -> bool:
        if self.write_mode == "transact":
            return True
        if self.write_mode != "auto" or n < 2:  # one item: a single write costs half and returns the old item
            return False
        with self._lock:
            cancelled = self.counts["transactions_cancelled"]
            sent = self.counts["transactions"] + cancelled
        return not (sent >= AUTO_MIN_TRANSACTIONS and cancelled * 4 > sent)

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
                    raise Fatal(
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

    def _add_capacity(self, units: float, retried: bool) -> None:
        with self._lock:
            self.write_units += units
            if retried:
                self.counts["retried_calls"] += 1

    def writes_by_path(self) -> dict[str, int]:
        """Items written by transactions and by single writes."""
        return {"transact": self.counts["via_transaction"], "single": self.counts["via_single"]}


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
