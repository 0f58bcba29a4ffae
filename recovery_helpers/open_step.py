"""`recovery open STEP`: a step's notebook, parameters injected and NOT executed, in the run folder.

The engineer runs it in JupyterLab and saves it there: the executed notebook is already where the archive
belongs (``runs/<incident_id>/NN_step.ipynb``), not in ``notebooks/``. Paths are absolute before they are
injected, so the kernel's working directory (wherever ``jupyter lab`` started) cannot change what they mean.

Notebooks executed by hand get their HTML copies here too: each ``recovery open`` (and 06_lift's last cell,
and ``recovery archive``) converts every executed step notebook of the run folder whose HTML copy is missing
or older than the notebook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .context import require_run_folder
from .errors import InputError
from .incident import FILE_NAME, Incident, validate_incident_id
from .paths import absolute_paths
from .runner import (
    DEFAULT_INCIDENT_ID,
    DEFAULT_RUNS_DIR,
    KERNEL,
    NOTEBOOKS,
    STEPS,
    _notebook_paths,
    current_user,
    default_notebooks_dir,
    keep_previous,
    plan_parameters,
)


def parse_step(text: str) -> str:
    """One step by name (``diff``), number (``4``, ``04``) or notebook name (``04_diff``, ``04_diff.ipynb``)."""
    value = str(text).strip().lower().removesuffix(".ipynb")
    for number, (step, notebook) in enumerate(NOTEBOOKS.items(), start=1):
        if value in (step, notebook.removesuffix(".ipynb"), str(number), f"{number:02d}"):
            return step
    raise InputError(f"unknown step {text!r}: choose one of {', '.join(STEPS)} (or 01..06).")


def html_copy(notebook: Path) -> Path | None:
    """The HTML copy of an executed notebook, beside it.

    Seam: the archive's own exporter (self-contained, header refreshed; issue 10) when it is present, else
    the runner's plain nbconvert copy. The notebook itself is never rewritten here: it may be open in
    JupyterLab, which would then warn that the file changed on disk.
    """
    try:
        from .archive.html_export import export_step_html  # type: ignore[import-not-found]
    except ImportError:
        from .runner import write_html

        return write_html(notebook)
    return export_step_html(notebook, update_notebook=False)


def was_executed(notebook: Path) -> bool:
    """Whether any code cell of the notebook has run (a prepared, untouched notebook has none)."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(
        c.get("cell_type") == "code" and (c.get("execution_count") is not None or c.get("outputs"))
        for c in nb.get("cells", [])
    )


def archive_hand_run(run_dir: str | os.PathLike[str]) -> list[Path]:
    """HTML copies of the run folder's executed step notebooks whose copy is missing or older; returns them."""
    folder = Path(run_dir)
    written = []
    for name in NOTEBOOKS.values():
        notebook = folder / name
        html = notebook.with_suffix(".html")
        if not notebook.is_file() or not was_executed(notebook):
            continue
        if html.is_file() and html.stat().st_mtime >= notebook.stat().st_mtime:
            continue
        copy = html_copy(notebook)
        if copy is not None:
            written.append(copy)
    return written


@dataclass
class OpenedStep:
    """What `recovery open` wrote: the prepared notebook and what it did around it."""

    step: str
    notebook: Path
    parameters: dict[str, Any]
    kept: Path | None = None
    html_copies: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the command prints; the last line is ``notebook: <absolute path>``."""
        out = [f"step {self.step}: parameters injected, not executed ({len(self.parameters)} values)"]
        for html in self.html_copies:
            out.append(f"html copy of a notebook run by hand: {html}")
        if self.kept is not None:
            out.append(f"the earlier copy of this step is kept as {self.kept}")
        out.append(
            "open it in JupyterLab (started with the sandbox's export lines set), Run All, and save it"
        )
        out.append(f"notebook: {self.notebook}")
        return out


def open_step(
    step: str,
    params: Mapping[str, Any],
    *,
    notebooks_dir: str | os.PathLike[str] | None = None,
    base: str | os.PathLike[str] | None = None,
) -> OpenedStep:
    """Write ``runs/<incident_id>/NN_step.ipynb`` with the parameters injected (papermill's prepare-only).

    ``params`` is one incident's parameters (``load_parameters``); relative paths left in it (``-p`` values)
    are made absolute against ``base`` (default: the current directory). Unknown names and, for every step
    after prepare, an incident without a run folder are refused before anything is written.
    """
    import papermill

    name = parse_step(step)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    notebooks = _notebook_paths(nb_dir, [name])
    values = absolute_paths(
        {"runs_dir": DEFAULT_RUNS_DIR, **params}, base if base is not None else Path.cwd()
    )
    incident_id = values.get("incident_id", DEFAULT_INCIDENT_ID)
    if isinstance(incident_id, int) and not isinstance(incident_id, bool):
        incident_id = str(incident_id)
    values["incident_id"] = validate_incident_id(incident_id)
    per_step = plan_parameters(values, [name], notebooks)[name]
    run_dir = Path(values["runs_dir"]) / values["incident_id"]
    if name != "prepare":
        require_run_folder(values["incident_id"], values["runs_dir"], name)
    run_dir.mkdir(parents=True, exist_ok=True)

    html_copies = archive_hand_run(run_dir)
    output = run_dir / NOTEBOOKS[name]
    kept = keep_previous(output) if output.is_file() and was_executed(output) else None
    papermill.execute_notebook(
        str(notebooks[name]),
        str(output),
        parameters=per_step,
        prepare_only=True,
        kernel_name=KERNEL,
        progress_bar=False,
        log_output=False,
    )
    if (run_dir / FILE_NAME).is_file():
        Incident(values["incident_id"], values["runs_dir"]).record(
            f"open step {name}", who=current_user(), notebook=str(output), parameters=sorted(per_step)
        )
    return OpenedStep(
        step=name, notebook=output.resolve(), parameters=per_step, kept=kept, html_copies=html_copies
    )


def open_from_files(
    step: str, params_file: str | None, overrides: Sequence[tuple[str, str]], notebooks_dir: str | None = None
) -> OpenedStep:
    """`recovery open` as the command line calls it."""
    from .runner import load_parameters

    return open_step(step, load_parameters(params_file, overrides), notebooks_dir=notebooks_dir)
