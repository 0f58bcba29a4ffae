"""Compare two FULL exports on embedded DuckDB: bounded memory (a spill folder), every attribute kept.

Why DuckDB: it reads gzipped JSON-lines in parallel, hash-joins millions of rows in a few hundred MB and
spills to disk beyond ``memory_limit`` (``temp_directory``), with no server and no JVM.

How: each export line is read as ONE VARCHAR column (no schema inference, so no attribute a sample missed is
ever dropped). Only the key attributes are parsed in SQL (numbers in keys canonicalized by value in text form,
never through DOUBLE); both sides are full-outer-joined on the key and pairs whose lines are byte-identical
are equal without further work. The remaining candidates (one side missing, or the text differs: a real change
or the same item written in another order or notation) are decided exactly in Python by
:func:`recovery_helpers.compare.differences.decide`, the same code the Spark engine uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .canonical import MalformedItemError
from .differences import CompareSummary, decide, open_output, output_path, write_summary
from .exports_layout import ExportFiles

DEFAULT_MEMORY_LIMIT = "256MB"
FETCH_ROWS = 20_000
#: Longest export line accepted (a 400 KB item of base64 binary and escapes, with margin).
MAX_LINE_BYTES = 4_000_000
#: Column delimiter of the line reader: a control character, which JSON text never holds unescaped.
DELIM = "\x01"

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO ddb_num_parts(t) AS
    regexp_extract(t, '^\s*([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\s*$', ['s', 'i', 'f', 'e']);
CREATE OR REPLACE TEMP MACRO ddb_num_digits(p) AS ltrim(p.i || p.f, '0');
CREATE OR REPLACE TEMP MACRO ddb_num_canon(p) AS
    CASE WHEN ddb_num_digits(p) = '' THEN '0'
         ELSE (CASE WHEN p.s = '-' THEN '-' ELSE '' END) || rtrim(ddb_num_digits(p), '0') || 'E' ||
              CAST(coalesce(TRY_CAST(nullif(p.e, '') AS HUGEINT), 0) - length(p.f)
                   + length(ddb_num_digits(p)) - length(rtrim(ddb_num_digits(p), '0')) AS VARCHAR)
    END;
CREATE OR REPLACE TEMP MACRO ddb_key_part(v) AS
    CASE WHEN v IS NULL THEN NULL
         WHEN json_exists(v, '$.N') THEN 'N' || ddb_num_canon(ddb_num_parts(json_extract_string(v, '$.N')))
         ELSE CAST(v AS VARCHAR)
    END;
"""


def _pointer(name: str) -> str:
    """A JSON Pointer to ``Item.<name>`` (RFC 6901 escapes), as an SQL string literal."""
    escaped = name.replace("~", "~0").replace("/", "~1")
    return "'" + f"/Item/{escaped}".replace("'", "''") + "'"


def _lines(paths: Sequence[str]) -> str:
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    return (
        f"read_csv({files}, columns={{'line': 'VARCHAR'}}, header=false, delim='{DELIM}', quote='', escape='', "
        f"compression='gzip', auto_detect=false, max_line_size={MAX_LINE_BYTES}, buffer_size={4 * MAX_LINE_BYTES})"
    )


def _side(paths: Sequence[str], key_names: Sequence[str]) -> str:
    parts = " || chr(31) || ".join(f"ddb_key_part(json_extract(line, {_pointer(n)}))" for n in key_names)
    return f"(SELECT {parts} AS kj, line FROM {_lines(paths)} WHERE line <> '')"


def connect(memory_limit: str = DEFAULT_MEMORY_LIMIT, temp_directory: str | Path | None = None,
            threads: int | None = None):
    """A DuckDB connection with a memory limit and a spill folder (created if missing)."""
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": False})
    spill = Path(temp_directory) if temp_directory else Path(tempfile.gettempdir()) / "recovery-duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
    con.execute(_MACROS)
    return con


def compare(before: ExportFiles, after: ExportFiles, key_names: Sequence[str], out_dir: Path, *,
            gzip_output: bool = False, memory_limit: str = DEFAULT_MEMORY_LIMIT,
            temp_directory: str | Path | None = None, threads: int | None = None) -> CompareSummary:
    """Write the differing items of ``before`` -> ``after`` into ``out_dir`` (one sorted part file)."""
    import duckdb

    out_dir = Path(out_dir)
    summary = CompareSummary(compared=before.item_count, after_items=after.item_count, engine="duckdb")
    con = connect(memory_limit, temp_directory, threads)
    work = Path(tempfile.mkdtemp(prefix="compare-", dir=temp_directory or None))
    try:
        query = (
            f"SELECT b.kj, b.line, a.kj, a.line FROM {_side(before.data_paths, key_names)} b "
            f"FULL OUTER JOIN {_side(after.data_paths, key_names)} a ON a.kj = b.kj "
            "WHERE b.line IS DISTINCT FROM a.line OR b.kj IS NULL OR a.kj IS NULL"
        )
        unsorted = work / "differences.unsorted"
        try:
            cursor = con.execute(query)
            with open(unsorted, "w", encoding="utf-8") as spill:
                while rows := cursor.fetchmany(FETCH_ROWS):
                    for b_kj, b_line, a_kj, a_line in rows:
                        _check_key(b_kj, b_line, "before", key_names)
                        _check_key(a_kj, a_line, "after", key_names)
                        found = decide(b_line, a_line, key_names)
                        if found is None:
                            summary.equal_but_rewritten += b_line is not None and a_line is not None
                            continue
                        key, classification, text = found
                        summary.add(classification)
                        spill.write(f"{key}{DELIM}{text}\n")
        except duckdb.Error as exc:
            raise MalformedItemError(f"DuckDB could not read the exports: {exc}") from exc
        _write_sorted(con, unsorted, output_path(out_dir, gzip_output))
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    summary.files = (output_path(out_dir, gzip_output).name,)
    write_summary(out_dir, summary)
    return summary


def _check_key(kj: str | None, line: str | None, side: str, key_names: Sequence[str]) -> None:
    if line is not None and kj is None:
        raise InputError(
            f"a line of the {side} export has no key attribute {' / '.join(key_names)} (or one of another "
            f"type): check --key (the table's key attributes, partition key first). Line: {line[:200]!r}"
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
