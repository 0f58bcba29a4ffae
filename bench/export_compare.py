"""Benchmark of compare-exports: a 1,000,000-item FULL export pair in AWS's layout, on DuckDB and on Spark.

    .venv/bin/python bench/export_compare.py                              # 1M items, both engines
    .venv/bin/python bench/export_compare.py --items 200000 --engines duckdb
    .venv/bin/python bench/export_compare.py --memory-limit 192MB --threads 2

The pair (generated once, cached in ``--dir``) has 2% of items really differing (changed, deleted, created;
among them 38-digit numbers one unit off in the last digit) and 2% rewritten in an equal form (attributes, map
keys and set elements reordered, numbers in another notation such as ``1.50`` / ``15E-1``) that must NOT be
reported. Each engine runs as the real command (``python -m recovery_helpers compare-exports``, MD5 checks
included) in a child process; its peak RSS is the highest sum of RSS over the child and its descendants (the
JVM for Spark), sampled every 50 ms. ``items_per_s`` = items generated (keys in either export) / wall seconds
of the command. ``correct=yes`` iff the output lists exactly the planted differences with the right classification.
A comment line per engine also gives the CPU seconds the command used (wall time depends on how busy the
machine is; CPU time much less).
Last, one line per engine::

    engine=duckdb items=1000000 items_per_s=X peak_rss_mb=Y correct=yes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recovery_helpers.compare.canonical import key_text
from recovery_helpers.compare.differences import read_differences
from recovery_helpers.compare.synthetic import write_pair


def _pair(directory: Path, items: int, regenerate: bool) -> dict:
    marker = directory / "expected.json"
    if marker.exists() and not regenerate:
        return json.loads(marker.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    started = time.monotonic()
    expected = write_pair(directory, items, items_per_file=50_000)
    data = {
        "before_items": expected.before_items,
        "after_items": expected.after_items,
        "traps": expected.traps,
        "differences": expected.differences,
    }
    marker.write_text(json.dumps(data))
    print(f"# generated {items} items in {time.monotonic() - started:.0f} s into {directory}", flush=True)
    return data


def _tree_rss(pid: int) -> int:
    """RSS bytes of a process and all its descendants (read from /proc)."""
    total, stack, page = 0, [pid], os.sysconf("SC_PAGE_SIZE")
    while stack:
        p = stack.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _run(engine: str, pair: Path, out: Path, args: argparse.Namespace) -> tuple[float, int, str, float]:
    cmd = [
        sys.executable,
        "-m",
        "recovery_helpers",
        "compare-exports",
        "--before",
        str(pair / "before"),
        "--after",
        str(pair / "after"),
        "--out",
        str(out),
        "--engine",
        engine,
        "--key",
        "pk,sk",
    ]
    if engine == "duckdb":
        cmd += ["--memory-limit", args.memory_limit]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        cmd += ["--temp-dir", str(out.parent / "spill")]
    else:
        cmd += ["--master", args.spark_master]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed ({proc.returncode}):\n{stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, peak, stdout.strip().splitlines()[-1], cpu


def _correct(out: Path, expected: dict) -> bool:
    found = {key_text(d["key"], ["pk", "sk"]): d["classification"] for d in read_differences(out)}
    return found == expected["differences"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument(
        "--dir", default=None, help="where the pair is cached (default: $TMPDIR/export-pair-N)"
    )
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB memory_limit (spills beyond it)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: every core)")
    parser.add_argument("--spark-master", default="local[2]")
    args = parser.parse_args()

    pair = Path(args.dir or Path(tempfile.gettempdir()) / f"export-pair-{args.items}")
    expected = _pair(pair, args.items, args.regenerate)
    counts = {c: list(expected["differences"].values()).count(c) for c in ("changed", "deleted", "created")}
    print(
        f"# pair: before={expected['before_items']} after={expected['after_items']} {counts} "
        f"equal_rewrites={expected['traps']}",
        flush=True,
    )
    lines = []
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        out = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-")) / "out"
        load = os.getloadavg()[0]
        elapsed, peak, summary, cpu = _run(engine, pair, out, args)
        ok = _correct(out, expected)
        print(
            f"# {engine}: {elapsed:.1f} s wall, {cpu:.1f} s CPU (user+sys of the command; for Spark the JVM "
            f"only if it was reaped), load average before {load:.2f} after {os.getloadavg()[0]:.2f}; "
            f"{summary}",
            flush=True,
        )
        lines.append(
            f"engine={engine} items={args.items} "
            f"items_per_s={args.items / elapsed:.0f} peak_rss_mb={peak / 2**20:.0f} "
            f"correct={'yes' if ok else 'no'}"
        )
        shutil.rmtree(out.parent, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
