"""The chaos soak of issue 15: patch and undo SIGKILLed at random moments, an application writing in between.

One trial (seeded, so a failure replays with its seed):

1. a small incident on a table of a random key shape (string, number or binary hash key; with or without a
   range key), a plan built by the real diff, some changes rejected;
2. a random engine setup (write mode, workers, transaction size, whole items or attributes);
3. the patch runs in a child process (forked: no start-up cost) and is SIGKILLed at a random moment: just after the sandbox applied its
   n-th write (before the answer reached it), or a random delay after its first write, or early (between a backup and its write, in the
   middle of a journal line...); between a kill and the next run, the application (another IAM principal)
   changes, deletes or re-creates a few items, planned or not; the last run is let finish;
4. half of the trials undo the patch the same way (killed, application writes in between, run again).

Checked at the moment the sandbox applies each write of the runbook (``Sandbox.watch_writes``: synchronous,
before the writer gets its answer): the write is to an approved key (undo: a key the patch wrote); the backup
file already holds exactly the item it replaces; the application has not written that key before (so no
application write is lost or reverted). Checked at the end: the table is exactly as expected (the target
where the patch wrote, the pre-patch version after an undo, the application's version where it wrote, the
incident's elsewhere), every key the runbook could not tell about is reported as ambiguous with both versions,
and the item it found is the item there.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_helpers import patch
from recovery_helpers.aws import Aws
from recovery_helpers.items import canonical_json, from_json_safe, items_equal
from recovery_helpers.journal import iter_jsonl
from recovery_helpers.patch.requests import apply_update
from tests.unit.patch.test_patch import enable_stream, make_scenario


def changed_attributes(old: Any, new: Any) -> set[str] | None:
    """The attributes a write changed; None when it created or deleted the item."""
    if old is None or new is None:
        return None
    return {a for a in set(old) | set(new) if canon_value(old.get(a)) != canon_value(new.get(a))}


def canon_value(value: Any) -> str:
    return canon({"v": value}) if value is not None else "null"


def preserves(app: tuple[set[str] | None, Any], old: Any, new: Any) -> bool:
    """Whether a later write keeps what the application wrote: the item's existence when the application
    created or deleted it, else every attribute it changed (an attribute-level write may change others)."""
    attrs, _ = app
    if attrs is None or old is None or new is None:
        return False
    return all(canon_value(old.get(a)) == canon_value(new.get(a)) for a in attrs)


def canon(item: Any) -> str:
    return canonical_json(from_json_safe(item)) if item is not None else "null"


@dataclass
class Stats:
    trials: int = 0
    kills: int = 0
    app_writes: int = 0
    checked_writes: int = 0
    ambiguous: int = 0
    failures: list[str] = field(default_factory=list)
    #: How long the last run that was not killed took (s): random kill delays are drawn within it, so that
    #: they still fall while a run is writing as the engine gets faster.
    run_seconds: float = 0.4

    def line(self) -> str:
        return (
            f"trials={self.trials} kills={self.kills} app_writes={self.app_writes} "
            f"checked_writes={self.checked_writes} ambiguous_keys={self.ambiguous} failures={len(self.failures)}"
        )


class Checker:
    """Watches the trial's table; checks each runbook write when the sandbox applies it."""

    def __init__(self, sandbox: Any, table: str, schema: Any, runbook_key: str, run_dir: Path) -> None:
        self.sandbox = sandbox
        self.table, self.schema, self.runbook_key, self.run_dir = table, schema, runbook_key, run_dir
        self.phase = "patch"
        self.allowed: set[str] = set()
        self.app_written: set[str] = set()
        #: key -> (attributes the application's write changed, None: the item's existence; its new image)
        self.app_changes: dict[str, tuple[set[str] | None, Any]] = {}
        self.problems: list[str] = []
        self.checked = 0
        self.runbook_writes: Counter[str] = Counter()
        self.kill_after: int | None = None  # kill the run right after its n-th applied write
        self.kill_delay: float | None = None  # ... or this many seconds after its first one
        self.child: int | None = None  # pid of the run in progress
        self.lock = threading.Lock()

    def backups_now(self) -> dict[str, set[str]]:
        name = patch.BACKUP_FILE if self.phase == "patch" else "undo-backup.jsonl"
        held: dict[str, set[str]] = {}
        for line in iter_jsonl(self.run_dir / name):
            if "key_id" in line and "item" in line:
                held.setdefault(line["key_id"], set()).add(canon(line["item"]))
        return held

    def __call__(self, seen: Any) -> None:
        if seen.table != self.table:
            return
        key_id = self.schema.key_id(seen.keys)
        if seen.access_key_id != self.runbook_key:  # the application's: what it changed must survive
            with self.lock:
                self.app_changes[key_id] = (changed_attributes(seen.old, seen.new), seen.new)
            return
        with self.lock:
            self.checked += 1
            self.runbook_writes[key_id] += 1
            if key_id not in self.allowed:
                self.problems.append(f"{self.phase}: wrote {key_id}, which it may not write")
            if key_id in self.app_changes and not preserves(self.app_changes[key_id], seen.old, seen.new):
                self.problems.append(
                    f"{self.phase}: wrote {key_id} over what the application wrote (its write lost or reverted)"
                )
            if canon(seen.old) not in self.backups_now().get(key_id, set()):
                self.problems.append(f"{self.phase}: wrote {key_id} with no backup of the item it replaced")
            if (
                self.kill_delay is not None and self.child is not None
            ):  # a random moment after it began writing
                threading.Timer(self.kill_delay, _kill, args=(self.child,)).start()
                self.kill_delay = None
            if self.kill_after is not None and self.child is not None:
                self.kill_after -= 1
                if self.kill_after <= 0:  # the write landed, its answer has not left: the worst moment
                    _kill(self.child)
                    self.kill_after = None


