"""Benchmark: the patch engine against the seed article's loop, on the sandbox, at 0, 5 and 30 ms of latency.

    .venv/bin/python bench/patch.py                         # 50,000-item table, 5,000 corrupted items
    .venv/bin/python bench/patch.py --table-items 5000 --items 500   # quick run

One run: starts `python -m recovery_helpers sandbox` in its own process (client and server do not share a
GIL), creates the table with BatchWriteItem, corrupts 2 x --items items (updates, deletes, creates), restores
the table to before the corruption with point-in-time recovery (restore.restore_table), builds and approves
the plan with diff.build_plan / diff.approve from a keys file, then for every latency measures
  (a) the seed's loop: sequential GetItem from the restored table + unconditional PutItem into the live table,
      on a sample of updated items (it is a rate), and
  (b) the engine: patch.apply_plan(dry_run=False) on all --items items, in a fresh process per run, once per
      write mode (--write-modes, plus the default mode),
resetting the corrupted items between runs. Peak memory is measured at --items and 2 x --items (default mode).
The last lines, one per latency, are for the engine's default write mode:
  latency_ms=5 seed_items_per_s=... engine_items_per_s=... ratio=... write_mode=auto
See bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3

from recovery_helpers import diff, patch, restore
from recovery_helpers import plan as planlib
from recovery_helpers.aws import DEFAULT_CONFIG, Aws
from recovery_helpers.context import open_context
from recovery_helpers.items import KeySchema, iter_chunks

WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem")
TABLE = "bench-orders"
REGION = "us-east-1"


# -- the sandbox in its own process -------------------------------------------------------------------------
class SandboxProcess:
    """`python -m recovery_helpers sandbox --port 0` as a child process, steered over /_sandbox/*."""

    def __init__(self, profile_to: str | None = None) -> None:
        command = [sys.executable, "-m", "recovery_helpers", "sandbox", "--port", "0"]
        if profile_to:
            command = [sys.executable, str(Path(__file__).resolve()), "--serve-profiled-sandbox", profile_to]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.env: dict[str, str] = {}
        assert self.proc.stdout is not None
        while len(self.env) < 4:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the sandbox process exited before printing its endpoint")
            m = re.match(r"export (\w+)=(.*)", line.strip())
            if m:
                self.env[m[1]] = m[2]
        self.endpoint = self.env["AWS_ENDPOINT_URL"]

    def control(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(
            f"{self.endpoint}/_sandbox/{name}", data=data, method="POST" if data is not None else "GET"
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    def calls(self) -> dict[str, int]:
        return self.control("counters")["calls"]

    def cpu_seconds(self) -> float:
        """CPU time of the sandbox process so far (user + system, from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}


def serve_profiled_sandbox(out: str) -> None:
    """A sandbox whose request handling runs under cProfile once it gets SIGUSR1 (one request at a time, so
    the breakdown per request is exact); the stats go to ``out`` when the process is terminated."""
    import cProfile
    import io
    import pstats
    import threading

    from recovery_helpers.sandbox import Sandbox, main_env_lines
    from recovery_helpers.sandbox import server as sandbox_server

    profiler, lock, on = cProfile.Profile(), threading.Lock(), threading.Event()
    handle = sandbox_server.SandboxMiddleware.__call__

    def profiled(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if not on.is_set() or environ.get("PATH_INFO", "").startswith("/_sandbox/"):
            return handle(self, environ, start_response)
        with lock:
            profiler.enable()
            try:
                return list(handle(self, environ, start_response))
            finally:
                profiler.disable()

    sandbox_server.SandboxMiddleware.__call__ = profiled  # type: ignore[method-assign]

    def dump(*_: Any) -> None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(80)
        Path(out).write_text(text.getvalue())
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    signal.signal(signal.SIGUSR1, lambda *_: on.set())
    sandbox = Sandbox(port=0).start()
    print(main_env_lines(sandbox), flush=True)
    threading.Event().wait()


# -- data --------------------------------------------------------------------------------------------------
def make_item(i: int, status: str = "shipped") -> dict[str, Any]:
    return {
        "pk": {"S": f"tenant-{i % 50:02d}"},
        "sk": {"S": f"order#{i:07d}"},
        "status": {"S": status},
        "total": {"N": f"{(i * 37) % 10000}.{i % 100:02d}"},
        "currency": {"S": "EUR"},
        "lines": {"L": [{"M": {"sku": {"S": f"sku-{i % 97}"}, "qty": {"N": str(1 + i % 5)}}}]},
        "tags": {"SS": ["web", f"campaign-{i % 7}"]},
        "paid": {"BOOL": i % 3 != 0},
        "customer": {"M": {"id": {"S": f"c-{i % 1000}"}, "email": {"S": f"user{i % 1000}@example.com"}}},
    }


def batch_write(ddb: Any, requests: list[dict[str, Any]], workers: int = 4) -> None:
    """BatchWriteItem in 25s, in parallel, retrying unprocessed items."""

    def send(chunk: list[dict[str, Any]]) -> None:
        pending = {TABLE: chunk}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, iter_chunks(requests, 25)))


def put(item: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": item}}


def delete(key: dict[str, Any]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": key}}


# -- the seed's loop ----------------------------------------------------------------------------------------
def seed_loop(ddb: Any, restored: str, keys: list[dict[str, Any]]) -> None:
    """The seed article's loop: for each key, GetItem from the restored table, PutItem into the live one."""
    for key in keys:
        item = ddb.get_item(TableName=restored, Key=key)["Item"]
        ddb.put_item(TableName=TABLE, Item=item)


# -- the engine, in a process of its own ---------------------------------------------------------------------
def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM). ru_maxrss is no use here: Linux carries the parent's peak
    across fork+exec, so a fresh child would report the orchestrating process's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _profile_engine_threads() -> tuple[list[Any], patch.EngineTuning]:
    """cProfile the calling thread and every engine worker thread (one profiler each, merged at the end)."""
    import contextlib
    import cProfile

    main = cProfile.Profile(time.thread_time)  # CPU time per thread, not wall time (GIL waits)
    profiles = [main]

    @contextlib.contextmanager
    def profiled() -> Any:
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        prof.enable()
        try:
            yield
        finally:
            prof.disable()

    main.enable()
    return profiles, patch.EngineTuning(worker_context=profiled)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (the patch's worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_engine(args: argparse.Namespace) -> None:
    """Run apply_plan once and print what it cost (time, CPU, memory) as one JSON line."""
    import tracemalloc

    ctx = open_context(args.child_incident, TABLE, REGION, os.environ["AWS_ENDPOINT_URL"], args.runs_dir)
    _ = ctx.who  # resolve the caller before timing
    if args.tracemalloc:
        tracemalloc.start()
    profiles, tuning = _profile_engine_threads() if args.profile_engine else (None, patch.EngineTuning())
    tuning = dataclasses.replace(tuning, return_old=not args.no_return_old)
    rss0 = peak_rss_kb()
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    report = patch.apply_plan(
        ctx,
        dry_run=False,
        max_workers=int(args.workers),
        progress=False,
        read_batch_size=args.read_batch,
        write_mode=args.write_mode,
        transact_batch_size=args.transact_batch,
        tuning=tuning,
        max_processes=args.max_processes,
    )
    # with max_processes > 1 the workers' CPU counts too (they are waited for, so RUSAGE_CHILDREN has it)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0 + _children_cpu() - k0
    peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    if profiles is not None:
        import io
        import pstats

        profiles[0].disable()
        text = io.StringIO()
        pstats.Stats(*profiles, stream=text).sort_stats("tottime").print_stats(60)
        pstats.Stats(*profiles, stream=text).sort_stats("cumulative").print_stats(60)
        Path(args.profile_engine).write_text(text.getvalue())
    print(
        "RESULT "
        + json.dumps(
            {
                "elapsed": elapsed,
                "cpu": cpu,
                "patched": report.patched,
                "conflicts": report.conflicts,
                "failed": report.failed,
                "unchanged": report.unchanged,
                "maxrss_kb": peak_rss_kb(),
                "rss_before_kb": rss0,
                "tracemalloc_peak": peak,
                "write_capacity_units": report.write_capacity_units,
                "throttled": report.throttled,
                "write_mode": report.write_mode,
                "writes_by_path": report.writes_by_path,
                "transactions": report.transactions,
                "transactions_cancelled": report.transactions_cancelled,
            }
        ),
        flush=True,
    )


def run_engine(
    sb: SandboxProcess,
    runs_dir: Path,
    incident: str,
    workers: int,
    *,
    trace: bool = False,
    read_batch: int = patch.READ_BATCH,
    return_old: bool = True,
    write_mode: str = patch.DEFAULT_WRITE_MODE,
    transact_batch: int = patch.TRANSACT_BATCH,
    profile_to: str | None = None,
    max_processes: int = 1,
) -> dict[str, Any]:
    cmd = (
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-incident",
            incident,
            "--runs-dir",
            str(runs_dir),
            "--workers",
            str(workers),
            "--read-batch",
            str(read_batch),
            "--write-mode",
            write_mode,
            "--transact-batch",
            str(transact_batch),
            "--max-processes",
            str(max_processes),
        ]
        + (["--tracemalloc"] if trace else [])
        + (["--profile-engine", profile_to] if profile_to else [])
        + ([] if return_old else ["--no-return-old"])
    )
    before, server_cpu = sb.calls(), sb.cpu_seconds()
    out = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **sb.env}, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"engine run failed:\n{out.stderr[-3000:]}")
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    result["calls"] = _delta(sb.calls(), before)
    result["server_cpu"] = sb.cpu_seconds() - server_cpu
    return result


@dataclasses.dataclass
class Repeated:
    """--repeat engine runs of one setting: the median run by items/s, and the median client CPU of them all."""

    runs: list[dict[str, Any]]  # sorted by items/s

    @property
    def median(self) -> dict[str, Any]:
        return self.runs[len(self.runs) // 2]

    @property
    def rate(self) -> float:
        return self.median["patched"] / self.median["elapsed"]

    @property
    def all_rates(self) -> str:
        return "/".join(f"{r['patched'] / r['elapsed']:.0f}" for r in self.runs)

    def _cpus(self) -> list[float]:
        return sorted(1000 * r["cpu"] / r["patched"] for r in self.runs)

    @property
    def cpu(self) -> float:
        """Client CPU ms/item: a measure of its own, the median of every run's (not the median run's)."""
        cpus = self._cpus()
        return cpus[len(cpus) // 2]

    @property
    def all_cpus(self) -> str:
        return "/".join(f"{c:.2f}" for c in self._cpus())


def repeated_runs(
    args: argparse.Namespace,
    sb: SandboxProcess,
    runs_dir: Path,
    label: str,
    latency: float,
    workers: int,
    mode: str,
    reset: Any,
    requests: list[dict[str, Any]],
    max_processes: int = 1,
) -> Repeated:
    """The engine --repeat times on a fresh copy of the approved plan, the items corrupted again after each run;
    every run must patch every item with no conflict and no failure."""
    runs = []
    for attempt in range(args.repeat):
        incident = f"{label}-{attempt}"
        copy_plan(runs_dir, "plan-1x", incident)
        sb.control("settings", {"latency_ms": latency})
        one = run_engine(
            sb,
            runs_dir,
            incident,
            workers,
            write_mode=mode,
            transact_batch=args.transact_batch,
            max_processes=max_processes,
        )
        reset(requests)
        if one["patched"] != args.items or one["conflicts"] or one["failed"]:
            raise RuntimeError(f"engine run {incident} is wrong: {one}")
        runs.append(one)
    # the median run (by items/s): one run is a few seconds on a machine shared with other work
    return Repeated(sorted(runs, key=lambda r: r["patched"] / r["elapsed"]))


def _processes_runs(
    args: argparse.Namespace,
    sb: SandboxProcess,
    runs_dir: Path,
    latency: float,
    mode: str,
    workers: int,
    reset: Any,
    requests: list[dict[str, Any]],
) -> int:
    """The engine with max_processes=P for each P of --processes: median of --repeat runs, ratios to the first."""
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    load = os.getloadavg()
    print(
        f"processes {counts}: write_mode={mode}, {workers} threads per process, latency {latency:g} ms, "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    results = [
        (p, repeated_runs(args, sb, runs_dir, f"procs-{p}", latency, workers, mode, reset, requests, p))
        for p in counts
    ]
    base = results[0][1]
    for p, rep in results:
        server = 1000 * rep.median["server_cpu"] / rep.median["patched"]
        print(
            f"processes={p} items_per_s={rep.rate:.0f} ratio={rep.rate / base.rate:.2f} "
            f"client_cpu_ms_per_item={rep.cpu:.3f} cpu_ratio={rep.cpu / base.cpu:.2f} "
            f"sandbox_cpu_ms_per_item={server:.3f} runs={rep.all_rates} cpu_runs={rep.all_cpus} "
            f"write_mode={mode}"
        )
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


def copy_plan(runs_dir: Path, source: str, target: str) -> None:
    """A fresh run folder with the same reviewed, approved plan (so each run starts with an empty journal)."""
    src, dst = runs_dir / source, runs_dir / target
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in (planlib.PLAN_FILE, planlib.META_FILE, planlib.APPROVALS_FILE, "incident.json"):
        shutil.copy2(src / name, dst / name)
    data = json.loads((dst / "incident.json").read_text())
    data["incident_id"] = target
    (dst / "incident.json").write_text(json.dumps(data))


# -- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table-items", type=int, default=50_000, help="items in the table (default 50,000)")
    ap.add_argument(
        "--items", type=int, default=5_000, help="corrupted items the engine patches (default 5,000)"
    )
    ap.add_argument("--sample", type=int, default=200, help="items the seed's loop is timed on (default 200)")
    ap.add_argument("--latencies", default="0,5,30", help="added latency per request, ms (default 0,5,30)")
    ap.add_argument(
        "--workers",
        default="single=32,transact=8,auto=8",
        help="engine max_workers: one number for every write mode, or per mode (default "
        "single=32,transact=8,auto=8: single writes wait on one round trip per item and gain from more "
        "workers; transactions are bound by CPU, where more threads only cost)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="engine runs per latency and write mode; the median is reported (default 3)",
    )
    ap.add_argument(
        "--no-memory", action="store_true", help="skip the memory runs at --items and 2 x --items"
    )
    ap.add_argument(
        "--compare-reads-at",
        type=float,
        default=5.0,
        metavar="MS",
        help="at this latency also run the engine with GetItem per key instead of BatchGetItem "
        "(default 5; negative: skip)",
    )
    ap.add_argument(
        "--write-modes",
        default="single,transact",
        help="engine write modes to measure at each latency (default single,transact; the default mode, "
        f"{patch.DEFAULT_WRITE_MODE!r}, is always added)",
    )
    ap.add_argument(
        "--transact-batch",
        type=int,
        default=patch.TRANSACT_BATCH,
        help=f"items per TransactWriteItems (default {patch.TRANSACT_BATCH})",
    )
    ap.add_argument("--write-mode", default=patch.DEFAULT_WRITE_MODE, help=argparse.SUPPRESS)
    ap.add_argument("--read-batch", type=int, default=patch.READ_BATCH, help=argparse.SUPPRESS)
    ap.add_argument("--no-return-old", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--profile-sandbox",
        metavar="FILE",
        help="instead of the benchmark: one engine run at 0 ms on a sandbox whose request handling is "
        "profiled "
        "(cProfile, requests one at a time); the stats go to FILE",
    )
    ap.add_argument(
        "--profile-engine",
        metavar="FILE",
        help="instead of the benchmark: one engine run (first of --write-modes, first of --latencies) under "
        "cProfile in every engine thread; the merged stats, sorted by own time, go to FILE",
    )
    ap.add_argument(
        "--processes",
        metavar="P,P,...",
        help="instead of the benchmark: the engine at the first of --latencies in the first of --write-modes "
        "with max_processes=P for each P (e.g. 1,2,4), --repeat runs each; items/s and client CPU ms/item "
        "(all processes) as ratios to the first P",
    )
    ap.add_argument("--max-processes", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--serve-profiled-sandbox", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the run folders (printed) after the run")
    ap.add_argument("--child-incident", help=argparse.SUPPRESS)
    ap.add_argument("--runs-dir", help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_incident:
        child_engine(args)
        return 0
    if args.serve_profiled_sandbox:
        serve_profiled_sandbox(args.serve_profiled_sandbox)
        return 0
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    try:
        if "=" in args.workers:
            per_mode = {m.strip(): int(n) for m, n in (p.split("=") for p in args.workers.split(","))}
        else:
            per_mode = dict.fromkeys(patch.WRITE_MODES, int(args.workers))
    except ValueError:
        ap.error(f"--workers: a number, or mode=number pairs, got {args.workers!r}")

    def workers_for(mode: str) -> int:
        return per_mode.get(mode, 8)

    if args.items * 2 > args.table_items:
        ap.error("--table-items must be at least twice --items (the memory run patches 2 x --items)")
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    modes = list(
        dict.fromkeys(
            [*(m.strip() for m in args.write_modes.split(",") if m.strip()), patch.DEFAULT_WRITE_MODE]
        )
    )
    bad = [m for m in modes if m not in patch.WRITE_MODES]
    if bad:
        ap.error(f"--write-modes: unknown {bad}; choose from {', '.join(patch.WRITE_MODES)}")

    work = Path(tempfile.mkdtemp(prefix="bench-patch-"))
    runs_dir = work / "runs"
    t_start = time.perf_counter()
    sb = SandboxProcess(
        profile_to=str(Path(args.profile_sandbox).resolve()) if args.profile_sandbox else None
    )
    print(
        f"sandbox: separate process (python -m recovery_helpers sandbox), pid {sb.proc.pid}, {sb.endpoint}; "
        f"client pid {os.getpid()}; {os.cpu_count()} CPUs"
    )
    try:
        os.environ.update(sb.env)
        session = boto3.session.Session(
            aws_access_key_id=sb.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=sb.env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        aws = Aws(region=REGION, endpoint_url=sb.endpoint, session=session, config=DEFAULT_CONFIG)
        ddb = aws.dynamodb
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        ddb.update_continuous_backups(
            TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        schema = KeySchema.of_table(ddb, TABLE)

        t = time.perf_counter()
        batch_write(ddb, [put(make_item(i)) for i in range(args.table_items)])
        print(f"table: {args.table_items} items batch-written in {time.perf_counter() - t:.1f} s")

        # the moment before the incident, on the sandbox clock (restore times travel as whole seconds)
        now = dt.datetime.fromisoformat(sb.control("now")["now"])
        restore_time = (now + dt.timedelta(seconds=1)).replace(microsecond=0)
        sb.control("advance", {"seconds": 2})

        # the incident: 2 x items corrupted (60% updated, 20% deleted, 20% created)
        rng = random.Random(42)
        victims = rng.sample(range(args.table_items), int(args.items * 2 * 0.8))
        n_upd = int(args.items * 2 * 0.6)
        updated = victims[:n_upd]
        deleted = victims[n_upd:]
        created = [args.table_items + j for j in range(args.items * 2 - len(victims))]
        corrupt: list[dict[str, Any]] = []
        for i in updated:
            item = make_item(i, status="cancelled-by-bug")
            item["total"] = {"N": "0"}
            corrupt.append(put(item))
        corrupt += [delete(schema.key_of(make_item(i))) for i in deleted]
        corrupt += [put(make_item(i, status="ghost")) for i in created]
        # interleave the kinds so that any prefix of the keys has all three
        order = list(range(len(corrupt)))
        rng.shuffle(order)
        corrupt = [corrupt[j] for j in order]
        t = time.perf_counter()
        batch_write(ddb, corrupt)
        print(
            f"incident: {len(updated)} updated, {len(deleted)} deleted, {len(created)} created "
            f"in {time.perf_counter() - t:.1f} s"
        )

        def key_of_request(r: dict[str, Any]) -> dict[str, Any]:
            return schema.key_of(r["PutRequest"]["Item"]) if "PutRequest" in r else r["DeleteRequest"]["Key"]

        main_requests, all_requests = corrupt[: args.items], corrupt
        ctx = open_context("bench", TABLE, REGION, sb.endpoint, str(runs_dir), aws=aws)
        t = time.perf_counter()
        restored = restore.restore_table(
            ctx, restore_time=restore_time.isoformat(), progress=False, poll_seconds=0.2
        )
        print(
            f"restore: {restored.restored_table_name} as of {restore_time.isoformat()} in "
            f"{time.perf_counter() - t:.1f} s"
        )
        restored_name = restored.restored_table_name

        plans = {}
        for label, requests in (("plan-1x", main_requests), ("plan-2x", all_requests)):
            keys_file = work / f"{label}-keys.jsonl"
            with open(keys_file, "w") as f:
                f.writelines(json.dumps(schema.key_to_plain(key_of_request(r))) + "\n" for r in requests)
            pctx = open_context(label, TABLE, REGION, sb.endpoint, str(runs_dir), aws=aws)
            pctx.incident.update(restored_table_name=restored_name)
            t = time.perf_counter()
            result = diff.build_plan(
                pctx,
                impacted_source="keys_file",
                keys_file=str(keys_file),
                incident_start=(restore_time + dt.timedelta(seconds=1)).isoformat(),
                incident_end=(
                    dt.datetime.fromisoformat(sb.control("now")["now"]) + dt.timedelta(minutes=1)
                ).isoformat(),
                progress=False,
                max_workers=8,
                segments=8,
            )
            diff.approve(pctx, approve=True)
            plans[label] = result.counts
            print(f"{label}: {result.counts} built and approved in {time.perf_counter() - t:.1f} s")

        def reset(requests: list[dict[str, Any]]) -> None:
            sb.control("settings", {"latency_ms": 0})
            batch_write(ddb, requests, workers=8)

        sample_keys = [
            schema.key_of(r["PutRequest"]["Item"])
            for r in main_requests
            if "PutRequest" in r and r["PutRequest"]["Item"]["status"]["S"] == "cancelled-by-bug"
        ][: args.sample]
        sample_requests = [
            r
            for r in main_requests
            if "PutRequest" in r and schema.key_of(r["PutRequest"]["Item"]) in sample_keys
        ]

        if args.profile_engine:
            copy_plan(runs_dir, "plan-1x", "profiled")
            sb.control("settings", {"latency_ms": latencies[0]})
            res = run_engine(
                sb,
                runs_dir,
                "profiled",
                workers_for(modes[0]),
                write_mode=modes[0],
                transact_batch=args.transact_batch,
                profile_to=str(Path(args.profile_engine).resolve()),
            )
            print(
                f"profiled engine run ({modes[0]}, {latencies[0]:g} ms): {res['patched']} items in "
                f"{res['elapsed']:.1f} s, client CPU {res['cpu']:.2f} s; profile in {args.profile_engine}"
            )
            return 0

        if args.profile_sandbox:
            copy_plan(runs_dir, "plan-1x", "profiled")
            sb.proc.send_signal(signal.SIGUSR1)
            res = run_engine(sb, runs_dir, "profiled", workers_for(patch.DEFAULT_WRITE_MODE))
            sb.stop()  # writes the profile
            print(
                f"profiled engine run: {res['patched']} items in {res['elapsed']:.1f} s, "
                f"calls {res['calls']}; "
                f"sandbox profile in {args.profile_sandbox}"
            )
            return 0

        if args.processes:
            return _processes_runs(
                args, sb, runs_dir, latencies[0], modes[0], workers_for(modes[0]), reset, main_requests
            )

        rows = []
        for latency in latencies:
            # (a) the seed's loop, on a sample
            sb.control("settings", {"latency_ms": latency})
            before, server_cpu = sb.calls(), sb.cpu_seconds()
            t0, c0 = time.perf_counter(), time.process_time()
            seed_loop(ddb, restored_name, sample_keys)
            seed_elapsed, seed_cpu = time.perf_counter() - t0, time.process_time() - c0
            seed_calls = _delta(sb.calls(), before)
            seed_server_cpu = sb.cpu_seconds() - server_cpu
            reset(sample_requests)
            seed_rate = len(sample_keys) / seed_elapsed
            # (b) the engine, on everything, in a fresh process, once per write mode
            for mode in modes:
                label = f"run-{int(latency)}ms-{mode}"
                rep = repeated_runs(
                    args, sb, runs_dir, label, latency, workers_for(mode), mode, reset, main_requests
                )
                res, engine_rate, all_rates = rep.median, rep.rate, rep.all_rates
                rows.append(
                    {
                        "latency_ms": latency,
                        "write_mode": mode,
                        "workers": workers_for(mode),
                        "seed_items_per_s": seed_rate,
                        "engine_items_per_s": engine_rate,
                        "ratio": engine_rate / seed_rate,
                        "seed_calls_per_item": sum(seed_calls.values()) / len(sample_keys),
                        "engine_calls_per_item": sum(res["calls"].values()) / res["patched"],
                        "engine_calls": res["calls"],
                        "seed_cpu_ms_per_item": 1000 * seed_cpu / len(sample_keys),
                        "engine_cpu_ms_per_item": rep.cpu,
                        "engine_cpu_runs": rep.all_cpus,
                        "seed_server_cpu_ms_per_item": 1000 * seed_server_cpu / len(sample_keys),
                        "engine_server_cpu_ms_per_item": 1000 * res["server_cpu"] / res["patched"],
                        "engine_maxrss_mb": res["maxrss_kb"] / 1024,
                        "engine_seconds": res["elapsed"],
                        "wcu": res["write_capacity_units"],
                        "by_path": res["writes_by_path"],
                        "transactions": res["transactions"],
                    }
                )
                r = rows[-1]
                print(
                    f"  {latency:g} ms: seed {seed_rate:.0f} items/s ({r['seed_calls_per_item']:.2f} "
                    f"calls/item, client CPU {r['seed_cpu_ms_per_item']:.2f} ms/item, sandbox CPU "
                    f"{r['seed_server_cpu_ms_per_item']:.2f} ms/item) | engine write_mode={mode} "
                    f"{engine_rate:.0f} items/s (median of {all_rates}) on {res['patched']} items in "
                    f"{res['elapsed']:.1f} s "
                    f"({r['engine_calls_per_item']:.3f} calls/item {res['calls']}, written "
                    f"{res['writes_by_path']} in {res['transactions']} transactions, client CPU "
                    f"{r['engine_cpu_ms_per_item']:.2f} ms/item (median of {r['engine_cpu_runs']}), sandbox CPU "
                    f"{r['engine_server_cpu_ms_per_item']:.2f} ms/item, peak RSS {r['engine_maxrss_mb']:.0f} "
                    f"MB, {r['wcu']:g} WCU reported)",
                    flush=True,
                )
            if latency == args.compare_reads_at:
                base = next(r for r in rows if r["latency_ms"] == latency and r["write_mode"] == "single")
                copy_plan(runs_dir, "plan-1x", f"run-{int(latency)}ms-getitem")
                sb.control("settings", {"latency_ms": latency})
                per_item = run_engine(
                    sb,
                    runs_dir,
                    f"run-{int(latency)}ms-getitem",
                    workers_for("single"),
                    read_batch=1,
                    write_mode="single",
                )
                reset(main_requests)
                print(
                    f"  {latency:g} ms, reads compared (write_mode=single): BatchGetItem ({patch.READ_BATCH} "
                    f"keys) {base['engine_items_per_s']:.0f} items/s, {sum(base['engine_calls'].values())} "
                    f"calls, sandbox CPU {base['engine_server_cpu_ms_per_item']:.2f} ms/item | GetItem per key "
                    f"{per_item['patched'] / per_item['elapsed']:.0f} items/s, "
                    f"{sum(per_item['calls'].values())} calls, sandbox CPU "
                    f"{1000 * per_item['server_cpu'] / per_item['patched']:.2f} ms/item",
                    flush=True,
                )
                copy_plan(runs_dir, "plan-1x", f"run-{int(latency)}ms-no-all-old")
                sb.control("settings", {"latency_ms": latency})
                lean = run_engine(
                    sb,
                    runs_dir,
                    f"run-{int(latency)}ms-no-all-old",
                    workers_for("single"),
                    return_old=False,
                    write_mode="single",
                )
                reset(main_requests)
                print(
                    f"  {latency:g} ms, write_mode=single without ReturnValues=ALL_OLD on writes: "
                    f"{lean['patched'] / lean['elapsed']:.0f} items/s, sandbox CPU "
                    f"{1000 * lean['server_cpu'] / lean['patched']:.2f} ms/item",
                    flush=True,
                )

        memory = []
        if not args.no_memory:
            sb.control("settings", {"latency_ms": 0})
            for label, requests, n in (
                ("plan-1x", main_requests, args.items),
                ("plan-2x", all_requests, 2 * args.items),
            ):
                incident = f"mem-{label}"
                copy_plan(runs_dir, label, incident)
                res = run_engine(
                    sb,
                    runs_dir,
                    incident,
                    workers_for(patch.DEFAULT_WRITE_MODE),
                    trace=True,
                    transact_batch=args.transact_batch,
                )
                reset(requests)
                memory.append((n, res))
                print(
                    f"  memory at {n} items: tracemalloc peak {res['tracemalloc_peak'] / 2**20:.1f} MB "
                    f"during apply_plan, process peak RSS {res['maxrss_kb'] / 1024:.0f} MB "
                    f"(before apply_plan: {res['rss_before_kb'] / 1024:.0f} MB)",
                    flush=True,
                )

        print()
        print(
            f"engine: apply_plan(max_workers={', '.join(f'{m}: {workers_for(m)}' for m in modes)}) on "
            f"{args.items} items, median of {args.repeat} runs "
            f"per latency and write mode; seed: sequential "
            f"GetItem+PutItem on {len(sample_keys)} items; table {args.table_items} items; "
            f"total bench time {time.perf_counter() - t_start:.0f} s"
        )
        if len(memory) == 2:
            (n1, m1), (n2, m2) = memory
            print(
                f"memory: tracemalloc peak {m1['tracemalloc_peak'] / 2**20:.1f} MB at {n1} items, "
                f"{m2['tracemalloc_peak'] / 2**20:.1f} MB at {n2} items; peak RSS "
                f"{m1['maxrss_kb'] / 1024:.0f} MB "
                f"vs {m2['maxrss_kb'] / 1024:.0f} MB"
            )
        print()
        print(
            "| latency | write mode | workers | seed items/s | engine items/s | ratio | calls/item | client CPU ms/item "
            "| sandbox CPU ms/item | transactions | WCU reported |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['latency_ms']:g} ms | {r['write_mode']} | {r['workers']} | {r['seed_items_per_s']:.1f} | "
                f"{r['engine_items_per_s']:.1f} | {r['ratio']:.1f} | {r['engine_calls_per_item']:.3f} | "
                f"{r['engine_cpu_ms_per_item']:.2f} | {r['engine_server_cpu_ms_per_item']:.2f} | "
                f"{r['transactions']} | {r['wcu']:g} |"
            )
        print()
        for r in rows:
            if r["write_mode"] != patch.DEFAULT_WRITE_MODE:
                print(
                    f"mode latency_ms={r['latency_ms']:g} write_mode={r['write_mode']} "
                    f"engine_items_per_s={r['engine_items_per_s']:.1f} ratio={r['ratio']:.1f}"
                )
        for r in rows:
            if r["write_mode"] == patch.DEFAULT_WRITE_MODE:
                print(
                    f"latency_ms={r['latency_ms']:g} seed_items_per_s={r['seed_items_per_s']:.1f} "
                    f"engine_items_per_s={r['engine_items_per_s']:.1f} ratio={r['ratio']:.1f} "
                    f"write_mode={r['write_mode']}"
                )
        return 0
    finally:
        sb.stop()
        if args.keep:
            print(f"run folders kept in {runs_dir}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
