"""The engine's single-item path: one conditional PutItem / DeleteItem / UpdateItem per key."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws import explain
from ..items import Item, item_digest
from .engine_basics import THROTTLE_ROUNDS, UNKNOWN_OUTCOME_CODES, Fatal, _code, _never_sent, _status
from .requests import FATAL_CODES, THROTTLE_CODES, Write, apply_update, pdigest


class SinglePath:
    """Writes one item per call; a part of ``Engine`` (which holds the state and records used here)."""

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
        op = w.request.op
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
                    **w.request.params,
                    **extra,
                )
            except ClientError as exc:
                maybe_landed = maybe_landed or self._tls.maybe_landed
                code = _code(exc)
                if (
                    code != "ConditionalCheckFailedException"
                    and code not in FATAL_CODES
                    and code in THROTTLE_CODES
                    and attempt < THROTTLE_ROUNDS
                ):
                    delay = self._throttled(delay)
                    continue
                return self._single_refused(w, exc, maybe_landed=maybe_landed)
            except BotoCoreError as exc:
                maybe_landed = maybe_landed or self._tls.maybe_landed or not _never_sent(exc)
                return self._single_lost(w, exc, maybe_landed=maybe_landed)
            return self._single_written(w, resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def _single_refused(self, w: Write, exc: ClientError, *, maybe_landed: bool) -> dict[str, Any]:
        """DynamoDB's error answer to a single write (after the throttling retries): its outcome."""
        op = w.request.op
        code = _code(exc)
        if code == "ConditionalCheckFailedException":
            return self._condition_failed(w, exc.response.get("Item"), maybe_landed=maybe_landed)
        if code in FATAL_CODES:
            self.not_written(w)  # refused: nothing was written
            raise Fatal(explain(exc, f"dynamodb:{op}", self.table)) from exc
        error = str(explain(exc, f"dynamodb:{op}", self.table))
        if maybe_landed or _status(exc) >= 500 or code in UNKNOWN_OUTCOME_CODES:
            return {"status": "failed", "error": error, "maybe_written": True}
        self.not_written(w)
        return {"status": "failed", "error": error, "maybe_written": False}

    def _single_lost(self, w: Write, exc: BotoCoreError, *, maybe_landed: bool) -> dict[str, Any]:
        """No answer from DynamoDB (after the SDK's retries): failed, and whether the write may have landed."""
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

    def _single_written(self, w: Write, resp: dict[str, Any]) -> dict[str, Any]:
        """The write was applied: its outcome, from the item it replaced (ReturnValues=ALL_OLD)."""
        change, live, request = w.change, w.live, w.request
        op = request.op
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