def _child(cmd: dict[str, Any], out: int) -> None:
    """The forked child: one patch or undo run, its answer as one JSON line on ``out``."""
    from recovery_helpers.context import open_context

    try:
        ctx = open_context(cmd["incident"], cmd["table"], "us-east-1", cmd["endpoint"], cmd["runs_dir"])
        if cmd["op"] == "patch":
            report = patch.apply_plan(ctx, dry_run=False, progress=False, **cmd["kwargs"])
        else:
            report = patch.undo(ctx, progress=False, **cmd["kwargs"])
        answer = {"ok": True, "ambiguous": getattr(report, "ambiguous", 0)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the trial
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    os.write(out, (json.dumps(answer) + "\n").encode())


def _run(checker: Checker, rng: random.Random, cmd: dict[str, Any], kill: bool, stats: Stats) -> Any:
    """One run in a forked child (everything is imported already: no start-up cost), SIGKILLed at a random
    moment when ``kill``: after its n-th applied write (from the watcher), or after a random delay."""
    read_end, write_end = os.pipe()
    with checker.lock:
        checker.kill_after = rng.randint(1, 12) if kill and rng.random() < 0.6 else None
        checker.kill_delay = (
            rng.uniform(0.0, stats.run_seconds) if kill and checker.kill_after is None else None
        )
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            try:
                _child(cmd, write_end)
            finally:
                os._exit(0)
        checker.child = pid
    started = time.monotonic()
    os.close(write_end)
    timer = None
    if kill and rng.random() < 0.2:  # sometimes early: before any write (during its reads, its first backup)
        timer = threading.Timer(rng.uniform(0.0, min(1.0, stats.run_seconds)), _kill, args=(pid,))
        timer.start()
    with os.fdopen(read_end, "rb") as answer_pipe:
        out = answer_pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if timer is not None:
        timer.cancel()
    with checker.lock:
        checker.child, checker.kill_after, checker.kill_delay = None, None, None
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        stats.kills += 1
        # a request the dead child had sent may still be being applied: let the sandbox finish it first
        deadline = time.monotonic() + 30
        while checker.sandbox.requests_in_flight() > 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        return None
    stats.run_seconds = max(0.05, time.monotonic() - started)
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False, "error": "no answer"}


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def in_flight(run_dir: Path, phase: str) -> dict[str, Any]:
    """Keys the killed run had backed up (its write about to go, or gone) without an outcome journaled, with
    the item backed up."""
    backups, journal = (
        (patch.BACKUP_FILE, patch.JOURNAL_FILE)
        if phase == "patch"
        else ("undo-backup.jsonl", patch.UNDO_FILE)
    )
    done = {j["key_id"] for j in iter_jsonl(run_dir / journal) if j.get("status") in patch.FINAL}
    held = {b["key_id"]: b["item"] for b in iter_jsonl(run_dir / backups) if "item" in b}
    return {k: from_json_safe(v) for k, v in sorted(held.items()) if k not in done}


