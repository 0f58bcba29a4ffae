"""Compare two FULL exports on embedded DuckDB: bounded memory (a spill folder), every attribute kept.

Why DuckDB: it reads gzipped JSON-lines in parallel, hash-joins millions of rows in a few hundred MB and
spills to disk beyond ``memory_limit`` (``temp_directory``), with no server and no JVM.

How: each export line is read as ONE VARCHAR column (no schema inference, so no attribute a sample missed is
ever dropped). Phase 1 finds, without parsing any JSON, the lines that have no byte-identical twin on the other
side (by two 64-bit hashes of the line, the second salted at random per run): lines written alike are equal
items and most lines are. Only those few lines are parsed for their key attributes and full-outer-joined on the
key as exported; pairs (a real change, or the same item in another order or notation) are decided exactly in
Python by :func:`recovery_helpers.compare.differences.decide`, the same code the Spark engine uses, in worker
processes (:mod:`~recovery_helpers.compare.decide_pool`). Phase 2 pairs the lines that found no partner by
their canonical key (a number key written ``10`` on one side and ``1.0E1`` on the other is one item), so keys
are compared by value too, at the cost of Python only for those few lines.
"""

from __future__ import annotations

import gzip
import itertools
import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from .canonical import MalformedItemError
from .decide_pool import DELIM, canonical_key, decide_rows, decided
from .differences import CompareSummary, open_output, output_path, write_summary
from .exports_layout import ExportFiles

DEFAULT_MEMORY_LIMIT = "256MB"
FETCH_ROWS = 5_000
#: Lines of each export checked for the key attributes before the comparison starts.
KEY_SAMPLE = 1000
#: Longest export line accepted (a 400 KB item of base64 binary and escapes, with margin).
MAX_LINE_BYTES = 4_000_000


def _pointer(name: str) -> str:
    """A JSON Pointer to ``Item.<name>`` (RFC 6901 escapes), as an SQL string literal."""
    escaped = name.replace("~", "~0").replace("/", "~1")
    return "'" + f"/Item/{escaped}".replace("'", "''") + "'"


def _lines(paths: Sequence[str]) -> str:
    if not paths:  # an export of an empty table has no data file
        return "(SELECT NULL::VARCHAR AS line WHERE false)"
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    return (
        f"read_csv({files}, columns={{'line': 'VARCHAR'}}, header=false, delim='{DELIM}', quote='', escape='', "
        f"compression='gzip', auto_detect=false, max_line_size={MAX_LINE_BYTES}, buffer_size={4 * MAX_LINE_BYTES})"
    )


def _hashed(paths: Sequence[str], salt: str) -> str:
    """(h1, h2, line) per non-empty export line: two 64-bit hashes of the line's bytes, the second salted.

    No JSON is parsed: this is the cheap pass every line goes through. (h1, h2) together are the line's
    identity (128 bits; the salt is random per run, so no input can be written to collide on purpose with
    both).
    """
    return (
        f"(SELECT hash(line) AS h1, hash('{salt}' || line) AS h2, line FROM {_lines(paths)} WHERE line <> '')"
    )


def _keyed(source: str, key_names: Sequence[str]) -> str:
    """(kj, line) per line of ``source``; kj = the key attributes' JSON as exported (NULL if one is missing).

    Equal keys written the same way join here; keys written differently (a number key in another notation)
    do not, and are paired again by their canonical key in the second phase.
    """
    pointers = ", ".join(_pointer(n) for n in key_names)
    present = " AND ".join(f"k[{i + 1}] IS NOT NULL" for i in range(len(key_names)))
    return (
        f"(SELECT CASE WHEN {present} THEN CAST(k AS VARCHAR) END AS kj, line FROM "
        f"(SELECT json_extract(line, [{pointers}]) AS k, line FROM {source}))"
    )


def _unmatched_pairs(con, before: Sequence[str], after: Sequence[str], key_names: Sequence[str]) -> str:
    """The query pairing, by key as exported, the lines with no byte-identical line on the other side.

    Two passes over the gzipped exports, no JSON parsed: the "before" lines with their hashes into a table
    (DuckDB keeps it compressed and spills it to the temp folder beyond ``memory_limit``), then the "after"
    lines, each kept only when its hash is not among the "before" ones. The "before" lines whose hash is not
    among the "after" ones are read back from the table. Only those few lines are kept (the big tables are
    dropped before the decisions start) and parsed for their key.
    """
    salt = secrets.token_hex(8)[:13]  # 13 characters: the salted hash also sees the line at another alignment
    con.execute(f"CREATE OR REPLACE TEMP TABLE before_lines AS SELECT * FROM {_hashed(before, salt)}")
    con.execute("CREATE OR REPLACE TEMP TABLE before_hashes AS SELECT DISTINCT h1, h2 FROM before_lines")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE after_lines AS SELECT s.h1, s.h2, "
        f"CASE WHEN bh.h1 IS NULL THEN s.line END AS line FROM {_hashed(after, salt)} s "
        "LEFT JOIN before_hashes bh ON bh.h1 = s.h1 AND bh.h2 = s.h2"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lone_before AS SELECT s.line FROM before_lines s "
        "ANTI JOIN after_lines al ON al.h1 = s.h1 AND al.h2 = s.h2"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lone_after AS SELECT line FROM after_lines WHERE line IS NOT NULL"
    )
    for table in ("before_lines", "before_hashes", "after_lines"):  # their memory goes to the decisions
        con.execute(f"DROP TABLE {table}")
    return (
        f"SELECT b.line, a.line FROM {_keyed('lone_before', key_names)} b "
        f"FULL OUTER JOIN {_keyed('lone_after', key_names)} a ON a.kj = b.kj "
        "WHERE b.line IS DISTINCT FROM a.line"
    )


