"""``runs/<incident_id>/index.html``: the one page a postmortem links.

Summary, the incident's timeline picture, each step's outcome (operator, start, end) with a link to its
archived notebook, the approvals (who, when, how), the patch results, the files of the run folder, and the full
timeline. Self-contained (inline CSS, the picture as an embedded PNG, no script); rebuilt from the run folder's
files by every step's ``finish`` and by ``recovery run`` after each step, so it is never more than one step old.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..incident import Incident
from .header import FINISHED, OUTCOME_COLOURS, STARTED, header_facts
from .tables import cell_text
from .values import time_text

INDEX_FILE = "index.html"
STEPS = ("prepare", "contain", "restore", "diff", "patch", "lift")
FILES = (
    ("diff.html", "every planned item and its difference (searchable)"),
    ("diff.csv", "the same, one row per changed attribute"),
    ("plan.jsonl", "the reviewed plan: one line per impacted key, both versions"),
    ("plan.json", "the plan's digest, window, sources and counts"),
    ("approvals.json", "who approved what, when and how"),
    ("backup.jsonl", "every live item as it was before the patch overwrote or deleted it"),
    ("journal.jsonl", "the patch's result per item"),
    ("impacted.jsonl", "every impacted key the sources found"),
    ("incident.json", "state shared by the steps and the timeline"),
    ("undo.jsonl", "what an undo of the patch put back"),
    ("aws-calls.jsonl", "every AWS call, by caller"),
    ("probe-calls.jsonl", "the write probes made as the application role (refused by design once contained)"),
    ("timeline.png", "the timeline picture"),
)
STYLE = """
body{font-family:sans-serif;font-size:14px;margin:20px;max-width:1200px}
table{border-collapse:collapse;margin:6px 0 14px}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
td{white-space:pre-wrap;overflow-wrap:anywhere}
code{font-size:12px}
img{max-width:100%;border:1px solid #eee}
summary{cursor:pointer}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p><i>{_esc(empty)}</i></p>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def step_rows(run_dir: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per step: the facts of its last run (from ``step started``/``step finished`` or the runner's entries)."""
    from ..runner import NOTEBOOKS

    timeline = data.get("timeline", [])
    out = []
    for step in STEPS:
        facts = header_facts(data, None, step=step)
        ran = [e for e in timeline if e.get("action") == f"run step {step}"]
        if ran and ran[-1].get("result") == "failed":
            facts["outcome"], facts["error"] = "FAILED", ran[-1].get("error")
        elif ran and facts["outcome"] in ("RUNNING", "UNKNOWN") and not facts.get("started"):
            facts["outcome"] = "OK" if ran[-1].get("result") == "ok" else str(ran[-1].get("result")).upper()
        if not facts.get("started") and not ran:
            facts["outcome"] = "not run"
        name = NOTEBOOKS[step]
        for candidate in (Path(name).with_suffix(".html").name, name):
            if (run_dir / candidate).is_file():
                facts["archive"] = candidate
                break
        previous = run_dir / "previous"
        facts["previous"] = len(list(previous.glob(f"{Path(name).stem}.*.ipynb"))) if previous.is_dir() else 0
        out.append(facts)
    return out


def _steps_html(rows: list[dict[str, Any]]) -> str:
    cells = []
    for f in rows:
        colour = OUTCOME_COLOURS.get(f["outcome"], "#5f6368")
        link = f"<a href='{_esc(f['archive'])}'>{_esc(f['archive'])}</a>" if f.get("archive") else ""
        if f.get("previous"):
            link += f" (+{f['previous']} earlier runs in <a href='previous/'>previous/</a>)"
        seconds = f.get("seconds")
        cells.append(
            [
                _esc(f["step"]),
                f"<b style='color:{colour}'>{_esc(f['outcome'])}</b>"
                + (f"<br><code>{_esc(f.get('error'))}</code>" if f.get("error") else ""),
                f"<code>{_esc(f.get('operator'))}</code>",
                time_text(f.get("started")),
                time_text(f.get("ended")),
                f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "",
                link,
            ]
        )
    return _table(
        ["step", "outcome", "operator", "started", "ended", "duration", "archive"], cells, "no step run"
    )


def _approvals_html(run_dir: Path) -> str:
    approvals = _load(run_dir / "approvals.json")
    if not approvals:
        return "<p><i>no approvals recorded</i></p>"
    rows = [
        [
            time_text(h.get("time")),
            f"<code>{_esc(h.get('who'))}</code>",
            _esc(h.get("method")),
            _esc(h.get("what")),
        ]
        for h in approvals.get("history", [])
    ]
    return (
        f"<p>plan <code>{_esc(approvals.get('digest'))}</code>: last decision by "
        f"<code>{_esc(approvals.get('approved_by'))}</code> at {time_text(approvals.get('approved_at'))} "
        f"({_esc(approvals.get('method'))})</p>"
        + _table(["when", "who", "how", "what"], rows, "no decisions")
    )


def _patch_html(run_dir: Path, data: dict[str, Any]) -> str:
    timeline = data.get("timeline", [])
    finished = [e for e in timeline if e.get("action") == "patch finished"]
    verified = [e for e in timeline if e.get("action") == "verify patch"]
    statuses: Counter[str] = Counter()
    from ..patch.shards import journal_status_counts  # the patch package only when a page is written

    # the whole plan's journal, and each segment's of a patch split across processes or machines
    # (a decided ambiguous key counts once, under its decision: journal.status_counts)
    for status, n in journal_status_counts(run_dir).items():
        statuses["unreadable line" if status == "unreadable" else status] += n
    if not finished and not statuses:
        return "<p><i>no patch was run</i></p>"
    parts = []
    for e in finished:
        parts.append(
            f"<p>patch <code>{_esc(e.get('patch_id'))}</code> finished {time_text(e.get('time'))} by "
            f"<code>{_esc(e.get('who'))}</code>: patched {e.get('patched', 0)}, unchanged {e.get('unchanged', 0)}, "
            f"conflicts {e.get('conflicts', 0)}, failed {e.get('failed', 0)} in {e.get('seconds', 0)} s</p>"
        )
    for e in verified[-1:]:
        parts.append(
            f"<p>verified {time_text(e.get('time'))}: {e.get('matching', 0)} of {e.get('checked', 0)} "
            f"patched items match what the patch wrote ({_esc(e.get('result'))})</p>"
        )
    parts.append(
        _table(
            ["journal status", "items"],
            [[_esc(k), str(v)] for k, v in sorted(statuses.items())],
            "empty journal",
        )
    )
    return "".join(parts)


def _summary_html(data: dict[str, Any], plan: dict[str, Any] | None) -> str:
    summary = data.get("summary") or {}
    rows = [
        [
            _esc(k),
            "<code>"
            + _esc(json.dumps(v, default=str) if isinstance(v, (dict, list)) else cell_text(v))
            + "</code>",
        ]
        for k, v in summary.items()
    ]
    state = data.get("state", {})
    head = (
        f"<p>table <code>{_esc(state.get('table_name'))}</code> ({_esc(state.get('region'))}); opened "
        f"{time_text(data.get('opened'))}; "
        + (f"closed {time_text(data.get('closed'))}" if data.get("closed") else "<b>still open</b>")
        + "</p>"
    )
    if plan:
        counts = plan.get("counts", {})
        head += (
            f"<p>plan <code>{_esc(str(plan.get('digest'))[:12])}</code>: {plan.get('total', 0)} impacted items "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())}); incident window "
            f"{time_text((plan.get('window') or {}).get('start'))} – "
            f"{time_text((plan.get('window') or {}).get('end'))}</p>"
        )
    return head + (_table(["summary", "value"], rows, "") if rows else "")


