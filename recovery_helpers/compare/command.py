"""``python -m recovery_helpers compare-exports``: diff two FULL exports on DuckDB or Spark, no table needed.

Exports do not carry the table's key schema: ``--key pk[,sk]`` names it (partition key first), or ``--table``
reads it with DescribeTable (AWS credentials and region from the environment, as for any AWS tool).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .canonical import MalformedItemError
from .differences import CompareSummary, prepare_out_dir
from .exports_layout import ExportFiles, is_s3, open_export

ENGINES = ("duckdb", "spark")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the subcommand on the `recovery` parser's subparsers."""
    p = sub.add_parser(
        "compare-exports",
        help="diff two FULL DynamoDB exports (folders or s3:// URIs) on DuckDB or Spark",
        description="Compare two FULL exports in AWS's layout; write one JSON line per differing item "
        "into --out and print compared=N changed=N deleted=N created=N.",
    )
    p.add_argument("--before", required=True, metavar="DIR_OR_S3URI", help="the export before the incident")
    p.add_argument("--after", required=True, metavar="DIR_OR_S3URI", help="the export now")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not hold a comparison)")
    p.add_argument("--engine", choices=ENGINES, default="duckdb", help="comparison engine (default duckdb)")
    p.add_argument("--key", metavar="pk[,sk]", help="the table's key attributes, partition key first")
    p.add_argument("--table", metavar="NAME", help="read the key from DescribeTable instead of --key")
    p.add_argument("--gzip", action="store_true", help="write .jsonl.gz instead of .jsonl")
    p.add_argument(
        "--memory-limit",
        default=None,
        metavar="SIZE",
        help="DuckDB memory limit before it spills to --temp-dir (default 256MB)",
    )
    p.add_argument("--temp-dir", default=None, metavar="DIR", help="DuckDB spill folder / S3 download folder")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="DuckDB threads and decision processes (default: every core)",
    )
    p.add_argument("--master", default=None, help="Spark master (default local[*]; none under spark-submit)")
    p.add_argument(
        "--no-download",
        action="store_true",
        help="Spark on a cluster: read s3:// data files directly (MD5s are not checked)",
    )
    return p


def key_names(key: str | None, table: str | None) -> list[str]:
    """The key attribute names from --key, or from DescribeTable of --table."""
    if key:
        names = [n.strip() for n in key.split(",") if n.strip()]
        if not 1 <= len(names) <= 2:
            raise InputError(f"--key {key!r}: give the partition key, or partition and sort key: --key pk,sk")
        return names
    if table:
        from ..aws import Aws
        from ..items import KeySchema

        return list(KeySchema.of_table(Aws().dynamodb, table).names)
    raise InputError(
        "exports do not carry the table's key: give --key pk[,sk] (partition key first), or --table NAME "
        "to read it from DescribeTable."
    )


def run_compare(
    before: str | Path,
    after: str | Path,
    out: str | Path,
    names: Sequence[str],
    *,
    engine: str = "duckdb",
    gzip_output: bool = False,
    s3: Any = None,
    memory_limit: str | None = None,
    temp_dir: str | Path | None = None,
    threads: int | None = None,
    master: str | None = None,
    spark: Any = None,
    download: bool = True,
) -> CompareSummary:
    """Open both exports (MD5-checked), compare them on ``engine``, write ``out``; returns the counts."""
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    out_remote = "://" in str(out) and not str(out).startswith("file://")
    if out_remote and engine != "spark":
        raise InputError(f"--out {out}: only the spark engine writes to a remote folder; give a local one.")
    if not out_remote:
        try:
            prepare_out_dir(Path(out))
        except FileExistsError as exc:
            raise InputError(
                f"--out {out} already holds a comparison (part-*.jsonl): give an empty or new folder."
            ) from exc
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="compare-exports-", dir=temp_dir) as scratch:
        sides = []
        for name, location in (("before", before), ("after", after)):
            if is_s3(str(location)) and s3 is None:
                from ..aws import Aws

                s3 = Aws().s3
            sides.append(
                open_export(
                    location, s3=s3, download_dir=Path(scratch) / name, verify=download or engine != "spark"
                )
            )
        return compare_files(
            engine,
            sides[0],
            sides[1],
            names,
            out,
            gzip_output=gzip_output,
            memory_limit=memory_limit,
            temp_dir=temp_dir,
            threads=threads,
            master=master,
            spark=spark,
        )


def compare_files(
    engine: str, before: ExportFiles, after: ExportFiles, names: Sequence[str], out: Any, **options: Any
) -> CompareSummary:
    """Compare two opened exports on ``engine`` (``duckdb``/``spark``) into ``out``."""
    options = {
        "gzip_output": False,
        "threads": None,
        "memory_limit": None,
        "temp_dir": None,
        "master": None,
        "spark": None,
        **options,
    }
    try:
        if engine == "duckdb":
            try:
                from . import duckdb_engine
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise InputError(
                    "the duckdb engine needs duckdb: pip install 'recovery-helpers[scale]'"
                ) from exc
            kwargs = {k: options[k] for k in ("gzip_output", "threads")}
            if options["memory_limit"]:
                kwargs["memory_limit"] = options["memory_limit"]
            return duckdb_engine.compare(
                before, after, names, Path(out), temp_directory=options["temp_dir"], **kwargs
            )
        try:
            from . import spark_engine
        except ImportError as exc:  # pragma: no cover
            raise InputError(
                "the spark engine needs pyspark and Java 17: pip install 'recovery-helpers[scale]'"
            ) from exc
        return spark_engine.compare(
            before,
            after,
            names,
            out,
            gzip_output=options["gzip_output"],
            master=options["master"],
            spark=options["spark"],
        )
    except MalformedItemError as exc:
        raise InputError(f"the exports cannot be compared: {exc}") from exc


def main(args: argparse.Namespace) -> int:
    """Run the subcommand; the last line printed is the summary."""
    names = key_names(args.key, args.table)
    summary = run_compare(
        args.before,
        args.after,
        args.out,
        names,
        engine=args.engine,
        gzip_output=args.gzip,
        memory_limit=args.memory_limit,
        temp_dir=args.temp_dir,
        threads=args.threads,
        master=args.master,
        download=not args.no_download,
    )
    print(
        f"equal_but_rewritten={summary.equal_but_rewritten} engine={summary.engine} out={args.out}",
        file=sys.stderr,
    )
    print(summary.line())
    return 0