def _app_writes(
    sc: Any,
    app: Any,
    rng: random.Random,
    checker: Checker,
    keys: list[str],
    stats: Stats,
    hot: dict[str, Any],
) -> None:
    """The application changes, deletes or re-creates a few items (each key at most once per trial): most
    often the keys whose write was in flight at the kill (``hot``: where a resume can go wrong), and others.
    On a hot key it often puts back the version the run had backed up (deletes an item the patch put back, or
    writes the old version again): a resume that takes that for "never landed" would write over it."""
    free = [k for k in keys if k not in checker.app_written]
    hot_free = [k for k in hot if k in free]
    picks = rng.sample(hot_free, k=min(len(hot_free), rng.randint(0, 2)))
    rest = [k for k in free if k not in picks]
    picks += rng.sample(rest, k=min(len(rest), rng.randint(0, 2)))
    for k in picks:
        live = sc.get(k)
        marker = {"S": f"app-{rng.randrange(10**9)}"}
        if k in hot and rng.random() < 0.5 and canon(live) != canon(hot[k]):
            if hot[k] is None:
                app.delete_item(TableName=sc.table, Key=sc.key(k))
            else:
                app.put_item(TableName=sc.table, Item=hot[k])
        elif live is None:
            item = {**sc.key(k), "status": marker, "origin": {"S": "re-created by the application"}}
            app.put_item(TableName=sc.table, Item=item)
        elif rng.random() < 0.5:
            app.delete_item(TableName=sc.table, Key=sc.key(k))
        elif rng.random() < 0.5:  # a change to an attribute the patch may not restore
            app.update_item(
                TableName=sc.table,
                Key=sc.key(k),
                UpdateExpression="SET lastSeen = :m",
                ExpressionAttributeValues={":m": marker},
            )
        else:
            app.put_item(TableName=sc.table, Item={**live, "status": marker})
        checker.app_written.add(k)
        stats.app_writes += 1


SHAPES = [(("pk", "S"), ("sk", "S")), (("id", "N"), None), (("bin", "B"), ("n", "N")), (("pk", "S"), None)]


def run_trial(seed: int, sandbox: Any, aws: Aws, app: Any, tmp: Path, stats: Stats) -> list[str]:
    """One seeded trial; the problems found (empty: it held)."""
    rng = random.Random(seed)
    hash_key, range_key = rng.choice(SHAPES)
    tmp.mkdir(parents=True, exist_ok=True)
    sc = make_scenario(
        aws,
        tmp,
        f"soak-{seed}",
        n=rng.randint(6, 15),
        hash_key=hash_key,
        range_key=range_key,
        incident_id=f"soak-{seed}",
    )
    changed = sc.changed_ids()
    rejected = tuple(rng.sample(changed, k=rng.randint(0, 2)))
    sc.approve(reject=rejected)
    approved = [k for k in changed if k not in rejected]
    mode = rng.choice(["single", "transact", "auto"])
    attrs = rng.choice([None, None, ["status"], ["status", "price"]])
    kwargs: dict[str, Any] = {
        "write_mode": mode,
        "max_workers": rng.choice([1, 2, 4]),
        "transact_batch_size": rng.choice([2, 5, 50]),
    }
    enable_stream(sc)
    run_dir = sc.runs_dir / f"soak-{seed}"
    checker = Checker(sandbox, sc.table, sc.schema, sandbox.admin_access_key_id, run_dir)
    checker.allowed = set(approved)
    stop = sandbox.watch_writes(checker)
    everything = [*sc.base, *sc.created]
    cmd = {
        "incident": f"soak-{seed}",
        "table": sc.table,
        "endpoint": sandbox.endpoint_url,
        "runs_dir": str(sc.runs_dir),
        "op": "patch",
        "kwargs": {**kwargs, "attributes": attrs},
    }
    problems: list[str] = []
    try:
        for phase in ("patch", "undo") if rng.random() < 0.5 else ("patch",):
            checker.phase = phase
            if phase == "undo":
                journal = list(iter_jsonl(run_dir / patch.JOURNAL_FILE))
                checker.allowed = {j["key_id"] for j in journal if j["status"] == "patched"}
                cmd = {**cmd, "op": "undo", "kwargs": kwargs}
                if not checker.allowed:
                    break
            for _ in range(rng.randint(0, 3)):  # killed runs, the application writing after each
                answer = _run(checker, rng, cmd, kill=True, stats=stats)
                if answer is not None:
                    break
                _app_writes(sc, app, rng, checker, everything, stats, in_flight(run_dir, phase))
            answer = _run(checker, rng, cmd, kill=False, stats=stats)
            if not answer or not answer.get("ok"):
                problems.append(f"{phase}: the last run failed: {answer}")
                break
    finally:
        stop()
    problems += checker.problems
    stats.checked_writes += checker.checked
    problems += _check_end(sc, run_dir, approved, attrs, checker, stats)
    return [
        f"seed {seed} ({mode}, {hash_key[1]}{'+' + range_key[1] if range_key else ''}, attributes={attrs}): {p}"
        for p in problems
    ]


