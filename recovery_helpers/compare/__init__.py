"""Compare two FULL DynamoDB exports at scale (DuckDB embedded, or Spark locally or on a cluster).

``exports_layout`` reads AWS's export layout, ``canonical`` is the comparison's semantics (exact numbers,
unordered sets, maps by key), ``duckdb_engine`` / ``spark_engine`` find the candidates, ``differences`` decides
and writes them, ``command`` is ``recovery compare-exports``, ``synthetic`` generates export pairs for tests
and benchmarks.
"""
