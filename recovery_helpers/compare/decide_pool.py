"""Decide candidate pairs in worker processes: pairs are independent, so chunks of them go to a pool.

The DuckDB engine finds the candidate pairs (lines with no byte-identical twin, paired by key as exported);
deciding them exactly (JSON parse, numbers by value, sets unordered) is Python and the slow part of a large
comparison. :func:`decided` spreads the chunks over ``processes`` worker processes (started with ``spawn``:
never forked from a process running DuckDB threads) and gives the results back in the order of the chunks,
so the output is the same whatever the number of processes (the part file is sorted by key afterwards anyway).
A comparison whose candidates fit in one chunk is decided in this process: starting workers would cost more;
so is one called from a plain script (see :func:`_spawn_safe`).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from ..errors import InputError
from .canonical import key_of, key_text
from .differences import decide

#: Pairs one worker decides at a time.
CHUNK = 2_000
#: Column delimiter of the scratch files (a control character, which JSON text never holds unescaped).
DELIM = "\x01"

Decision = tuple[str, str, str] | None  # (key_text, classification, output line), None: equal
Result = tuple[str, "Decision | str"]  # ("pair", decision) or ("lone", orphan line for the second phase)


def canonical_key(line: str, key_names: Sequence[str], side: str) -> str:
    """The canonical key text of one export line (InputError: the key attributes are missing)."""
    try:
        item = json.loads(line)["Item"]
        return key_text(key_of(item, key_names), key_names)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"a line of the {'before' if side == 'b' else 'after'} export has no key attribute "
            f"{' / '.join(key_names)}: check --key (the table's key attributes, partition key first). "
            f"Line: {line[:200]!r}"
        ) from exc


def decide_rows(
    rows: Sequence[tuple[str | None, str | None]], key_names: Sequence[str], *, lone: bool = True
) -> list[Result]:
    """Each (before line, after line): its decision, or (``lone``) a one-sided line to pair again by key."""
    out: list[Result] = []
    for b_line, a_line in rows:
        if lone and (b_line is None or a_line is None):
            side, line = ("b", b_line) if a_line is None else ("a", a_line)
            out.append(("lone", f"{canonical_key(line, key_names, side)}{DELIM}{side}{DELIM}{line}\n"))
        else:
            out.append(("pair", decide(b_line, a_line, key_names)))
    return out


def decided(
    chunks: Iterable[list[tuple[str | None, str | None]]],
    key_names: Sequence[str],
    processes: int | None,
    *,
    auto: int | None = None,
) -> Iterator[Result]:
    """:func:`decide_rows` over every chunk, results in the chunks' order, on ``processes`` workers (1: in this
    process; None: ``auto`` workers, else one per core, only when the candidates fill more than one chunk and
    :func:`_spawn_safe`)."""
    names = list(key_names)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    if processes == 1 or (processes is None and (len(first) <= CHUNK or not _spawn_safe())):
        yield from decide_rows(first, names)
        for chunk in chunks:
            yield from decide_rows(chunk, names)
        return
    workers = processes or auto or multiprocessing.cpu_count()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future] = deque()
        for chunk in _pieces(first, chunks):
            pending.append(pool.submit(decide_rows, chunk, names))
            if len(pending) >= 2 * workers:  # bounded: memory stays flat however many candidates
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _spawn_safe() -> bool:
    """Can workers start without running the caller's script again? Yes under ``python -m`` (the command),
    in a notebook or a REPL; a plain ``python script.py`` is re-imported by every spawned worker, so there
    the default is to decide in this process (pass the number of processes to use workers anyway: the
    script then needs its ``if __name__ == "__main__":`` guard)."""
    main = sys.modules.get("__main__")
    return getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__")


def _pieces(first: list, rest: Iterator[list]) -> Iterator[list]:
    """The rows of every chunk again, in pieces of at most CHUNK."""
    for chunk in itertools.chain([first], rest):
        yield from (chunk[i : i + CHUNK] for i in range(0, len(chunk), CHUNK))
