"""Compare two FULL exports on Spark: ``local[*]`` on this machine, or a cluster (EMR, Glue) for big tables.

The same plan as the DuckDB engine: every export line is read as text (``spark.read.text``: no schema
inference, nothing dropped), only the key is parsed for the join, byte-identical lines are equal, and every other
pair is decided by :func:`recovery_helpers.compare.differences.decide` (a Python UDF), so both engines give the
same lines in the same order. Workers need this package importable (on a cluster: ``--py-files``; see
docs/reference/engines.md).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .canonical import MalformedItemError, canonical_value
from .differences import CompareSummary, decide, open_output, output_path, write_summary
from .exports_layout import ExportFiles

DEFAULT_MASTER = "local[*]"
#: Shuffle partitions in local mode (a cluster keeps its own setting unless shuffle_partitions is given).
LOCAL_SHUFFLE_PARTITIONS = 8
BAD_KEY = "bad-key"
EQUAL = "equal"


def session(
    master: str | None = None,
    *,
    app_name: str = "recovery-compare-exports",
    shuffle_partitions: int | None = None,
    config: dict[str, str] | None = None,
) -> Any:
    """A SparkSession (the active one if there is one; else a new one on ``master``, default local[*]).

    On spark-submit / Glue the master comes from the cluster: pass ``master=None`` there.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    chosen = master or (None if _submitted() else DEFAULT_MASTER)
    if chosen:
        builder = builder.master(chosen)
    if chosen and chosen.startswith("local"):
        # local mode: workers run this interpreter (so this package and its dependencies are importable)
        builder = builder.config("spark.pyspark.python", sys.executable)
        builder = builder.config("spark.pyspark.driver.python", sys.executable)
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        # Spark's default of 200 shuffle partitions is for clusters; locally it is mostly task overhead
        shuffle_partitions = shuffle_partitions or LOCAL_SHUFFLE_PARTITIONS
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    builder = builder.config("spark.sql.execution.pythonUDF.arrow.enabled", "false")
    for name, value in (config or {}).items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _submitted() -> bool:
    """Running under spark-submit or Glue (the JVM started this Python and chose the master)?"""
    import os

    return "PYSPARK_GATEWAY_PORT" in os.environ


def join_key(value: str | None, key_names: Sequence[str]) -> str | None:
    """The canonical key text of an export line (None: a key attribute is missing or malformed)."""
    if value is None:
        return None
    try:
        item = json.loads(value)["Item"]
        return json.dumps(
            [canonical_value(item[n]) for n in key_names], separators=(",", ":"), ensure_ascii=False
        )
    except (ValueError, KeyError, TypeError, MalformedItemError):
        return None


def _decide_row(
    b_kj: str | None, b_line: str | None, a_kj: str | None, a_line: str | None, key_names: Sequence[str]
) -> tuple[str, str, str]:
    if (b_line is not None and b_kj is None) or (a_line is not None and a_kj is None):
        return "", BAD_KEY, (b_line if b_kj is None and b_line is not None else a_line or "")[:200]
    found = decide(b_line, a_line, key_names)
    return found if found is not None else ("", EQUAL, "")


def compare(
    before: ExportFiles,
    after: ExportFiles,
    key_names: Sequence[str],
    out_dir: str | Path,
    *,
    gzip_output: bool = False,
    master: str | None = None,
    spark: Any = None,
    shuffle_partitions: int | None = None,
) -> CompareSummary:
    """Write the differing items of ``before`` -> ``after`` into ``out_dir``; same lines as the DuckDB engine.

    A local ``out_dir`` gets one ``part-00000.jsonl[.gz]`` (the sorted Spark parts merged); an ``s3://`` or
    ``hdfs://`` one gets Spark's own part files, in key order by file name.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = spark or session(master, shuffle_partitions=shuffle_partitions)
    names = list(key_names)
    key_udf = F.udf(lambda v: join_key(v, names), T.StringType())
    schema = T.StructType(
        [
            T.StructField("k", T.StringType()),
            T.StructField("classification", T.StringType()),
            T.StructField("text", T.StringType()),
        ]
    )
    decide_udf = F.udf(lambda bk, bl, ak, al: _decide_row(bk, bl, ak, al, names), schema)

    def side(files: ExportFiles, alias: str) -> Any:
        lines = spark.read.text(list(files.data_paths)).where(F.length("value") > 0)
        return lines.select(key_udf("value").alias("kj"), F.col("value").alias("line")).alias(alias)

    b, a = side(before, "b"), side(after, "a")
    joined = b.join(a, F.col("b.kj") == F.col("a.kj"), "full_outer").where(
        ~F.col("b.line").eqNullSafe(F.col("a.line")) | F.col("b.kj").isNull() | F.col("a.kj").isNull()
    )
    decided = joined.select(decide_udf("b.kj", "b.line", "a.kj", "a.line").alias("d")).select("d.*")
    decided = decided.persist()
    try:
        counts = {
            row["classification"]: row["count"] for row in decided.groupBy("classification").count().collect()
        }
        if counts.get(BAD_KEY):
            sample = decided.where(F.col("classification") == BAD_KEY).first()["text"]
            raise InputError(
                f"{counts[BAD_KEY]} export lines have no key attribute {' / '.join(names)} (or one of another "
                f"type): check --key (the table's key attributes, partition key first). Line: {sample!r}"
            )
        summary = CompareSummary(
            compared=before.item_count,
            after_items=after.item_count,
            engine="spark",
            changed=counts.get("changed", 0),
            deleted=counts.get("deleted", 0),
            created=counts.get("created", 0),
            equal_but_rewritten=counts.get(EQUAL, 0),
        )
        differences = decided.where(~F.col("classification").isin(EQUAL, BAD_KEY)).orderBy("k").select("text")
        _write(differences, str(out_dir), gzip_output, summary)
    finally:
        decided.unpersist()
    return summary


def _write(differences: Any, out_dir: str, gzip_output: bool, summary: CompareSummary) -> None:
    if "://" in out_dir and not out_dir.startswith("file://"):
        differences.write.mode("errorifexists").text(out_dir, compression="gzip" if gzip_output else None)
        return
    out = Path(out_dir.removeprefix("file://"))
    staging = out / "_spark"
    shutil.rmtree(staging, ignore_errors=True)
    differences.write.text(str(staging))
    target = output_path(out, gzip_output)
    with open_output(target) as merged:
        for part in sorted(staging.glob("part-*")):
            with open(part, encoding="utf-8") as f:
                shutil.copyfileobj(f, merged)
    shutil.rmtree(staging, ignore_errors=True)
    summary.files = (target.name,)
    write_summary(out, summary)
