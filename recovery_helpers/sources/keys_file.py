"""Impacted keys from a file the user prepared: JSON lines, one object of key attribute values per line.

``{"pk": "tenant-1", "sk": "document-1"}``; numbers as JSON numbers, binary as base64 text. A line with the
wrong attribute names or types stops the step with the line number and the table's key, before anything is
written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..numbers import loads_exact
from . import ImpactedKey, SourceRequest

NAME = "keys_file"


def find(request: SourceRequest) -> Iterator[ImpactedKey]:
    """One finding per line (action unknown: the file says which items, not what happened to them)."""
    path = Path(request.keys_file or "")
    if not request.keys_file or not path.is_file():
        raise InputError(
            f"keys_file {request.keys_file!r} does not exist (or is not a file): check the path "
            f"(looked for {path.resolve()})."
        )
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                obj = loads_exact(line)  # number keys keep every digit (never through a float)
            except ValueError as exc:
                raise InputError(
                    f"{where} is not JSON ({exc}). Each line must be one JSON object with the table's key, "
                    f"{request.key_schema.describe()}."
                ) from exc
            try:
                key = request.key_schema.key_from_plain(obj, where=where)
            except InputError as exc:
                expected = request.key_schema.describe()
                if expected in str(exc):
                    raise
                raise InputError(f"{exc}; the table's key is {expected}.", cause=exc) from exc
            request.stats.read += 1
            if not request.selects_key(key):
                request.stats.add("filtered_tenant")
                continue
            yield ImpactedKey(key=key, action="unknown", first_change=None, source=NAME)