def _target(sc: Any, k: str, attrs: list[str] | None) -> Any:
    base, corrupted = sc.base.get(k), sc.corrupted.get(k)
    if attrs and base is not None and corrupted is not None:
        return apply_update(corrupted, attrs, base)
    return base if k in sc.base else None


def _check_end(
    sc: Any, run_dir: Path, approved: list[str], attrs: Any, checker: Checker, stats: Stats
) -> list[str]:
    problems: list[str] = []
    firsts: dict[str, dict[str, Any]] = {}
    for line in iter_jsonl(run_dir / patch.JOURNAL_FILE):
        if line.get("status") in patch.FINAL:
            firsts.setdefault(line["key_id"], line)
    undo: dict[str, dict[str, Any]] = {}
    for line in iter_jsonl(run_dir / patch.UNDO_FILE):
        if line.get("status") in patch.FINAL:
            undo.setdefault(line["key_id"], line)
    undone_phase = checker.phase == "undo"
    live = sc.snapshot()
    keys = set(sc.base) | set(sc.created) | set(live)
    for k in keys:
        now = live.get(k)
        line = firsts.get(k)
        reported = [x for x in (line, undo.get(k)) if x is not None and x["status"] == "ambiguous"]
        for amb in reported:
            stats.ambiguous += 1
            if "before" not in amb or "found" not in amb:
                problems.append(f"{k}: ambiguous without both versions")
        if k in checker.app_changes:
            app_attrs, app_item = checker.app_changes[k]
            if app_attrs is None and not items_equal(now, app_item):
                problems.append(
                    f"{k}: the application created or deleted it, the table holds {canon(now)[:160]}"
                )
            elif app_attrs is not None and (
                now is None or any(canon_value(now.get(a)) != canon_value(app_item.get(a)) for a in app_attrs)
            ):
                problems.append(
                    f"{k}: the application's change to {sorted(app_attrs)} is gone: {canon(now)[:160]}"
                )
            continue
        if k in checker.app_written:
            continue  # the application wrote it without changing it (it put back the very same version)
        if k not in approved:
            expected = sc.corrupted.get(k, sc.base.get(k))
        elif reported:
            found = from_json_safe(reported[-1]["found"])
            options = [sc.corrupted.get(k), _target(sc, k, attrs)]
            if not any(items_equal(found, o) for o in options):
                problems.append(f"{k}: ambiguous, but found neither the incident's nor the target version")
            expected = found
        elif line is None:
            problems.append(f"{k}: approved, but no final outcome in the journal")
            continue
        elif line["status"] == "conflict":
            problems.append(f"{k}: a conflict, though only the runbook wrote it")
            continue
        elif undone_phase and k in undo and line["status"] == "patched":
            expected = sc.corrupted.get(k)
        else:
            expected = _target(sc, k, attrs)
        if not items_equal(now, expected):
            problems.append(f"{k}: the table holds {canon(now)[:160]}, expected {canon(expected)[:160]}")
    # every ambiguous key is also reported by verify (the run summary of step 05)
    from recovery_helpers.context import open_context

    ctx = open_context(
        run_dir.name, sc.table, sc.aws.region, sc.aws.endpoint_url, str(sc.runs_dir), aws=sc.aws
    )
    if not undone_phase:
        verification = patch.verify(ctx)
        journaled = {k for k, line in firsts.items() if line["status"] == "ambiguous"}
        if {line["key_id"] for line in verification.ambiguous_items} != journaled:
            problems.append("verify does not list every ambiguous key of the journal")
    return problems


def soak(sandbox: Any, aws: Aws, tmp: Path, trials: int, first_seed: int = 1) -> Stats:
    """Run ``trials`` seeded trials; the stats (failures listed)."""
    user = f"chaos-app-{os.getpid()}-{first_seed}"
    iam = aws.iam
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="app",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    app = sandbox.client(
        "dynamodb", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    stats = Stats()
    started = time.monotonic()
    for seed in range(first_seed, first_seed + trials):
        stats.trials += 1
        stats.failures += run_trial(seed, sandbox, aws, app, tmp / f"t{seed}", stats)
        if os.environ.get("SOAK_VERBOSE"):
            print(f"[soak] seed {seed}: {stats.line()} ({time.monotonic() - started:.0f} s)", flush=True)
    return stats
