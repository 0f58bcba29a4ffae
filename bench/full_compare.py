"""Benchmark of the full_compare source: throughput and peak memory for growing tables (memory stays flat).

    .venv/bin/python bench/full_compare.py                 # 2k, 8k, 32k items
    .venv/bin/python bench/full_compare.py --sizes 1000,4000 --segments 8 --workers 4

The sandbox runs in a child process so that the measured process holds only the runbook side. For each
size it fills a "restored" and a "live" table (1% of items changed, 0.5% deleted, 0.5% created), runs
full_compare under tracemalloc (items/s = restored items compared per second of wall time; peak = the most
memory the comparing process allocated at once), checks that exactly the planted differences were found, and
ends with one line per size: ``items=... items_per_s=... peak_mb=...``. Throughput here is the sandbox's (moto
serialises about 1,000 items/s per request on this kind of machine); on AWS the read capacity and the network
bound it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from recovery_helpers.aws import Aws
from recovery_helpers.items import KeySchema, iter_chunks
from recovery_helpers.sources import SourceRequest, SourceStats, full_compare


def serve_sandbox(conn: Any, stop: Any) -> None:
    """Child process: run the sandbox (IAM off: the bench measures the runbook, not IAM evaluation)."""
    from recovery_helpers.sandbox import Sandbox

    with Sandbox(enforce_iam=False) as sb:
        conn.send(sb.client_kwargs())
        stop.wait()


def item(i: int, version: int = 0) -> dict[str, Any]:
    """An item of about 250 bytes with a string hash key, a number range key and several types."""
    return {
        "pk": {"S": f"customer-{i % 997:04d}"},
        "sk": {"N": str(i)},
        "name": {"S": f"document {i} " + "x" * 80},
        "version": {"N": str(version)},
        "tags": {"SS": ["a", "b", f"t{i % 7}"]},
        "flags": {"M": {"active": {"BOOL": True}, "score": {"N": "1.5"}}},
        "history": {"L": [{"N": str(i)}, {"S": "created"}, {"NULL": True}]},
        "blob": {"B": bytes([i % 256]) * 16},
    }


def fill(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    def write(chunk: list[dict[str, Any]]) -> None:
        requests = [{"PutRequest": {"Item": i}} for i in chunk]
        while requests:
            out = ddb.batch_write_item(RequestItems={table: requests})
            requests = out.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, iter_chunks(items, 25)))


def create(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


def prepare(aws: Aws, size: int) -> tuple[str, str, int]:
    """The two tables for one size; returns their names and the number of planted differences."""
    live, restored = f"bench-live-{size}", f"bench-restored-{size}"
    create(aws.dynamodb, live)
    create(aws.dynamodb, restored)
    fill(aws.dynamodb, restored, [item(i) for i in range(size)])
    live_items, differences = [], 0
    for i in range(size):
        if i % 200 == 1:
            differences += 1  # deleted
        elif i % 100 == 2:
            live_items.append(item(i, version=1))  # changed
            differences += 1
        else:
            live_items.append(item(i))
    extra = size // 200
    live_items.extend(item(size + j) for j in range(extra))  # created
    fill(aws.dynamodb, live, live_items)
    return live, restored, differences + extra


def run(
    aws: Aws, live: str, restored: str, segments: int, workers: int, page_size: int
) -> tuple[int, SourceStats]:
    now = dt.datetime.now(dt.UTC)
    stats = SourceStats(source="full_compare")
    with tempfile.TemporaryDirectory() as scratch:
        request = SourceRequest(
            aws=aws,
            table_name=live,
            key_schema=KeySchema("pk", "S", "sk", "N"),
            restored_table_name=restored,
            window_start=now,
            window_end=now,
            scratch_dir=Path(scratch),
            stats=stats,
            options={"total_segments": segments, "max_workers": workers, "page_size": page_size},
        )
        found = sum(1 for _ in full_compare.find(request))
    return found, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,8000,32000", help="comma-separated table sizes (items)")
    parser.add_argument("--segments", type=int, default=8, help="TotalSegments of the scans")
    parser.add_argument("--workers", type=int, default=4, help="worker threads")
    parser.add_argument(
        "--page-size",
        type=int,
        default=250,
        help="items per scan page (Limit); 250 fills every page already at 2,000 items",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    server = ctx.Process(target=serve_sandbox, args=(child, stop), daemon=True)
    server.start()
    try:
        kwargs = parent.recv()
        session = boto3.session.Session(
            aws_access_key_id=kwargs["aws_access_key_id"],
            aws_secret_access_key=kwargs["aws_secret_access_key"],
            region_name=kwargs["region_name"],
        )
        aws = Aws(region=kwargs["region_name"], endpoint_url=kwargs["endpoint_url"], session=session)
        results = []
        for size in sizes:
            t = time.perf_counter()
            live, restored, planted = prepare(aws, size)
            print(f"# {size} items: tables filled in {time.perf_counter() - t:.1f} s", flush=True)
            tracemalloc.start()
            t = time.perf_counter()
            found, stats = run(aws, live, restored, args.segments, args.workers, args.page_size)
            elapsed = time.perf_counter() - t
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            if found != planted or stats.read != size:
                print(
                    f"# WRONG: planted {planted} differences, found {found}; compared {stats.read} of {size}",
                    flush=True,
                )
                return 1
            print(f"# {size} items: {found} differences found in {elapsed:.1f} s", flush=True)
            results.append((size, size / elapsed, peak / 2**20))
        for size, rate, peak_mb in results:
            print(f"items={size} items_per_s={rate:.0f} peak_mb={peak_mb:.2f}")
    finally:
        stop.set()
        server.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
