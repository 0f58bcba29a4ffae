"""The header of every executed step notebook: incident, step, operator, start, end, duration, outcome, parameters.

``begin(ctx, "diff", globals())`` (the cell after the context is opened) records ``step started`` in the
incident timeline and shows the header; ``finish(run)`` (the last cell) records ``step finished`` with the
outcome and updates the header in place. Everything the header says comes from the timeline, so the archive
export (:func:`header_html_for`) can draw it again for a step that failed half-way (papermill or by hand).
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context import Context
from ..progress import headless
from .values import parse_iso, time_text

OUTCOMES = ("OK", "FAILED", "CONFLICTS", "NOTHING TO DO", "RUNNING")
OUTCOME_COLOURS = {
    "OK": "#137333",
    "FAILED": "#b3261e",
    "CONFLICTS": "#b06000",
    "NOTHING TO DO": "#5f6368",
    "RUNNING": "#1a73e8",
    "UNKNOWN": "#5f6368",
}
HEADER_TAG = "recovery-header"
STARTED, FINISHED = "step started", "step finished"


@dataclass
class StepRun:
    """One run of a step notebook, as ``begin`` recorded it."""

    ctx: Context
    step: str
    run_id: str
    started: str
    parameters: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None  # set by finish()

    def _repr_html_(self) -> str:
        return header_html(header_facts(self.ctx.incident.data, self.run_id))


# -- parameters --------------------------------------------------------------------------------------------
def declared_defaults(step: str, notebooks_dir: str | Path | None = None) -> dict[str, Any]:
    """The names and default values of a step notebook's ``parameters`` cell (read with :mod:`ast`)."""
    from ..runner import NOTEBOOKS, default_notebooks_dir

    path = Path(notebooks_dir or default_notebooks_dir()) / NOTEBOOKS[step]
    if not path.is_file():
        return {}
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            out: dict[str, Any] = {}
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[node.targets[0].id] = ast.unparse(node.value)
            return out
    return {}


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def split_parameters(
    defaults: dict[str, Any], namespace: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(parameters set to something else than the default, parameters left at their default): effective values."""
    given, left = {}, {}
    for name, default in defaults.items():
        value = namespace.get(name, default)
        (left if value == default else given)[name] = _json_safe(value)
    return given, left


# -- recording ---------------------------------------------------------------------------------------------
def begin(ctx: Context, step: str, namespace: dict[str, Any] | None = None) -> StepRun:
    """Record ``step started`` (caller ARN, OS user, the effective parameters) and show the header."""
    defaults = declared_defaults(step)
    given, left = split_parameters(defaults, namespace or {})
    run_id = f"{step}-{uuid.uuid4().hex[:12]}"
    event = ctx.record(STARTED, step=step, run_id=run_id, parameters=given, defaults=left)
    run = StepRun(ctx, step, run_id, event["time"], given, left)
    _display(run, update=False)
    return run


def finish(run: StepRun, outcome: str | None = None) -> None:
    """Record ``step finished`` with its outcome (derived from the timeline unless given, kept in
    ``run.outcome``); refresh the header and the run folder's index page."""
    incident = run.ctx.incident
    incident.reload()
    outcome = outcome or derive_outcome(incident.data.get("timeline", []), run.run_id)
    started = parse_iso(run.started)
    now = dt.datetime.now(dt.UTC)
    seconds = round((now - started).total_seconds(), 3) if started else None
    run.ctx.record(FINISHED, step=run.step, run_id=run.run_id, outcome=outcome, seconds=seconds)
    _display(run, update=True)
    if headless() and run.step != "lift":
        return _set(run, outcome)  # recovery run rewrites index.html after each step (and the HTML copy)
    try:
        from .index_page import write_index

        write_index(incident)
    except Exception as exc:  # noqa: BLE001 - the index is a convenience; the step's own outcome stands
        print(f"could not update index.html: {exc}")
    _set(run, outcome)


def _set(run: StepRun, outcome: str) -> None:
    run.outcome = outcome


def _display(run: StepRun, *, update: bool) -> None:
    try:
        from IPython.display import HTML, display, update_display
    except ImportError:
        return
    body = HTML(header_html(header_facts(run.ctx.incident.data, run.run_id)))
    metadata = {"recovery": {"run_id": run.run_id, "step": run.step}}
    if update:
        update_display(body, display_id=run.run_id, metadata=metadata)
    else:
        display(body, display_id=run.run_id, metadata=metadata)


def derive_outcome(timeline: list[dict[str, Any]], run_id: str) -> str:
    """OK, CONFLICTS (the patch left conflicts), NOTHING TO DO (the plan proposes nothing), from the entries of
    this run; FAILED when a ``step finished`` said so."""
    outcome = "OK"
    inside = False
    for event in timeline:
        if event.get("run_id") == run_id and event.get("action") == STARTED:
            inside = True
            continue
        if not inside:
            continue
        if event.get("run_id") == run_id and event.get("action") == FINISHED:
            return str(event.get("outcome") or outcome)
        action = event.get("action")
        if action == "patch finished" and (event.get("conflicts") or 0) > 0:
            outcome = "CONFLICTS"
        elif action == "build plan":
            counts = event.get("counts") or {}
            proposed = sum(int(counts.get(c, 0)) for c in ("changed", "deleted", "created"))
            outcome = "NOTHING TO DO" if proposed == 0 else "OK"
    return outcome


# -- facts and HTML ----------------------------------------------------------------------------------------
def header_facts(
    data: dict[str, Any],
    run_id: str | None,
    *,
    step: str | None = None,
    failed: str | None = None,
    ended: str | None = None,
) -> dict[str, Any]:
    """What the header says, from incident.json: the ``step started``/``step finished`` entries of ``run_id``
    (or of the last run of ``step``). ``failed`` (an error line) forces FAILED; ``ended`` is used when no
    ``step finished`` was recorded (papermill's end time)."""
    timeline = data.get("timeline", [])
    start = next(
        (
            e
            for e in reversed(timeline)
            if e.get("action") == STARTED and (e.get("run_id") == run_id if run_id else e.get("step") == step)
        ),
        None,
    )
    run_id = run_id or (start or {}).get("run_id")
    end = next(
        (
            e
            for e in reversed(timeline)
            if e.get("action") == FINISHED and e.get("run_id") == run_id and run_id
        ),
        None,
    )
    facts: dict[str, Any] = {
        "incident": data.get("incident_id"),
        "step": (start or {}).get("step") or step,
        "run_id": run_id,
        "operator": (start or {}).get("who"),
        "os_user": (start or {}).get("os_user"),
        "started": (start or {}).get("time"),
        "ended": (end or {}).get("time") or ended,
        "parameters": (start or {}).get("parameters", {}),
        "defaults": (start or {}).get("defaults", {}),
        "outcome": (end or {}).get("outcome") or ("RUNNING" if start and not ended else "UNKNOWN"),
        "error": failed,
    }
    if failed:
        facts["outcome"] = "FAILED"
    elif not end and start and ended:
        facts["outcome"] = derive_outcome(timeline, run_id) if run_id else "UNKNOWN"
    a, b = parse_iso(facts["started"] or ""), parse_iso(facts["ended"] or "")
    facts["seconds"] = round((b - a).total_seconds(), 3) if a and b else None
    return facts


def _param_rows(params: dict[str, Any]) -> str:
    cell = "text-align:left;vertical-align:top;padding:1px 8px;white-space:pre-wrap;overflow-wrap:anywhere"
    rows = "".join(
        f"<tr><td style='{cell}'><code>{html.escape(k)}</code></td><td style='{cell}'>"
        f"<code>{html.escape(json.dumps(v, ensure_ascii=False, default=str))}</code></td></tr>"
        for k, v in params.items()
    )
    return f"<table class='recovery-params' style='margin:2px 0 4px 12px;border-collapse:collapse'>{rows}</table>"


def header_html(facts: dict[str, Any]) -> str:
    """The header block (inline styles only: it must read the same in JupyterLab and in an offline copy)."""
    outcome = facts.get("outcome") or "UNKNOWN"
    colour = OUTCOME_COLOURS.get(outcome, "#5f6368")
    seconds = facts.get("seconds")
    duration = f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "—"
    who = html.escape(str(facts.get("operator") or "unknown"))
    os_user = f" (OS user {html.escape(str(facts['os_user']))})" if facts.get("os_user") else ""
    error = (
        f"<div style='color:{colour}'><b>error:</b> <code>{html.escape(facts['error'])}</code></div>"
        if facts.get("error")
        else ""
    )
    params, defaults = facts.get("parameters") or {}, facts.get("defaults") or {}
    given = _param_rows(params) if params else "<i>none: every parameter at its default</i>"
    folded = (
        f"<details><summary>{len(defaults)} parameters left at their defaults</summary>"
        f"{_param_rows(defaults)}</details>"
        if defaults
        else ""
    )
    return (
        f"<div class='recovery-header' data-outcome='{html.escape(outcome)}' "
        f"style='border:1px solid #dadce0;border-left:6px solid {colour};padding:8px 12px;margin:4px 0;"
        "font-family:sans-serif;font-size:14px'>"
        f"<div style='font-size:16px'><b>incident</b> {html.escape(str(facts.get('incident')))} · "
        f"<b>step</b> {html.escape(str(facts.get('step')))} · "
        f"<b>outcome</b> <span class='recovery-outcome' style='color:{colour};font-weight:bold'>"
        f"{html.escape(outcome)}</span></div>"
        f"<div><b>operator</b> <code>{who}</code>{os_user}</div>"
        f"<div><b>started</b> {time_text(facts.get('started')) or '—'} · <b>ended</b> "
        f"{time_text(facts.get('ended')) or '—'} · <b>duration</b> {duration} (UTC)</div>"
        f"{error}<div><b>parameters used</b> {given}{folded}</div></div>"
    )
