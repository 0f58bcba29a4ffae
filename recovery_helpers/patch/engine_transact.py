"""The engine's transactional path: one TransactWriteItems per batch, a cancelled one settled key by key."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws import explain
from .engine_basics import (
    LOST_ANSWER_ROUNDS,
    THROTTLE_ROUNDS,
    UNKNOWN_OUTCOME_CODES,
    Fatal,
    SendOutcome,
    _code,
    _never_sent,
    _status,
)
from .requests import (
    FATAL_CODES,
    THROTTLE_CODES,
    THROTTLE_REASONS,
    Write,
    cancellation_codes,
    client_token,
)


class TransactPath:
    """Writes by TransactWriteItems; a part of ``Engine`` (which holds the state and records used here)."""

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
