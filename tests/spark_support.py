"""One local SparkSession for the Spark tests; skipped loudly when Java or pyspark is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def spark_missing() -> str | None:
    """Why Spark cannot run here (None: it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return (
            "pyspark is not installed (pip install 'recovery-helpers[scale]'): the Spark engine is NOT tested"
        )
    if shutil.which("java") is None:
        return "no `java` on PATH (Spark needs Java 17): the Spark engine is NOT tested"
    return None


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """local[2], few shuffle partitions, no UI: small and quick."""
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    from recovery_helpers.compare import spark_engine

    spark = spark_engine.session("local[2]", shuffle_partitions=4)
    yield spark
    spark.stop()
