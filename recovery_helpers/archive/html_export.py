"""HTML copies of executed step notebooks that read offline, weeks later, with no Jupyter.

nbconvert's lab template loads require.js, MathJax, mermaid and (with widget state) the widget manager from
CDNs; the ``offline`` template here (``templates/offline``) drops them. Before converting, the archive copy:
- draws the header again from ``incident.json`` (a step that failed half-way never reached ``finish``),
- leaves out the defaults cell and papermill's injected cell (the header lists the effective values once),
- drops widget outputs (their text is a stale ``0%|`` or a dead button) and the widget state.
``export_step_html`` is what ``recovery run`` and ``recovery open`` call for each step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .header import HEADER_TAG, header_facts, header_html

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "offline"
PARAMETER_TAGS = {"parameters", "injected-parameters"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STEP_OF_FILE = re.compile(r"^\d\d_([a-z]+)")


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _error_line(nb: Any) -> str | None:
    """``EName: message`` of the first cell that raised, if any (papermill records the same)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {out.get('evalue')}"
    return None


def _ended(nb: Any) -> str | None:
    """When the notebook stopped: papermill's end time, else the last cell's recorded execution end."""
    pm = nb.metadata.get("papermill", {})
    if pm.get("end_time"):
        return str(pm["end_time"])
    for cell in reversed(nb.cells):
        ex = cell.get("metadata", {}).get("execution", {})
        end = ex.get("shell.execute_reply") or ex.get("iopub.status.idle")
        if end:
            return str(end)
        pm_cell = cell.get("metadata", {}).get("papermill", {})
        if pm_cell.get("end_time"):
            return str(pm_cell["end_time"])
    return None


def _header_run_id(cell: Any) -> str | None:
    for out in cell.get("outputs", []):
        meta = out.get("metadata", {}).get("recovery") or {}
        if meta.get("run_id"):
            return str(meta["run_id"])
    return None


def refresh_header(
    nb: Any, incident_data: dict[str, Any] | None, step: str | None, error: str | None
) -> bool:
    """Replace the header cell's output with the header drawn from the timeline; False if there is none."""
    if incident_data is None:
        return False
    for cell in nb.cells:
        if cell.cell_type == "code" and HEADER_TAG in _tags(cell):
            run_id = _header_run_id(cell)
            facts = header_facts(incident_data, run_id, step=step, failed=error, ended=_ended(nb))
            if not facts.get("started") and not run_id:
                return False
            from nbformat.v4 import new_output

            cell.outputs = [
                new_output(
                    "display_data",
                    data={
                        "text/html": header_html(facts),
                        "text/plain": f"step {facts['step']}: {facts['outcome']}",
                    },
                    metadata={"recovery": {"run_id": facts.get("run_id"), "step": facts.get("step")}},
                )
            ]
            return True
    return False


def archive_copy(nb: Any) -> Any:
    """The notebook as archived: no parameter cells, no widget outputs, no widget state."""
    import copy

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not (PARAMETER_TAGS & set(_tags(c)))]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_MIME not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    return nb


def step_of(notebook: Path) -> str | None:
    m = STEP_OF_FILE.match(notebook.name)
    return m.group(1) if m else None


def html_of(nb: Any, title: str) -> str:
    """HTML of a notebook with the offline template (no network loads; images already embedded as PNG)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def export_step_html(
    notebook: str | Path,
    out: str | Path | None = None,
    *,
    error: str | None = None,
    incident_file: str | Path | None = None,
    update_notebook: bool = True,
) -> Path | None:
    """Write ``NN_step.html`` beside an executed notebook (or to ``out``); returns its path, None if no notebook.

    The header is drawn from ``incident.json`` next to the notebook (or ``incident_file``); ``error`` marks the
    step FAILED (it is found in the cells' outputs anyway). With ``update_notebook`` the refreshed header is
    also saved into the ``.ipynb``, so both copies say the same.
    """
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        return None
    nb = nbformat.read(str(path), as_version=4)
    inc = Path(incident_file) if incident_file else path.parent / "incident.json"
    data = json.loads(inc.read_text(encoding="utf-8")) if inc.is_file() else None
    error = error or _error_line(nb)
    if refresh_header(nb, data, step_of(path), error) and update_notebook:
        nbformat.write(nb, str(path))
    target = Path(out) if out else path.with_suffix(".html")
    target.write_text(html_of(archive_copy(nb), path.stem), encoding="utf-8")
    return target
