"""The demo's writes: generated orders, and the bug's and the tenants' writes through the app with the table
mirrored in a model, so the ground truth is known exactly (split out of stage.py).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..items import from_json_safe, to_json_safe
from .app import DemoApp
from .names import CORRUPTED_ATTRIBUTES, KEY


def _order(rng: random.Random, tenant: str, n: int, when: str) -> dict[str, Any]:
    cents = rng.randrange(100, 10_000_000)
    total = Decimal(cents) / 100 + Decimal(rng.randrange(0, 10**12)) / Decimal(10**20)
    item: dict[str, Any] = {
        "pk": {"S": tenant},
        "sk": {"S": f"order#{n:05d}"},
        "status": {"S": rng.choice(["open", "paid", "shipped", "closed"])},
        "total": {"N": str(total)},
        "currency": {"S": rng.choice(["EUR", "USD", "GBP"])},
        "shipping": {
            "M": {
                "method": {"S": rng.choice(["post", "courier"])},
                "weightKg": {"N": str(Decimal(rng.randrange(1, 5000)) / 100)},
                "address": {
                    "M": {
                        "street": {"S": f"{rng.randrange(1, 300)} Main St"},
                        "zip": {"S": f"{rng.randrange(10000, 99999)}"},
                        "city": {"S": rng.choice(["Lyon", "Porto", "Graz", "Turku"])},
                    }
                },
            }
        },
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"SKU-{rng.randrange(1000)}"}, "qty": {"N": str(rng.randrange(1, 9))}}}
                for _ in range(rng.randrange(1, 4))
            ]
        },
        "labels": {"SS": rng.sample(["gift", "priority", "fragile", "b2b", "promo"], k=2)},
        "scores": {"NS": [str(rng.randrange(1, 50)), str(Decimal(rng.randrange(1, 500)) / 10)]},
        "thumb": {"B": bytes(rng.randrange(256) for _ in range(12))},
        "paid": {"BOOL": rng.random() < 0.5},
        "coupon": {"NULL": True},
        "updatedAt": {"S": when},
    }
    if item["scores"]["NS"][0] == item["scores"]["NS"][1]:
        item["scores"]["NS"].pop()
    return item


Clock = Callable[[], float]


def _now_iso(clock: Clock) -> str:
    return dt.datetime.fromtimestamp(clock(), tz=dt.UTC).isoformat(timespec="milliseconds")


class _Simulation:
    """The bug's writes and the tenants' legitimate ones, through the app, with the table mirrored in ``model``
    (key_id -> the live item, None once deleted) so that the ground truth is known exactly."""

    def __init__(self, app: DemoApp, rng: random.Random, clock: Clock) -> None:
        self.app, self.rng, self.clock = app, rng, clock
        self.model: dict[str, dict[str, Any] | None] = {}
        self.bug_updated: set[str] = set()
        self.bug_deleted: set[str] = set()
        self.bug_created: set[str] = set()
        self.legit = 0

    def now_iso(self) -> str:
        return _now_iso(self.clock)

    def run_bug(self, affected: tuple[str, ...], victims: dict[str, list[str]], others: list[str]) -> None:
        """The incident: bug writes for the affected tenants, interleaved with legitimate writes everywhere."""
        rng, step = self.rng, 0
        for tenant in affected:
            pool = victims[tenant]
            rng.shuffle(pool)
            updates, deletes = max(4, len(pool) // 10), max(2, len(pool) * 3 // 100)
            for k in pool[:updates]:
                self.bug_update(k)
                step += 1
                if step % 3 == 0:
                    self.legit_other(rng.choice(others), step)
            for k in pool[updates : updates + deletes]:
                self.app.delete(KEY.key_from_id(k))
                self.model[k] = None
                self.bug_deleted.add(k)
                self.legit_other(rng.choice(others), step)
                step += 1
            for n in range(max(3, len(pool) // 50)):
                dup = _order(rng, tenant, 90_000 + n, self.now_iso())
                dup["status"] = {"S": "duplicate"}
                self.app.put(dup, "create")
                k = KEY.key_id(KEY.key_of(dup))
                self.model[k] = dup
                self.bug_created.add(k)
            for k in pool[: min(6, updates // 2)]:  # customers edit orders the bug already corrupted
                self.legit_update(k)

    def bug_update(self, k: str) -> None:
        key = KEY.key_from_id(k)
        item = self.model[k]
        assert item is not None
        total = Decimal(item["total"]["N"]) * 100
        stamp = {"S": self.now_iso()}
        self.app.update(
            key,
            "SET #t = :t, currency = :c, updatedAt = :u REMOVE shipping.address",
            {":t": {"N": str(total)}, ":c": {"S": "XXX"}, ":u": stamp},
            {"#t": "total"},
        )
        new = json.loads(json.dumps(to_json_safe(item)))
        new = from_json_safe(new)
        new["total"] = {"N": str(total)}
        new["currency"] = {"S": "XXX"}
        new["updatedAt"] = stamp
        new["shipping"]["M"].pop("address", None)
        self.model[k] = new
        self.bug_updated.add(k)

    def legit_update(self, k: str) -> None:
        key = KEY.key_from_id(k)
        note = {"S": f"customer called at {self.now_iso()}"}
        self.app.update(key, "SET notes = :n", {":n": note})
        item = dict(self.model[k] or {})
        item["notes"] = note
        self.model[k] = item
        self.legit += 1

    def legit_other(self, tenant: str, n: int) -> None:
        rng, model = self.rng, self.model
        choice = rng.random()
        existing = [k for k in model if json.loads(k)[0]["S"] == tenant and model[k] is not None]
        if choice < 0.5 and existing:
            k = rng.choice(existing)
            status = {"S": rng.choice(["paid", "shipped", "closed"])}
            stamp = {"S": self.now_iso()}
            self.app.update(
                KEY.key_from_id(k),
                "SET #s = :s, updatedAt = :u",
                {":s": status, ":u": stamp},
                {"#s": "status"},
            )
            item = dict(model[k] or {})
            item["status"] = status
            item["updatedAt"] = stamp
            model[k] = item
        elif choice < 0.8:
            item = _order(rng, tenant, 50_000 + n, self.now_iso())
            self.app.put(item, "create")
            model[KEY.key_id(KEY.key_of(item))] = item
        elif existing:
            k = rng.choice(existing)
            self.app.delete(KEY.key_from_id(k))
            model[k] = None
        self.legit += 1

    def outcome(
        self, pre_bug: dict[str, Any]
    ) -> tuple[dict[str, dict[str, Any] | None], list[dict[str, Any]]]:
        """The table a correct recovery leaves, and the ground truth (one line per corrupted item)."""
        expected: dict[str, dict[str, Any] | None] = dict(self.model)
        truth = []
        for k in sorted(self.bug_updated | self.bug_deleted | self.bug_created):
            if k in self.bug_created:
                expected[k], kind = None, "create"
            elif k in self.bug_deleted:
                expected[k], kind = pre_bug[k], "delete"
            else:
                item = dict(self.model[k] or {})
                for name in CORRUPTED_ATTRIBUTES:
                    if name in pre_bug[k]:
                        item[name] = pre_bug[k][name]
                    else:
                        item.pop(name, None)
                expected[k], kind = item, "update"
            truth.append(
                {
                    "key": KEY.key_to_plain(KEY.key_from_id(k)),
                    "key_id": k,
                    "kind": kind,
                    "expected": to_json_safe(expected[k]),
                }
            )
        return expected, truth
