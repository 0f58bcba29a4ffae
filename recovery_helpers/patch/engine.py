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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from .. import plan as planlib
from ..aws import Aws, error_code, explain
from ..context import Context
from ..errors import RecoveryError
from ..incident import utc_now
from ..items import Item, Key, KeySchema, item_digest, iter_chunks, to_json_safe
from ..journal import JsonlFile
from ..ratelimit import RateLimiter
from ..scan import BATCH_GET_MAX, batch_get
from .reports import REPORT_LIMIT
from .requests import (
    FATAL_CODES,
    THROTTLE_CODES,
    THROTTLE_REASONS,
    TRANSACT_MAX_ITEMS,
    Change,
    Write,
    apply_update,
    build_write,
    cancellation_codes,
    client_token,
    pdigest,
    transaction_batches,
)

#: How often one call is tried again after throttling that outlived botocore's own retries.
THROTTLE_ROUNDS = 8
#: How often a transaction whose answer was lost (after botocore's own retries) is sent again with its token.
LOST_ANSWER_ROUNDS = 2
#: Ask PutItem/DeleteItem for the replaced item (ReturnValues=ALL_OLD; free on AWS) to catch an attribute
#: added between the read and the write, which no condition expression can rule out (benchmarks may turn it
#: off).
RETURN_OLD = True
#: Keys per consistent BatchGetItem before the writes (at most 100). Each worker holds at most three such
#: units (being filled, queued, being written): memory is bounded by max_workers x 3 x unit entries.
READ_BATCH = 25
#: Keys per TransactWriteItems in the transactional write modes (DynamoDB allows up to 100). 50 measured 10-15 %
#: faster than 25 (fewer calls, less fixed cost per call) and cancels half as many items as 100 would when
#: one item conflicts (bench/README.md).
TRANSACT_BATCH = 50
#: The write mode apply_plan and undo use unless told otherwise (chosen by bench/patch.py; see bench/README.md).
DEFAULT_WRITE_MODE = "auto"
#: write_mode="auto" turns to single writes for the rest of the run once more than a quarter of at least this
#: many transactions were cancelled (contention: every cancellation costs a call and then single writes).
AUTO_MIN_TRANSACTIONS = 8


def engine_client(aws: Aws) -> Any:
    """The DynamoDB client the engine reads and writes with: the context's (same session, endpoint, retries,
    call recording), without botocore's client-side parameter validation, which cost a quarter of the
    engine's CPU; the engine builds every request itself and DynamoDB validates each one anyway."""
    return aws.with_config(Config(parameter_validation=False)).dynamodb


@dataclass(frozen=True)
class EngineTuning:
    """Knobs for benchmarks and profiling; the defaults are what the runbook uses."""

    #: ReturnValues=ALL_OLD on PutItem/DeleteItem (see RETURN_OLD).
    return_old: bool = RETURN_OLD
    #: Each worker thread runs inside ``worker_context()`` (bench/patch.py profiles the workers with it).
    worker_context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None


#: Error codes that do not say whether a write was applied.
UNKNOWN_OUTCOME_CODES = frozenset(
    {"InternalServerError", "InternalFailure", "ServiceUnavailable", "TransactionInProgressException"}
)


@dataclass
class SendOutcome:
    """What became of one transaction: written, cancelled (nothing written), refused (a definite 4xx),
    mismatch (its token was used with another request), unknown (it may or may not have run)."""

    kind: str
    share: float = 0.0  # capacity units per item when written
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _never_sent(exc: BaseException) -> bool:
    """A failure before the request left this machine (no connection was made): the write did not happen."""
    return isinstance(exc, (EndpointConnectionError, ConnectTimeoutError))


def _code(exc: BaseException) -> str | None:
    return error_code(exc) or getattr(exc, "cause_response_code", None)


class Fatal(Exception):
    """Stops every worker: an answer no retry will change (permissions, missing table)."""

    def __init__(self, error: RecoveryError) -> None:
        super().__init__(str(error))
        self.error = error


