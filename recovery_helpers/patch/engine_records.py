"""The engine's records: the backup lines on disk before a write (intents) and the journal lines after it."""

from __future__ import annotations

from typing import Any

from ..incident import utc_now
from ..items import Item, Key, item_digest, to_json_safe
from .reports import REPORT_LIMIT
from .requests import Change, Write


class EngineRecords:
    """Intents, outcome records and their journalling; a part of ``Engine`` (which holds the state used here)."""

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
        lines, now = [], utc_now()
        for i, w in enumerate(batch):
            line = self._backup_line(w.change, w.live, "read", via="TransactWriteItems", token=token, now=now)
            line["seq"], line["of"] = i, len(batch)
            lines.append(line)
        self.backup.append_many(lines)

    def not_written(self, w: Write) -> None:
        """The write of this key was refused or never reached DynamoDB: its intent is withdrawn."""
        if self.backup is not None:
            self.backup.append(
                {**self.run_fields, "key_id": w.change.key_id, "source": "not-written", "time": utc_now()}
            )

    # .. records ...........................................................................................
    def _backup_line(
        self,
        change: Change,
        item: Item | None,
        source: str,
        *,
        via: str | None = None,
        token: str | None = None,
        now: str | None = None,
    ) -> dict[str, Any]:
        line = {
            **self.run_fields,
            "key_id": change.key_id,
            "key": change.key,
            "item": item,
            "source": source,
            "time": now or utc_now(),
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
