"""The runner's inputs: step names, the parameters file and ``-p`` overrides, and what each notebook declares.

Split out of :mod:`recovery_helpers.runner` (which re-exports every name): every parameter name is checked
against what the notebooks declare before anything runs, and each notebook receives only its own.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import importlib.resources
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError
from .paths import absolute_paths

#: Runbook steps in the order they run, and the notebook of each.
STEPS: tuple[str, ...] = ("prepare", "contain", "restore", "diff", "patch", "lift")
NOTEBOOKS: dict[str, str] = {name: f"{i:02d}_{name}.ipynb" for i, name in enumerate(STEPS, start=1)}


# -- inputs ------------------------------------------------------------------------------------------------
def default_notebooks_dir() -> Path:
    """Where the six notebooks are: ``$RECOVERY_NOTEBOOKS`` if set; in a source checkout (an editable install
    included) the repository's ``notebooks/``, what users open; else the copy an installed wheel ships as
    package data (``recovery_helpers/notebooks``), found with importlib.resources."""
    env = os.environ.get("RECOVERY_NOTEBOOKS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent / "notebooks"
    if (checkout / "01_prepare.ipynb").is_file():
        return checkout
    return Path(str(importlib.resources.files("recovery_helpers") / "notebooks"))


def parse_steps(text: str | Sequence[str] | None) -> list[str]:
    """``"diff,patch"`` (or a list) as step names in runbook order; ``None`` or ``"all"``: all six."""
    if text is None:
        return list(STEPS)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names or names == ["all"]:
        return list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise InputError(
            f"unknown step(s) {', '.join(unknown)}: choose from {', '.join(STEPS)} (comma separated)."
        )
    return [s for s in STEPS if s in names]


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value read as YAML: ``false`` a bool, ``3`` an int, ``[a, b]`` a list."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_parameters(
    path: str | os.PathLike[str] | None, overrides: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """Read a parameters file (a YAML mapping) and apply ``-p NAME VALUE`` overrides (values read as YAML).

    Relative paths in the file (``runs_dir``, ``keys_file``, ``log_file``) are made absolute against the file's
    folder; overrides are kept as given (relative to where the kernels run, the command's directory).
    """
    params: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(
                f"parameters file {str(p)!r} not found (looked for {p.resolve()}): pass -f with a YAML "
                "file (see parameters/)."
            )
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
            if context and cmark is not None:
                problem = f"{context} at line {cmark.line + 1}, column {cmark.column + 1}: {problem}"
            raise InputError(
                f"parameters file {str(p)!r} is not valid YAML: {problem}{where}. Fix that line "
                "(quote values that contain ': ' or start with '[', '{', '*' or '&').",
                cause=exc,
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
            what = (
                f"names that are not text ({', '.join(repr(k) for k in loaded if not isinstance(k, str))})"
                if isinstance(loaded, dict)
                else f"a {type(loaded).__name__}"
            )
            raise InputError(
                f"parameters file {str(p)!r} holds {what}, not a mapping of parameter names to values: "
                "write one `name: value` per line (see parameters/sandbox.yaml)."
            )
        # relative paths in the file mean "beside this file", whichever directory the command runs in
        params.update(absolute_paths(loaded, p.parent))
    for name, value in overrides:
        params[name] = parse_value(value)
    return params


def _plain(value: Any) -> Any:
    """YAML gives datetimes for unquoted timestamps; notebooks take ISO 8601 text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InputError(
                f"time {value.isoformat()} has no UTC offset: write it with one, "
                f"e.g. {value.isoformat()}+00:00."
            )
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- notebooks ---------------------------------------------------------------------------------------------
class _QuietPapermill(logging.Filter):
    """Drop papermill's warnings about parameter lines it cannot parse: the runner reads those cells itself.

    papermill's parser gives up on a line whose comment contains ``=`` or quotes (``x = None  # e.g. a="b"``)
    or whose annotation is ``X | None``, warns, and then calls the name unknown when it is passed. The names
    are checked here (see :func:`declared_parameters`), so those warnings would only mislead.
    """

    NOISE = ("Unable to parse line", "Passed unknown parameter")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(record.msg).startswith(n) for n in self.NOISE)


for _name in ("papermill", "papermill.translators"):
    logging.getLogger(_name).addFilter(_QuietPapermill())


def declared_parameters(notebook: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares: papermill's view, plus any name its parser misses.

    papermill's parser skips assignments annotated ``X | None`` or commented with ``=`` or quotes; a name
    assigned at the top of the ``parameters`` cell is declared whatever its form, so the cell is also read
    with :mod:`ast`.
    """
    import nbformat
    import papermill

    path = Path(notebook)
    try:
        found = papermill.inspect_notebook(str(path))
    except ValueError as exc:  # no kernelspec in the notebook's metadata
        raise InputError(f"cannot read the parameters of {path}: {exc}", cause=exc) from exc
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            break
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in found:
                    found[target.id] = {
                        "name": target.id,
                        "inferred_type_name": "None",
                        "default": None,
                        "help": "",
                    }
        break
    return found


def _notebook_paths(notebooks_dir: Path, steps: Sequence[str]) -> dict[str, Path]:
    """Every step notebook present (together they define the known names); refuse missing selected ones."""
    if not notebooks_dir.is_dir():
        raise InputError(
            f"notebooks directory {str(notebooks_dir)!r} not found (looked for {notebooks_dir.resolve()}): "
            "pass --notebooks DIR or set RECOVERY_NOTEBOOKS."
        )
    paths = {s: notebooks_dir / NOTEBOOKS[s] for s in STEPS}
    missing = [str(paths[s]) for s in steps if not paths[s].is_file()]
    if missing:
        raise InputError(f"notebook(s) not found: {', '.join(missing)}.")
    return {s: p for s, p in paths.items() if p.is_file()}


def _is_text(declared: Mapping[str, Any]) -> bool:
    """Whether a notebook declares the parameter as text (``x: str = ...`` or a quoted default)."""
    default = str(declared.get("default") or "")
    return declared.get("inferred_type_name") == "str" or default[:1] in {"'", '"'}


def plan_parameters(
    params: Mapping[str, Any], steps: Sequence[str], notebooks: Mapping[str, Path]
) -> dict[str, dict[str, Any]]:
    """Split one incident's parameters into what each selected notebook declares; refuse unknown names.

    Names are checked against every runbook notebook present, not only the selected ones, so one parameters
    file serves the whole incident whichever steps run. ``incident_id`` and ``runs_dir`` are the runner's
    own and always known. A number given for a text parameter (``-p table_name 2024``) is passed as text.
    """
    declared = {s: declared_parameters(p) for s, p in notebooks.items()}
    known = sorted({name for d in declared.values() for name in d} | {"incident_id", "runs_dir"})
    unknown = sorted(set(params) - set(known))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise InputError(
            f"unknown parameter(s): {', '.join(hints)}. No notebook declares them, so nothing was run. "
            f"Known parameters: {', '.join(known)}."
        )
    values = {k: _plain(v) for k, v in params.items()}
    per_step: dict[str, dict[str, Any]] = {}
    for step in steps:
        mine = declared[step]
        chosen: dict[str, Any] = {}
        for name, value in values.items():
            if name not in mine:
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            chosen[name] = str(value) if number and _is_text(mine[name]) else value
        per_step[step] = chosen
    return per_step