class Engine:
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
            self.unit = min(BATCH_GET_MAX, max(self.unit, self.transact_batch_size))
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
            now = pdigest(live, change.attributes)
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

    # .. the transactional path .............................................................................
    def _transact(self, batch: list[Write]) -> None:
        """One TransactWriteItems for the batch; a cancelled one is settled key by key.

        The intent (a backup line of each item read, and the transaction's token and key order) is on disk
        before each token is first sent, so a run that stops here can replay the same request on resume
        (see ``resume``). An answer that does not say whether the transaction ran (a dropped connection, a
        5xx) is retried with the same token: DynamoDB runs one token once within its idempotency window.
        """
        elements = [w.request.transact_element(self.table) for w in batch]
        token = client_token(self.token_scope, batch)
        self._intend_transaction(batch, token)
        outcome = self.send_transaction(batch, elements, token)
        if outcome.kind == "written":
            self._finish_many([(w.change, self.landed(w, outcome.share)) for w in batch])
        elif outcome.kind == "cancelled":
            self._cancelled(batch, outcome.reasons)
        elif outcome.kind == "refused":  # a definite 4xx answer: the transaction did not run
            self._one_by_one(batch, outcome.error)
        else:  # whether it ran is unknown: the next run replays it with its token
            self._finish_many(
                [
                    (w.change, {"status": "failed", "error": outcome.error, "maybe_written": True})
                    for w in batch
                ]
            )

    def send_transaction(self, batch: list[Write], elements: list[dict[str, Any]], token: str) -> SendOutcome:
        """Send one transaction until DynamoDB says what became of it (or the retries run out).

        Throttling cancellations are retried under a fresh token (nothing was written; the new token's intent
        goes to disk first); unknown outcomes under the same token. Fatal answers raise Fatal.
        """
        n = len(batch)
        ops = ", ".join(sorted({f"dynamodb:{w.request.op}" for w in batch}))
        action = f"dynamodb:TransactWriteItems ({ops})"
        delay = 1.0
        last_error = ""
        lost_rounds = 0
        for attempt in range(THROTTLE_ROUNDS + 1):
            self.limiter.acquire(n)  # the rate limit counts items, not calls
            try:
                resp = self.ddb.transact_write_items(
                    TransactItems=elements, ClientRequestToken=token, ReturnConsumedCapacity="TOTAL"
                )
            except ClientError as exc:
                code = _code(exc)
                message = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
                if code == "TransactionCanceledException":
                    reasons = cancellation_codes(exc.response, n)
                    codes = {r["Code"] for r in reasons} - {None}
                    if codes and codes <= THROTTLE_REASONS and attempt < THROTTLE_ROUNDS:
                        delay = self._throttled(delay)
                        # nothing was written: a fresh token (its intent on disk first)
                        token = client_token(f"{self.token_scope}#{attempt + 1}", batch)
                        self._intend_transaction(batch, token)
                        continue
                    with self._lock:
                        self.counts["transactions_cancelled"] += 1
                    return SendOutcome("cancelled", reasons=reasons)
                if code in FATAL_CODES:
                    for w in batch:  # refused: nothing was written
                        self.not_written(w)
                    raise Fatal(explain(exc, action, self.table)) from exc
                if code == "IdempotentParameterMismatchException":
                    return SendOutcome("mismatch", error=message)
                unknown = code in UNKNOWN_OUTCOME_CODES or _status(exc) >= 500
                if (code in THROTTLE_CODES or unknown) and attempt < THROTTLE_ROUNDS:
                    delay = self._throttled(delay)
                    last_error = message
                    continue
                with self._lock:
                    self.counts["transactions_failed"] += 1
                if not unknown:
                    for w in batch:
                        self.not_written(w)
                return SendOutcome("unknown" if unknown else "refused", error=message)
            except BotoCoreError as exc:
                # the SDK already retried this call (standard mode); a few more rounds under the same token
                last_error = f"{type(exc).__name__}: {exc}"
                lost_rounds += 1
                if lost_rounds <= LOST_ANSWER_ROUNDS and not _never_sent(exc):
                    delay = self._throttled(delay)
                    continue
                with self._lock:
                    self.counts["transactions_failed"] += 1
                return SendOutcome("unknown", error=last_error)
            capacity = sum((c.get("CapacityUnits") or 0.0) for c in resp.get("ConsumedCapacity") or [])
            self._add_capacity(capacity, bool(resp.get("ResponseMetadata", {}).get("RetryAttempts")))
            with self._lock:
                self.counts["transactions"] += 1
            return SendOutcome("written", share=capacity / n)
        raise AssertionError("unreachable")  # pragma: no cover

    def landed(self, w: Write, share: float, note: str | None = None) -> dict[str, Any]:
        return self._done(
            w.change,
            w.live,
            w.request.after,
            capacity=share,
            before_digest=w.live_digest if w.change.attributes is None else None,
            after_digest=w.change.target_digest if w.change.attributes is None else None,
            via="TransactWriteItems",
            note=note,
        )

    def _cancelled(self, batch: list[Write], reasons: list[dict[str, Any]]) -> None:
        """A cancelled transaction wrote nothing: settle the failed conditions, write the rest one by one."""
        failed_condition, others = [], []
        for w, reason in zip(batch, reasons, strict=True):
            if reason["Code"] == "ConditionalCheckFailed":
                found = reason.get("Item")  # ReturnValuesOnConditionCheckFailure=ALL_OLD; absent: no item
                # the token makes a retried transaction run once: a cancellation means none of its attempts ran
                failed_condition.append((w.change, self._condition_failed(w, found, maybe_landed=False)))
            else:  # None (cancelled because of another key), TransactionConflict, throttling...
                others.append((w, reason["Code"] or "none: another key's condition failed"))
        if failed_condition:
            self._finish_many(failed_condition)
        for w, code in others:
            if self._stop.is_set():
                return
            self._write_alone(w, f"its transaction was cancelled ({code}); written on its own")

    def _one_by_one(self, batch: list[Write], why: str) -> None:
        for w in batch:
            if self._stop.is_set():
                return
            self._write_alone(w, f"its transaction failed ({why}); written on its own")

    # .. the single-item path ...............................................................................
    def _write_each(self, writes: list[Write]) -> None:
        for w in writes:
            if self._stop.is_set():
                return
            self._finish(w.change, self._write_single(w))

    def _write_alone(self, w: Write, why: str) -> None:
        rec = self._write_single(w)
        rec["note"] = f"{why}; {rec['note']}" if rec.get("note") else why
        self._finish(w.change, rec)

    def _write_single(self, w: Write) -> dict[str, Any]:
        """One conditional write, its item backed up (durably) right before it is sent; its outcome."""
        change, live, request = w.change, w.live, w.request
        op = request.op
        extra: dict[str, Any] = {}
        if op == "UpdateItem" or self.tuning.return_old:
            extra["ReturnValues"] = "ALL_OLD"
        method = {"PutItem": self.ddb.put_item, "DeleteItem": self.ddb.delete_item}.get(
            op, self.ddb.update_item
        )
        self._intend_single(w)
        delay = 1.0
        maybe_landed = False  # an attempt whose answer did not say whether it was applied
        for attempt in range(THROTTLE_ROUNDS + 1):
            self.limiter.acquire()
            self._tls.maybe_landed = False
            try:
                resp = method(
                    TableName=self.table,
                    ReturnConsumedCapacity="TOTAL",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request.params,
                    **extra,
                )
            except ClientError as exc:
                maybe_landed = maybe_landed or self._tls.maybe_landed
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    return self._condition_failed(w, exc.response.get("Item"), maybe_landed=maybe_landed)
                if code in FATAL_CODES:
                    self.not_written(w)  # refused: nothing was written
                    raise Fatal(explain(exc, f"dynamodb:{op}", self.table)) from exc
                if code in THROTTLE_CODES and attempt < THROTTLE_ROUNDS:
                    delay = self._throttled(delay)
                    continue
                error = str(explain(exc, f"dynamodb:{op}", self.table))
                if maybe_landed or _status(exc) >= 500 or code in UNKNOWN_OUTCOME_CODES:
                    return {"status": "failed", "error": error, "maybe_written": True}
                self.not_written(w)
                return {"status": "failed", "error": error, "maybe_written": False}
            except BotoCoreError as exc:
                maybe_landed = maybe_landed or self._tls.maybe_landed or not _never_sent(exc)
                if not maybe_landed:
                    self.not_written(w)
                return {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}"
                    + (
                        " (the write may have landed: the next run settles it by reading the item again)"
                        if maybe_landed
                        else " (the write never reached DynamoDB: the next run sends it again)"
                    ),
                    "maybe_written": maybe_landed,
                }
            capacity = (resp.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0
            self._add_capacity(capacity, bool(resp.get("ResponseMetadata", {}).get("RetryAttempts")))
            if op == "UpdateItem":
                # ALL_OLD: the item as it really was (an attribute not listed may have changed since the read;
                # it is kept, and the backup and the journal hold the true before/after for undo)
                old = resp.get("Attributes")
                if old is None or change.attributes is None or change.target is None:  # pragma: no cover
                    return self._done(change, live, request.after, capacity=capacity, via=op)
                if item_digest(old) != item_digest(live) and self.backup is not None:
                    self.backup.append(self._backup_line(change, old, "replaced"))
                return self._done(
                    change,
                    old,
                    apply_update(old, change.attributes, change.target),
                    capacity=capacity,
                    via=op,
                )
            old = resp.get("Attributes")  # ALL_OLD: what the write replaced
            if self.tuning.return_old and item_digest(old) != w.live_digest:
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
                    via=op,
                )
            return self._done(
                change,
                live,
                change.target,
                capacity=capacity,
                before_digest=w.live_digest,
                after_digest=change.target_digest,
                via=op,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _condition_failed(self, w: Write, found: Item | None, *, maybe_landed: bool) -> dict[str, Any]:
        """The condition did not hold on the item found.

        ``maybe_landed``: an earlier attempt of this very write may have been applied (the SDK retried after
        an answer that did not say): then the run cannot tell its own write from another writer's, and says
        so (ambiguous). Otherwise the item was written by someone else: the target already (unchanged, not
        this run's write, so undo leaves it) or something else (conflict).
        """
        if maybe_landed:
            return self.ambiguous(
                w.change,
                w.live,
                found,
                "an earlier attempt of this write may have landed (the SDK retried after an answer that did "
                "not say) and the condition failed on the retry: the item was changed by this write or by "
                "another writer",
            )
        if pdigest(found, w.change.attributes) == w.change.target_digest:
            return {
                "status": "unchanged",
                "note": "another writer had already written the target before this write; not this run's "
                "write (undo leaves it)",
            }
        return self._conflict(w.change, found, "changed between the read and the write")

    # .. intents: what is on disk before a write is sent ......................................................
    def _intend_single(self, w: Write) -> None:
        """The backup of the item a single write replaces, on disk before the write is sent."""
        if self.backup is not None:
            self.backup.append(self._backup_line(w.change, w.live, "read", via=w.request.op))

    def _intend_transaction(self, batch: list[Write], token: str) -> None:
        """The backups of a transaction's items, each with the token and its place in the request (what a
        replay needs to rebuild it byte for byte), on disk before the token is sent."""
        if self.backup is None:
            return
        lines = []
        for i, w in enumerate(batch):
            line = self._backup_line(w.change, w.live, "read", via="TransactWriteItems", token=token)
            line["seq"], line["of"] = i, len(batch)
            lines.append(line)
        self.backup.append_many(lines)

    def not_written(self, w: Write) -> None:
        """The write of this key was refused or never reached DynamoDB: its intent is withdrawn."""
        if self.backup is not None:
            self.backup.append(
                {**self.run_fields, "key_id": w.change.key_id, "source": "not-written", "time": utc_now()}
            )

    def _note_retry(self, response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        """botocore's needs-retry hook (every attempt's answer): remember answers that do not say whether a
        write was applied (5xx, a connection lost after sending), so a condition failing on the retry is not
        taken for another writer's doing."""
        if caught_exception is not None:
            if not _never_sent(caught_exception):
                self._tls.maybe_landed = True
        elif response is not None:
            http = response[0] if isinstance(response, tuple) else None
            if http is not None and getattr(http, "status_code", 200) >= 500:
                self._tls.maybe_landed = True

    # .. records ...........................................................................................
    def _backup_line(
        self,
        change: Change,
        item: Item | None,
        source: str,
        *,
        via: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        line = {
            **self.run_fields,
            "key_id": change.key_id,
            "key": change.key,
            "item": item,
            "source": source,
            "time": utc_now(),
        }
        if via:
            line["via"] = via
        if token:
            line["token"] = token
        return line

    def _done(
        self,
        change: Change,
        before: Any,
        after: Item | None,
        *,
        capacity: float = 0.0,
        note: str | None = None,
        raced: bool = False,
        before_digest: str | None = None,
        after_digest: str | None = None,
        via: str | None = None,
    ) -> dict[str, Any]:
        rec = {
            "status": self.verb,
            "action": change.action,
            "before": before,
            "before_digest": before_digest or item_digest(before),
            "after_digest": after_digest or item_digest(after),
            "target_digest": change.target_digest,
            "capacity": capacity,
        }
        if via:
            rec["via"] = via
        if note:
            rec["note"] = note
        if raced:
            rec["raced"] = True
        return rec

    def _conflict(self, change: Change, found: Item | None, why: str) -> dict[str, Any]:
        rec = {
            "status": "conflict",
            "action": change.action,
            "reason": why,
            "found": found,
            "found_digest": item_digest(found),
        }
        if self.verb == "patched":  # undo knows what the patch wrote only by its digest
            rec["reviewed"] = change.reviewed
        return rec

    def ambiguous(self, change: Change, before: Item | None, found: Item | None, why: str) -> dict[str, Any]:
        """A key the run cannot tell whether it wrote: both versions, for the engineer to decide."""
        rec = {
            "status": "ambiguous",
            "action": change.action,
            "reason": why,
            "before": before,
            "found": found,
            "found_digest": item_digest(found),
            "target": change.target,
        }
        if self.verb == "patched":
            rec["reviewed"] = change.reviewed
        return rec

    def _finish(self, change: Change, rec: dict[str, Any]) -> None:
        self._finish_many([(change, rec)])

    def finish_many(self, outcomes: list[tuple[Change, dict[str, Any]]]) -> None:
        """Journal and count outcomes settled outside the workers (resume)."""
        self._finish_many(outcomes)

    def read_items(self, keys: list[Key]) -> dict[str, Item]:
        """Consistent reads of live items by key_id, with the engine's throttling and error handling."""
        return self._read(keys)

    def _finish_many(self, outcomes: list[tuple[Change, dict[str, Any]]]) -> None:
        """Journal outcomes (one append for all of them), then count them.

        Lines hold items as boto3 returned them; JsonlFile writes binary values as base64 text.
        """
        now = utc_now()
        lines = [
            {
                **self.run_fields,
                "key_id": change.key_id,
                "key": change.key,
                "attributes": list(change.attributes) if change.attributes else None,
                "target_digest": change.target_digest,
                **rec,
                "time": now,
            }
            for change, rec in outcomes
        ]
        self.journal.append_many(lines)
        with self._lock:
            for line in lines:
                status = line["status"]
                self.counts[status] += 1
                via = line.get("via")
                if (
                    status == self.verb and via
                ):  # written (or found written) by this run, not settled on resume
                    self.counts["via_transaction" if via == "TransactWriteItems" else "via_single"] += 1
                if line.get("raced"):
                    self.counts["raced"] += 1
                if status == "conflict" and len(self.conflicts) < REPORT_LIMIT:
                    self.conflicts.append(to_json_safe(line))  # as in the journal file: base64 for binary
                elif status == "ambiguous" and len(self.ambiguous_items) < REPORT_LIMIT:
                    self.ambiguous_items.append(to_json_safe(line))
                elif status == "failed" and len(self.failures) < REPORT_LIMIT:
                    self.failures.append(to_json_safe(line))
            if self.bar is not None:
                self.bar.update(len(lines))

    def writes_by_path(self) -> dict[str, int]:
        """Items written by transactions and by single writes."""
        return {"transact": self.counts["via_transaction"], "single": self.counts["via_single"]}


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
