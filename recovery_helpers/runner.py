"""`recovery run`: execute the runbook notebooks headless with papermill, one parameters file per incident.

Papermill alone only warns about a parameter no notebook declares, so a typo (``dry_rn: false``) would run
the whole runbook with the safe default silently. Here every name is checked against what the notebooks
declare before anything runs, each notebook receives only the parameters it declares, and the run stops at
the first failing step. Executed notebooks and HTML copies land in ``runs/<incident_id>/``: they are the
postmortem's evidence, failed ones included.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import difflib
import getpass
import importlib.resources
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError
from .incident import Incident, validate_incident_id
from .kernel_guard import EXEC_LINE, RUNNER_PID_ENV
from .paths import absolute_paths

#: Runbook steps in the order they run, and the notebook of each.
STEPS: tuple[str, ...] = ("prepare", "contain", "restore", "diff", "patch", "lift")
NOTEBOOKS: dict[str, str] = {name: f"{i:02d}_{name}.ipynb" for i, name in enumerate(STEPS, start=1)}
KERNEL = "python3"
#: ipykernel logs its own housekeeping (unencrypted local sockets, the interrupt at shutdown) to the terminal;
#: cell errors reach the executed notebook anyway, so its log is only noise.
#: The kernel's first line makes it die with this process (kernel_guard: an orphaned kernel must not go on
#: patching after `recovery run` is killed).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL", EXEC_LINE]
DEFAULT_INCIDENT_ID = "demo"
#: Kernels started by `recovery run` know nobody is there to click: executed notebooks carry no dead buttons.
HEADLESS_ENV = {"RECOVERY_HEADLESS": "1"}
DEFAULT_RUNS_DIR = "runs"


@dataclass
class StepResult:
    """One executed step: where its executed notebook is and how it ended."""

    step: str
    notebook: Path
    html: Path | None
    ok: bool
    seconds: float
    error: str | None = None  # "EName: message" of the failing cell (or of the engine)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What `recovery run` did: the run folder and one result per step run (it stops at the first failure)."""

    incident_id: str
    run_dir: Path
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        """The step that failed, if any."""
        return next((s for s in self.steps if not s.ok), None)

    @property
    def failed_step(self) -> str | None:
        """The name of the step that failed, if any."""
        failed = self.failed
        return failed.step if failed is not None else None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        """Lines for the terminal: each step's outcome; on failure the error and the notebook to open."""
        lines = [f"incident {self.incident_id}: run folder {self.run_dir}"]
        for s in self.steps:
            lines.append(f"  {s.step:<8} {'ok' if s.ok else 'FAILED':<6} {s.seconds:6.1f} s  {s.notebook}")
        failed = self.failed
        if failed is not None:
            lines.append(f"step {failed.step!r} failed: {failed.error}")
            lines.append(f"executed notebook: {failed.notebook}")
            if failed.html is not None:
                lines.append(f"html copy: {failed.html}")
        return "\n".join(lines)


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