def _timeline_html(data: dict[str, Any]) -> str:
    rows = []
    for e in data.get("timeline", []):
        details = {k: v for k, v in e.items() if k not in ("time", "who", "action", "result", "os_user")}
        text = json.dumps(details, default=str, ensure_ascii=False, indent=1)
        folded = (
            f"<details><summary>{len(details)} fields</summary><pre>{_esc(text)}</pre></details>"
            if details
            else ""
        )
        rows.append(
            [
                time_text(e.get("time")),
                f"<code>{_esc(e.get('who'))}</code>",
                _esc(e.get("os_user")),
                _esc(e.get("action")),
                _esc(e.get("result")),
                folded,
            ]
        )
    return _table(["time (UTC)", "who", "OS user", "action", "result", "details"], rows, "empty timeline")


def write_index(incident: Incident | str | Path) -> Path:
    """Write (or rewrite) ``index.html`` in the run folder from its files; returns its path."""
    from .figures import incident_timeline_figure, png_bytes

    run_dir = incident.path if isinstance(incident, Incident) else Path(incident)
    data = _load(run_dir / "incident.json") or {}
    plan = _load(run_dir / "plan.json")
    picture = ""
    try:
        png = png_bytes(incident_timeline_figure(data, plan))
        (run_dir / "timeline.png").write_bytes(png)
        import base64

        picture = (
            f"<img alt='incident timeline' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        )
    except Exception as exc:  # noqa: BLE001 - a page without its picture beats no page
        picture = f"<p><i>timeline picture unavailable: {_esc(exc)}</i></p>"
    files = [
        [f"<a href='{name}'>{name}</a>", _esc(what), f"{(run_dir / name).stat().st_size:,} bytes"]
        for name, what in FILES
        if (run_dir / name).is_file()
    ]
    title = f"Incident {data.get('incident_id', run_dir.name)}"
    page = (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{_esc(title)}</h1>"
        f"<h2>Summary</h2>{_summary_html(data, plan)}"
        f"<h2>Timeline</h2>{picture}"
        f"<h2>Steps</h2>{_steps_html(step_rows(run_dir, data))}"
        f"<h2>Approvals</h2>{_approvals_html(run_dir)}"
        f"<h2>Patch results</h2>{_patch_html(run_dir, data)}"
        f"<h2>Files</h2>{_table(['file', 'what', 'size'], files, 'no files yet')}"
        f"<h2>Every timeline entry</h2>{_timeline_html(data)}"
        "</body></html>\n"
    )
    target = run_dir / INDEX_FILE
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


__all__ = ["FINISHED", "INDEX_FILE", "STARTED", "step_rows", "write_index"]
