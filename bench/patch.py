"""Benchmark: the patch engine against the seed article's loop, on the sandbox, at 0, 5 and 30 ms of latency.

    .venv/bin/python bench/patch.py                         # 50,000-item table, 5,000 corrupted items
    .venv/bin/python bench/patch.py --table-items 5000 --items 500   # quick run

One run: starts `python -m recovery_helpers sandbox` in its own process (client and server do not share a
GIL), creates the table with BatchWriteItem, corrupts 2 x --items items (updates, deletes, creates), restores
the table to before the corruption with point-in-time recovery (restore.restore_table), builds and approves
the plan with diff.build_plan / diff.approve from a keys file, then for every latency measures
  (a) the seed's loop: sequential GetItem from the restored table + unconditional PutItem into the live table,
      on a sample of updated items (it is a rate), and
  (b) the engine: patch.apply_plan(dry_run=False) on all --items items, in a fresh process per run,
resetting the corrupted items between runs. Peak memory is measured at --items and 2 x --items.
See bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
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

import boto3  # noqa: E402

from recovery_helpers import diff, patch, restore  # noqa: E402
from recovery_helpers import plan as planlib  # noqa: E402
from recovery_helpers.aws import DEFAULT_CONFIG, Aws  # noqa: E402
from recovery_helpers.context import open_context  # noqa: E402
from recovery_helpers.items import KeySchema, iter_chunks  # noqa: E402

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


def child_engine(args: argparse.Namespace) -> None:
    """Run apply_plan once and print what it cost (time, CPU, memory) as one JSON line."""
    import tracemalloc

    patch.RETURN_OLD = not args.no_return_old
    ctx = open_context(args.child_incident, TABLE, REGION, os.environ["AWS_ENDPOINT_URL"], args.runs_dir)
    _ = ctx.who  # resolve the caller before timing
    if args.tracemalloc:
        tracemalloc.start()
    rss0 = peak_rss_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    report = patch.apply_plan(
        ctx, dry_run=False, max_workers=args.workers, progress=False, read_batch_size=args.read_batch
    )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
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
        ]
        + (["--tracemalloc"] if trace else [])
        + ([] if return_old else ["--no-return-old"])
    )
    before, server_cpu = sb.calls(), sb.cpu_seconds()
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **sb.env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"engine run failed:\n{out.stderr[-3000:]}")
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    result["calls"] = _delta(sb.calls(), before)
    result["server_cpu"] = sb.cpu_seconds() - server_cpu
    return result


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
    ap.add_argument("--workers", type=int, default=32, help="engine max_workers (default 32)")
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
    ap.add_argument("--read-batch", type=int, default=patch.READ_BATCH, help=argparse.SUPPRESS)
    ap.add_argument("--no-return-old", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--profile-sandbox",
        metavar="FILE",
        help="instead of the benchmark: one engine run at 0 ms on a sandbox whose request handling is "
        "profiled "
        "(cProfile, requests one at a time); the stats go to FILE",
    )
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
    if args.items * 2 > args.table_items:
        ap.error("--table-items must be at least twice --items (the memory run patches 2 x --items)")
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]

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
                for r in requests:
                    f.write(json.dumps(schema.key_to_plain(key_of_request(r))) + "\n")
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

        if args.profile_sandbox:
            copy_plan(runs_dir, "plan-1x", "profiled")
            sb.proc.send_signal(signal.SIGUSR1)
            res = run_engine(sb, runs_dir, "profiled", args.workers)
            sb.stop()  # writes the profile
            print(
                f"profiled engine run: {res['patched']} items in {res['elapsed']:.1f} s, "
                f"calls {res['calls']}; "
                f"sandbox profile in {args.profile_sandbox}"
            )
            return 0

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
            # (b) the engine, on everything, in a fresh process
            incident = f"run-{int(latency)}ms"
            copy_plan(runs_dir, "plan-1x", incident)
            sb.control("settings", {"latency_ms": latency})
            res = run_engine(sb, runs_dir, incident, args.workers)
            reset(main_requests)
            if res["patched"] != args.items or res["conflicts"] or res["failed"]:
                raise RuntimeError(f"engine run at {latency} ms is wrong: {res}")
            seed_rate = len(sample_keys) / seed_elapsed
            engine_rate = res["patched"] / res["elapsed"]
            if latency == args.compare_reads_at:
                copy_plan(runs_dir, "plan-1x", f"{incident}-getitem")
                sb.control("settings", {"latency_ms": latency})
                per_item = run_engine(sb, runs_dir, f"{incident}-getitem", args.workers, read_batch=1)
                reset(main_requests)
                print(
                    f"  {latency:g} ms, reads compared: BatchGetItem ({patch.READ_BATCH} keys) "
                    f"{res['patched'] / res['elapsed']:.0f} items/s, {sum(res['calls'].values())} calls, "
                    f"sandbox CPU {1000 * res['server_cpu'] / res['patched']:.2f} ms/item | GetItem per key "
                    f"{per_item['patched'] / per_item['elapsed']:.0f} items/s, "
                    f"{sum(per_item['calls'].values())} calls, sandbox CPU "
                    f"{1000 * per_item['server_cpu'] / per_item['patched']:.2f} ms/item",
                    flush=True,
                )
                copy_plan(runs_dir, "plan-1x", f"{incident}-no-all-old")
                sb.control("settings", {"latency_ms": latency})
                lean = run_engine(sb, runs_dir, f"{incident}-no-all-old", args.workers, return_old=False)
                reset(main_requests)
                print(
                    f"  {latency:g} ms, without ReturnValues=ALL_OLD on writes (moto serializes the returned "
                    "item "
                    f"slowly): {lean['patched'] / lean['elapsed']:.0f} items/s, sandbox CPU "
                    f"{1000 * lean['server_cpu'] / lean['patched']:.2f} ms/item",
                    flush=True,
                )
            rows.append(
                {
                    "latency_ms": latency,
                    "seed_items_per_s": seed_rate,
                    "engine_items_per_s": engine_rate,
                    "ratio": engine_rate / seed_rate,
                    "seed_calls_per_item": sum(seed_calls.values()) / len(sample_keys),
                    "engine_calls_per_item": sum(res["calls"].values()) / res["patched"],
                    "engine_calls": res["calls"],
                    "seed_cpu_ms_per_item": 1000 * seed_cpu / len(sample_keys),
                    "engine_cpu_ms_per_item": 1000 * res["cpu"] / res["patched"],
                    "seed_server_cpu_ms_per_item": 1000 * seed_server_cpu / len(sample_keys),
                    "engine_server_cpu_ms_per_item": 1000 * res["server_cpu"] / res["patched"],
                    "engine_maxrss_mb": res["maxrss_kb"] / 1024,
                    "engine_seconds": res["elapsed"],
                    "wcu": res["write_capacity_units"],
                }
            )
            r = rows[-1]
            print(
                f"  {latency:g} ms: seed {seed_rate:.0f} items/s ({r['seed_calls_per_item']:.2f} calls/item, "
                f"client CPU {r['seed_cpu_ms_per_item']:.2f} ms/item, sandbox CPU "
                f"{r['seed_server_cpu_ms_per_item']:.2f} ms/item) | engine {engine_rate:.0f} items/s on "
                f"{res['patched']} items in {res['elapsed']:.1f} s ({r['engine_calls_per_item']:.3f} "
                f"calls/item {res['calls']}, client CPU {r['engine_cpu_ms_per_item']:.2f} ms/item, sandbox "
                f"CPU {r['engine_server_cpu_ms_per_item']:.2f} ms/item, peak RSS "
                f"{r['engine_maxrss_mb']:.0f} MB, {r['wcu']:g} WCU)",
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
                res = run_engine(sb, runs_dir, incident, args.workers, trace=True)
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
            f"engine: apply_plan(max_workers={args.workers}) on {args.items} items; seed: sequential "
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
        for r in rows:
            print(
                f"latency_ms={r['latency_ms']:g} seed_items_per_s={r['seed_items_per_s']:.1f} "
                f"engine_items_per_s={r['engine_items_per_s']:.1f} ratio={r['ratio']:.1f}"
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
