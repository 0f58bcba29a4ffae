"""Paths mean what the user meant, wherever a kernel runs.

A parameters file names files relative to itself (``log_file: ../logs/changes.jsonl``), so its relative paths
are resolved against the file's folder when it is read; a ``-p`` value given on the command line is resolved
against the directory the command runs in. Notebooks then receive absolute paths, and JupyterLab's working
directory (``notebooks/``, the run folder, wherever ``jupyter lab`` started) cannot change what they mean.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Parameters that name files or folders on the engineer's machine.
PATH_PARAMETERS: tuple[str, ...] = ("runs_dir", "keys_file", "log_file")


def absolute(value: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``value`` as an absolute path: ``~`` expanded, a relative path taken from ``base``."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base).expanduser().resolve() / path
    return os.path.normpath(path)


def absolute_paths(params: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """A copy of ``params`` whose path parameters (:data:`PATH_PARAMETERS`) are absolute, relative to ``base``.

    Values that are not text (``None``, a list given by mistake) are left for the steps to refuse.
    """
    out = dict(params)
    for name in PATH_PARAMETERS:
        value = out.get(name)
        if isinstance(value, str) and value.strip():
            out[name] = absolute(value.strip(), base)
    return out