# -- running -----------------------------------------------------------------------------------------------
def current_user() -> str:
    """The operating-system user running the runbook (who, in the timeline)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "unknown")


@contextlib.contextmanager
def _environ(extra: Mapping[str, str] | None) -> Iterator[None]:
    """Set environment variables while kernels start (they inherit this process's environment)."""
    if not extra:
        yield
        return
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update({k: str(v) for k, v in extra.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _sigterm_recorded(incident: Incident, step: str, who: Callable[[], str]) -> Iterator[None]:
    """While a step runs, SIGTERM is recorded in the timeline, then ends this process as SIGTERM does; the
    step's kernel dies with it (kernel_guard). Only in the main thread (where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, _frame: Any) -> None:
        try:
            incident.record(f"run step {step}", who=who(), result="interrupted", signal="SIGTERM")
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_html(notebook: Path, error: str | None = None) -> Path | None:
    """A self-contained HTML copy of an executed notebook beside it (readable offline, without Jupyter)."""
    from .archive import export_step_html

    return export_step_html(notebook, error=error)


def step_operator(
    incident: Incident, step: str, params: Mapping[str, Any], env: Mapping[str, str] | None
) -> str:
    """Who ran a step: the caller ARN its notebook recorded (``step started``), else asked of STS."""
    incident.reload()
    for event in reversed(incident.timeline):
        if event.get("action") == "step started" and event.get("step") == step:
            return str(event["who"])
        if event.get("action", "").startswith("run step"):
            break
    try:
        from .aws import Aws

        with _environ(env):
            return Aws(
                region=params.get("region") or "us-east-1", endpoint_url=params.get("endpoint_url")
            ).caller_arn
    except Exception:  # noqa: BLE001 - no credentials at all: say so rather than name nobody
        return f"unknown caller (OS user {current_user()})"


def keep_previous(notebook: Path) -> Path | None:
    """Move an earlier executed copy of a step (and its HTML) to ``previous/`` instead of overwriting it.

    A step is often run more than once (a dry-run patch, then the real one; a diff, then its approval): every
    run is evidence. The copy is named after the time it was written: ``previous/05_patch.20250131T101500Z``.
    """
    if not notebook.is_file():
        return None
    written = dt.datetime.fromtimestamp(notebook.stat().st_mtime, tz=dt.UTC)
    folder = notebook.parent / "previous"
    folder.mkdir(exist_ok=True)
    stem = f"{notebook.stem}.{written:%Y%m%dT%H%M%S}Z"
    n = 1
    while (folder / f"{stem}.ipynb").exists():
        n += 1
        stem = f"{notebook.stem}.{written:%Y%m%dT%H%M%S}Z-{n}"
    target = folder / f"{stem}.ipynb"
    os.replace(notebook, target)
    html = notebook.with_suffix(".html")
    if html.is_file():
        os.replace(html, target.with_suffix(".html"))
    return target


def _write_html_quietly(notebook: Path, error: str | None = None) -> Path | None:
    try:
        return write_html(notebook, error)
    except Exception:  # noqa: BLE001 - best effort on the way out
        return None


def _write_index_quietly(incident: Incident, emit: Callable[[str], None] | None = None) -> None:
    """Rebuild ``index.html`` after a step; a failure to draw it never hides the step's own outcome."""
    try:
        from .archive import write_index

        write_index(incident)
    except Exception as exc:  # noqa: BLE001
        if emit:
            emit(f"could not update index.html: {exc}")


def _error_line(exc: BaseException) -> str:
    """``EName: message`` of a failed cell (PapermillExecutionError) or of whatever stopped the engine."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}"


def run_steps(
    params: Mapping[str, Any],
    steps: Sequence[str] | str | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    log: Callable[[str], None] | None = print,
    cwd: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Execute the selected steps' notebooks in order into ``runs/<incident_id>/``; stop at the first failure.

    ``params`` is one incident's parameters (``load_parameters``); ``env`` adds environment variables for the
    kernels (they inherit this process's environment otherwise). Bad input raises :class:`InputError` before
    any file is written. ``log`` receives one line per step (``None`` for silence). Kernels run in ``cwd``
    (default: the current directory), where relative ``runs_dir``, ``keys_file`` and ``log_file`` resolve.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    selected = parse_steps(steps)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    notebooks = _notebook_paths(nb_dir, selected)
    incident_id = params.get("incident_id", DEFAULT_INCIDENT_ID)
    if isinstance(incident_id, (int, dt.date)) and not isinstance(incident_id, bool):
        incident_id = str(_plain(incident_id))  # YAML read `incident_id: 20250131` as a number
    incident_id = validate_incident_id(incident_id)
    runs_dir = params.get("runs_dir", DEFAULT_RUNS_DIR)
    if not isinstance(runs_dir, str) or not runs_dir:
        raise InputError("runs_dir must be a directory path (default 'runs').")
    # Runner and notebooks must agree on the run folder: every notebook declaring them gets both.
    per_step = plan_parameters(
        {**params, "incident_id": incident_id, "runs_dir": runs_dir}, selected, notebooks
    )

    workdir = Path(cwd) if cwd is not None else Path.cwd()
    incident = Incident(incident_id, workdir / runs_dir)
    result = RunResult(incident_id=incident_id, run_dir=incident.path)
    emit = log or (lambda _line: None)
    # Nobody watches a headless kernel: progress as one final line, no approval buttons (see progress.py).
    kernel_env = {**(env or {}), **HEADLESS_ENV}
    for step in selected:
        output = incident.path / NOTEBOOKS[step]
        kept = keep_previous(output)
        if kept:
            emit(f"step {step}: the previous run's notebook is kept as {kept}")
        emit(f"step {step}: running {notebooks[step].name} -> {output}")
        started = time.monotonic()
        error: str | None = None
        try:
            with (
                _environ({**kernel_env, RUNNER_PID_ENV: str(os.getpid())}),
                _sigterm_recorded(
                    incident, step, lambda s=step: step_operator(incident, s, per_step[s], env)
                ),
            ):
                papermill.execute_notebook(
                    str(notebooks[step]),
                    str(output),
                    parameters=per_step[step],
                    kernel_name=KERNEL,
                    progress_bar=False,
                    cwd=str(workdir),
                    extra_arguments=list(KERNEL_ARGUMENTS),
                )
        except PapermillExecutionError as exc:
            error = _error_line(exc)
        except KeyboardInterrupt:
            # Ctrl-C: keep the evidence of how far the step got, then stop as asked.
            _write_html_quietly(output, "KeyboardInterrupt: interrupted")
            who = step_operator(incident, step, per_step[step], env)
            incident.record(f"run step {step}", who=who, result="interrupted", notebook=str(output))
            _write_index_quietly(incident)
            raise
        except Exception as exc:  # noqa: BLE001 - kernel died, timeout...: still a failed step with evidence
            error = _error_line(exc)
        seconds = time.monotonic() - started
        try:
            html = write_html(output, error)
        except Exception as exc:  # noqa: BLE001 - a missing HTML copy must not hide the step's own outcome
            html = None
            emit(f"step {step}: could not write the HTML copy: {exc}")
        outcome = StepResult(
            step=step,
            notebook=output,
            html=html,
            ok=error is None,
            seconds=seconds,
            error=error,
            parameters=per_step[step],
        )
        result.steps.append(outcome)
        details: dict[str, Any] = {"notebook": str(output)}
        if html is not None:
            details["html"] = str(html)
        if error is not None:
            details["error"] = error
        who = step_operator(incident, step, per_step[step], env)
        incident.record(f"run step {step}", who=who, result="ok" if error is None else "failed", **details)
        _write_index_quietly(incident, emit)
        if error is not None:
            emit(f"step {step}: FAILED after {seconds:.1f} s: {error}")
            emit(f"executed notebook: {output}")
            break
        emit(f"step {step}: ok ({seconds:.1f} s)")
    return result
