"""`recovery run`: execute the runbook notebooks headless with papermill, one parameters file per incident.

Papermill alone only warns about a parameter no notebook declares, so a typo (``dry_rn: false``) would run
the whole runbook with the safe default silently. Here every name is checked against what the notebooks
declare before anything runs, each notebook receives only the parameters it declares, and the run stops at
the first failing step. Executed notebooks and HTML copies land in ``runs/<incident_id>/``: they are the
postmortem's evidence, failed ones included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .incident import Incident, validate_incident_id
from .kernel_guard import EXEC_LINE, RUNNER_PID_ENV
from .run_parameters import (  # noqa: F401 - re-exported: runner's public names before the split
    NOTEBOOKS,
    STEPS,
    _is_text,
    _notebook_paths,
    _plain,
    _QuietPapermill,
    declared_parameters,
    default_notebooks_dir,
    load_parameters,
    parse_steps,
    parse_value,
    plan_parameters,
)

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


def _validated_run(
    params: Mapping[str, Any], steps: Sequence[str] | str | None, notebooks_dir: str | os.PathLike[str] | None
) -> tuple[list[str], dict[str, Path], str, str, dict[str, dict[str, Any]]]:
    """Check everything before anything is written: steps, notebooks, incident id, run folder, parameters."""
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
    return selected, notebooks, incident_id, runs_dir, per_step


def _execute_step(
    incident: Incident,
    step: str,
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    env: Mapping[str, str] | None,
    workdir: Path,
) -> str | None:
    """Run one notebook with papermill; the failed cell's ``EName: message``, or ``None`` when it passed.

    Ctrl-C records the step as interrupted (with the evidence of how far it got) and is raised again.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from recovery_helpers.kernel_sockets import execution_options

    # Nobody watches a headless kernel: progress as one final line, no approval buttons (see progress.py).
    kernel_env = {**(env or {}), **HEADLESS_ENV}
    try:
        with (
            _environ({**kernel_env, RUNNER_PID_ENV: str(os.getpid())}),
            _sigterm_recorded(incident, step, lambda: step_operator(incident, step, parameters, env)),
        ):
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=parameters,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(workdir),
                extra_arguments=list(KERNEL_ARGUMENTS),
                **execution_options(),  # Unix sockets: no TCP port another process can take first
            )
    except PapermillExecutionError as exc:
        return _error_line(exc)
    except KeyboardInterrupt:
        # Ctrl-C: keep the evidence of how far the step got, then stop as asked.
        _write_html_quietly(output, "KeyboardInterrupt: interrupted")
        who = step_operator(incident, step, parameters, env)
        incident.record(f"run step {step}", who=who, result="interrupted", notebook=str(output))
        _write_index_quietly(incident)
        raise
    except Exception as exc:  # noqa: BLE001 - kernel died, timeout...: still a failed step with evidence
        return _error_line(exc)
    return None


def _record_step(
    incident: Incident,
    outcome: StepResult,
    env: Mapping[str, str] | None,
    emit: Callable[[str], None],
) -> None:
    """The step's outcome in the timeline and ``index.html``, and its closing line in the log."""
    details: dict[str, Any] = {"notebook": str(outcome.notebook)}
    if outcome.html is not None:
        details["html"] = str(outcome.html)
    if outcome.error is not None:
        details["error"] = outcome.error
    who = step_operator(incident, outcome.step, outcome.parameters, env)
    result = "ok" if outcome.error is None else "failed"
    incident.record(f"run step {outcome.step}", who=who, result=result, **details)
    _write_index_quietly(incident, emit)
    if outcome.error is not None:
        emit(f"step {outcome.step}: FAILED after {outcome.seconds:.1f} s: {outcome.error}")
        emit(f"executed notebook: {outcome.notebook}")
    else:
        emit(f"step {outcome.step}: ok ({outcome.seconds:.1f} s)")


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
    selected, notebooks, incident_id, runs_dir, per_step = _validated_run(params, steps, notebooks_dir)
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    incident = Incident(incident_id, workdir / runs_dir)
    result = RunResult(incident_id=incident_id, run_dir=incident.path)
    emit = log or (lambda _line: None)
    for step in selected:
        output = incident.path / NOTEBOOKS[step]
        kept = keep_previous(output)
        if kept:
            emit(f"step {step}: the previous run's notebook is kept as {kept}")
        emit(f"step {step}: running {notebooks[step].name} -> {output}")
        started = time.monotonic()
        error = _execute_step(incident, step, notebooks[step], output, per_step[step], env, workdir)
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
        _record_step(incident, outcome, env, emit)
        if error is not None:
            break
    return result
