"""Resuming a stopped run: the writes that were in flight when it stopped, and what became of each.

Every write is preceded on disk (fsync) by its intent: the backup of the item it replaces, and for a
transaction its ClientRequestToken and the order of its keys. A key whose last intent has no outcome in the
journal was in flight: its write may or may not have been applied. Reading the item cannot tell, because
another writer may have acted since (a resumed patch must never undo an application's delete, issue 15 A-D):

* a transaction still inside DynamoDB's idempotency window (10 minutes; the runbook uses 9 to keep a margin
  for clocks) is sent again, byte for byte, with its token. DynamoDB runs one token once: if it ran before,
  the answer is success and nothing is written again (the write was the run's own); if it never ran, it runs
  now under its original conditions, or is cancelled (nothing was ever written: the key is handled as fresh).
  A replay is sent only if it cannot write over an item the backup does not hold: the item read now must be
  the backed-up one, or what the write leaves, or differ on an attribute the condition compares;
* anything else (a single PutItem/DeleteItem/UpdateItem, an old transaction, a request that cannot be
  rebuilt) is **ambiguous**: journaled with both versions (the backup and the item found) and neither written
  nor skipped silently. The engineer decides (docs/steps/05_patch-safety.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..items import Item, from_json_safe, item_digest
from ..journal import iter_jsonl
from .engine import Engine
from .engine_basics import SendOutcome
from .requests import Change, Write, build_write, pdigest, project

#: DynamoDB keeps a ClientRequestToken for 10 minutes after the request completes; a replay is sent only while
#: the intent is younger than this (seconds), so clock differences and the time the request took never matter.
REPLAY_WINDOW_SECONDS = 540.0


@dataclass
class InFlight:
    """A key whose last write intent has no outcome: the item backed up, how the write went out."""

    key_id: str
    item: Item | None
    via: str  # PutItem | DeleteItem | UpdateItem | TransactWriteItems | "unknown" (an older run folder)
    token: str | None = None
    time: str | None = None


@dataclass
class InFlightSet:
    keys: dict[str, InFlight] = field(default_factory=dict)
    transactions: dict[str, list[str]] = field(default_factory=dict)  # token -> key_ids in request order
    token_items: dict[str, dict[str, Item | None]] = field(default_factory=dict)  # token -> key_id -> item
    token_times: dict[str, str] = field(default_factory=dict)

    def needed_keys(self) -> set[str]:
        """Every key a settlement needs a Change for (the in-flight keys and their transactions' other keys)."""
        out = set(self.keys)
        for key in self.keys.values():
            if key.token and key.token in self.transactions:
                out.update(self.transactions[key.token])
        return out


def in_flight(backup_path: Path, run_id: str, final: set[str]) -> InFlightSet:
    """The writes of run ``run_id`` (lines with ``patch_id == run_id``) that were in flight when it stopped."""
    found = InFlightSet()
    places: dict[str, dict[int, str]] = {}
    sizes: dict[str, int] = {}
    for line in iter_jsonl(backup_path):
        if line.get("patch_id") != run_id:
            continue
        source = line.get("source")
        if source == "read":
            key_id = line["key_id"]
            item = from_json_safe(line.get("item"))
            via, token = line.get("via") or "unknown", line.get("token")
            found.keys[key_id] = InFlight(key_id, item, via, token, line.get("time"))
            if token:
                found.token_items.setdefault(token, {})[key_id] = item
                found.token_times.setdefault(token, line.get("time") or "")
                places.setdefault(token, {})[int(line.get("seq", -1))] = key_id
                sizes[token] = int(line.get("of", 0))
        elif source == "not-written":
            found.keys.pop(line["key_id"], None)
    for token, at in places.items():
        # every element's line is there: the request can be rebuilt
        if sorted(at) == list(range(sizes[token])):
            found.transactions[token] = [at[i] for i in range(sizes[token])]
    for key_id in list(found.keys):
        if key_id in final:
            del found.keys[key_id]
    return found


def _age_seconds(stamp: str | None, now: dt.datetime) -> float:
    if not stamp:
        return float("inf")
    try:
        then = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return float("inf")
    return (now - then).total_seconds()


def _could_apply(write: Write, live: Item | None) -> bool:
    """Whether the write's condition (the item equals the one backed up, on the compared attributes) holds on
    ``live``: DynamoDB conditions cannot see an attribute added to the item, so this is what a replay risks."""
    backed_up, attrs = write.live, write.change.attributes
    if backed_up is None or live is None:
        return backed_up is None and live is None
    if attrs is not None:
        return pdigest(live, attrs) == pdigest(backed_up, attrs)
    return item_digest(project(live, sorted(backed_up))) == item_digest(backed_up)


def _why(live: Item | None, backed_up: Item | None, after: Item | None) -> str:
    if item_digest(live) == item_digest(backed_up):
        return (
            "the run stopped with this write in flight, and the item is as it was before the write: the "
            "write never landed, or it landed and another writer put the old version back"
        )
    if item_digest(live) == item_digest(after):
        return (
            "the run stopped with this write in flight, and the item is what the write was to leave: the "
            "write landed, or another writer wrote the same"
        )
    return (
        "the run stopped with this write in flight, and the item has changed since its backup: the write "
        "landed and the item was changed afterwards, or it never landed and another writer changed it"
    )


def settle_in_flight(
    engine: Engine,
    pending: InFlightSet,
    changes: dict[str, Change],
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> set[str]:
    """Settle every in-flight key (journaled by the engine); the key_ids settled, not to be fed again.

    Keys proven never written (their transaction, replayed, was cancelled) are not in the result: the run
    handles them as fresh keys (read, compare with the reviewed version, back up, write).
    """
    settled: set[str] = set()
    if not pending.keys:
        return settled
    live = engine.read_items([changes[k].key for k in pending.keys if k in changes])
    done_tokens: set[str] = set()
    for key in list(pending.keys.values()):
        if key.key_id in settled or key.key_id not in changes:
            continue
        token = key.token
        if key.via == "TransactWriteItems" and token and token not in done_tokens:
            done_tokens.add(token)
            settled |= _replay(engine, pending, token, changes, live, now())
            continue
        if key.key_id in settled:
            continue
        change = changes[key.key_id]
        after = build_write(change, key.item, engine.schema).after
        found = live.get(key.key_id)
        engine.finish_many(
            [(change, engine.ambiguous(change, key.item, found, _why(found, key.item, after)))]
        )
        settled.add(key.key_id)
    # keys whose Change is gone (no longer approved, or not in this segment) stay in flight for a later run
    return settled


def _replay(
    engine: Engine,
    pending: InFlightSet,
    token: str,
    changes: dict[str, Change],
    live: dict[str, Item],
    when: dt.datetime,
) -> set[str]:
    """Send transaction ``token`` again exactly as it was sent; settle its in-flight keys from the answer."""
    order = pending.transactions.get(token, [])
    items = pending.token_items.get(token, {})
    mine = [k for k in order if k in pending.keys and pending.keys[k].token == token]
    if not mine:
        return set()
    rebuildable = bool(order) and all(k in changes and k in items for k in order)
    writes = _rebuild(engine, order, items, changes) if rebuildable else []
    by_id = {w.change.key_id: w for w in writes}
    age = _age_seconds(pending.token_times.get(token), when)

    def all_ambiguous(why: str) -> set[str]:
        return _all_ambiguous(engine, pending, mine, changes, live, by_id, why)

    why_not = _why_not_replay(rebuildable, age, mine, by_id, live)
    if why_not:
        return all_ambiguous(why_not)
    elements = [w.request.transact_element(engine.table) for w in writes]
    outcome = engine.send_transaction(writes, elements, token)  # Fatal (permissions...) stops the run
    return _settle_replay(engine, outcome, mine, by_id, all_ambiguous)


def _rebuild(
    engine: Engine, order: list[str], items: dict[str, Item], changes: dict[str, Change]
) -> list[Write]:
    """The writes of the transaction, in the order they were sent, built from the items read before it."""
    writes: list[Write] = []
    for key_id in order:
        change, item = changes[key_id], items[key_id]
        writes.append(
            Write(change, item, pdigest(item, change.attributes), build_write(change, item, engine.schema))
        )
    return writes


def _all_ambiguous(
    engine: Engine,
    pending: InFlightSet,
    mine: list[str],
    changes: dict[str, Change],
    live: dict[str, Item],
    by_id: dict[str, Write],
    why: str,
) -> set[str]:
    """Journal every in-flight key of the transaction as ambiguous (both versions, for the engineer)."""
    outcomes = []
    for key_id in mine:
        if key_id not in changes:
            continue
        change, item = changes[key_id], pending.keys[key_id].item
        after = by_id[key_id].request.after if key_id in by_id else None
        found = live.get(key_id)
        outcomes.append((change, engine.ambiguous(change, item, found, f"{_why(found, item, after)}; {why}")))
    engine.finish_many(outcomes)
    return {c.key_id for c, _ in outcomes}


def _why_not_replay(
    rebuildable: bool, age: float, mine: list[str], by_id: dict[str, Write], live: dict[str, Item]
) -> str | None:
    """Why replaying the transaction could not tell what became of it (None: it can be replayed)."""
    if not rebuildable:
        return "its transaction cannot be rebuilt from the run folder to replay it"
    if age >= REPLAY_WINDOW_SECONDS:
        return (
            f"its transaction was sent {age / 60:.0f} minutes ago, past DynamoDB's 10-minute idempotency "
            "window, so replaying it could not tell"
        )
    risky = [
        k
        for k in mine
        if item_digest(live.get(k)) not in (item_digest(by_id[k].live), item_digest(by_id[k].request.after))
        and _could_apply(by_id[k], live.get(k))
    ]
    if risky:
        return (
            "replaying its transaction could write over a version of the item that has no backup (an "
            "attribute the condition does not compare changed since)"
        )
    return None


def _settle_replay(
    engine: Engine,
    outcome: SendOutcome,
    mine: list[str],
    by_id: dict[str, Write],
    all_ambiguous: Callable[[str], set[str]],
) -> set[str]:
    """Settle the in-flight keys from the replay's answer; the keys settled (final now or left failed)."""
    if outcome.kind == "written":
        note = (
            "replayed on resume with its ClientRequestToken: DynamoDB ran this transaction once (before the "
            "run stopped, or now)"
        )
        engine.finish_many([(by_id[k].change, engine.landed(by_id[k], outcome.share, note)) for k in mine])
        return set(mine)
    if outcome.kind == "cancelled":
        for k in mine:  # it never ran: every key is handled as a fresh one (its intent withdrawn first)
            engine.not_written(by_id[k])
        return set()
    if outcome.kind == "mismatch":
        return all_ambiguous(f"DynamoDB refused the replay ({outcome.error})")
    # unknown or refused: leave it in flight for the next run (journaled as failed, not final)
    engine.finish_many(
        [
            (
                by_id[k].change,
                {"status": "failed", "error": f"replay: {outcome.error}", "maybe_written": True},
            )
            for k in mine
        ]
    )
    return set(mine)


def changes_for(keys: set[str], stream: Iterable[Change]) -> dict[str, Change]:
    """The Changes of ``keys`` from a stream of Changes."""
    out: dict[str, Change] = {}
    if not keys:
        return out
    for change in stream:
        if change.key_id in keys:
            out[change.key_id] = change
    return out


__all__ = ["REPLAY_WINDOW_SECONDS", "InFlight", "InFlightSet", "changes_for", "in_flight", "settle_in_flight"]