def connect(
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    temp_directory: str | Path | None = None,
    threads: int | None = None,
):
    """A DuckDB connection with a memory limit and a spill folder (created if missing)."""
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": False})
    spill = Path(temp_directory) if temp_directory else Path(tempfile.gettempdir()) / "recovery-duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
    return con


def compare(
    before: ExportFiles,
    after: ExportFiles,
    key_names: Sequence[str],
    out_dir: Path,
    *,
    gzip_output: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    temp_directory: str | Path | None = None,
    threads: int | None = None,
    decide_processes: int | None = None,
) -> CompareSummary:
    """Write the differing items of ``before`` -> ``after`` into ``out_dir`` (one sorted part file).

    ``decide_processes``: worker processes deciding the candidate pairs; 1: in this process; default: ``threads``
    (else every core) processes, only when there are more candidates than one chunk and spawning cannot run
    the caller's script again (see :mod:`~recovery_helpers.compare.decide_pool`).
    """

    import duckdb

    out_dir = Path(out_dir)
    summary = CompareSummary(compared=before.item_count, after_items=after.item_count, engine="duckdb")
    con = connect(memory_limit, temp_directory, threads)
    work = Path(tempfile.mkdtemp(prefix="compare-", dir=temp_directory or None))
    unsorted, orphans = work / "differences.unsorted", work / "orphans"
    try:
        with open(unsorted, "w", encoding="utf-8") as spill, open(orphans, "w", encoding="utf-8") as lonely:
            # 1. pairs by the key as exported: byte-identical lines are equal; the rest is decided exactly
            _check_key(before.data_paths, key_names, "b")
            _check_key(after.data_paths, key_names, "a")
            try:
                query = _unmatched_pairs(con, before.data_paths, after.data_paths, key_names)
            except duckdb.Error as exc:
                raise MalformedItemError(f"DuckDB could not read the exports: {exc}") from exc
            for kind, value in decided(_chunks(con, query), key_names, decide_processes, auto=threads):
                if kind == "lone":  # one side only under the key as exported: paired again by canonical key
                    lonely.write(value)
                else:
                    _record(value, summary, spill)
            lonely.flush()
            # 2. items present on one side only under their exported key: by canonical key
            if orphans.stat().st_size:
                for rows in _chunks(con, _orphan_pairs(orphans)):
                    for _, found in decide_rows(rows, key_names, lone=False):
                        _record(found, summary, spill)
        _write_sorted(con, unsorted, output_path(out_dir, gzip_output))
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    summary.files = (output_path(out_dir, gzip_output).name,)
    write_summary(out_dir, summary)
    return summary


def _chunks(con, query: str):
    """Stream a query's rows in chunks; DuckDB fetches the next ones in a thread while the caller decides.

    (DuckDB releases the GIL while it works, so its scan and join overlap with the Python decisions.) Errors on
    the exports come out as MalformedItemError.
    """
    import duckdb

    chunks: queue.Queue = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            cursor = con.execute(query)
            while rows := cursor.fetchmany(FETCH_ROWS):
                chunks.put(rows)
            chunks.put(None)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="duckdb-fetch", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, duckdb.Error):
                raise MalformedItemError(f"DuckDB could not read the exports: {item}") from item
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if worker.is_alive():
            con.interrupt()
            while worker.is_alive():
                try:
                    chunks.get(timeout=0.1)
                except queue.Empty:
                    pass
        worker.join()


def _record(found, summary: CompareSummary, spill) -> None:
    if found is None:
        summary.equal_but_rewritten += 1
        return
    key, classification, text = found
    summary.add(classification)
    spill.write(f"{key}{DELIM}{text}\n")


def _check_key(paths: Sequence[str], key_names: Sequence[str], side: str) -> None:
    """Refuse a wrong ``--key`` before any work: the first lines of the export must hold every key attribute.

    (Only the unmatched lines are parsed later, so an export whose lines all match would otherwise pass.)
    """
    if not paths:
        return
    with gzip.open(paths[0], "rt", encoding="utf-8") as f:
        for line in itertools.islice(filter(str.strip, f), KEY_SAMPLE):
            canonical_key(line, key_names, side)


def _orphan_pairs(orphans: Path) -> str:
    src = str(orphans).replace("'", "''")
    table = (
        f"read_csv('{src}', columns={{'k': 'VARCHAR', 'side': 'VARCHAR', 'line': 'VARCHAR'}}, header=false, "
        f"delim='{DELIM}', quote='', escape='', auto_detect=false, max_line_size={2 * MAX_LINE_BYTES}, "
        f"buffer_size={8 * MAX_LINE_BYTES})"
    )
    return (
        f"WITH o AS (SELECT * FROM {table}) "
        "SELECT b.line, a.line FROM (SELECT k, line FROM o WHERE side = 'b') b "
        "FULL OUTER JOIN (SELECT k, line FROM o WHERE side = 'a') a ON a.k = b.k"
    )


def _write_sorted(con, unsorted: Path, target: Path) -> None:
    """The differences in key order (DuckDB sorts out of core), as the output part file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_output(target) as out:
        if unsorted.stat().st_size == 0:
            return
        src = str(unsorted).replace("'", "''")
        cursor = con.execute(
            f"SELECT line FROM read_csv('{src}', columns={{'k': 'VARCHAR', 'line': 'VARCHAR'}}, header=false, "
            f"delim='{DELIM}', quote='', escape='', auto_detect=false, max_line_size={3 * MAX_LINE_BYTES}, "
            f"buffer_size={12 * MAX_LINE_BYTES}) ORDER BY k"
        )
        while rows := cursor.fetchmany(FETCH_ROWS):
            out.writelines(f"{line}\n" for (line,) in rows)
