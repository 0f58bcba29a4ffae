"""Checks of a run folder's archive, shared by the archive tests (and usable on any run folder)."""

from __future__ import annotations

import json
import re
from pathlib import Path

#: A load from the network: a script/link/img/iframe source or an ES import from http(s).
NETWORK_LOAD = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//"
    r"|import\s*\(\s*[\"'](?:https?:)?//|@import\s+(?:url\()?[\"']?(?:https?:)?//",
    re.IGNORECASE,
)
PNG = re.compile(r"<img\b[^>]*\bsrc=[\"']data:image/png;base64,", re.IGNORECASE)
STEP_PAGES = ["01_prepare", "02_contain", "03_restore", "04_diff", "05_patch", "06_lift"]


def network_loads(run_dir: Path) -> dict[str, list[str]]:
    """Per HTML file of the run folder: the network loads it makes (empty lists when offline-clean)."""
    return {
        p.name: NETWORK_LOAD.findall(p.read_text(encoding="utf-8")) for p in sorted(run_dir.glob("*.html"))
    }


def pictures(page: Path) -> int:
    """How many embedded PNG pictures a page shows (``<img src="data:image/png;base64,...">``)."""
    return len(PNG.findall(page.read_text(encoding="utf-8")))


def header_outcome(page: Path) -> str | None:
    m = re.search(
        r"class=[\"']recovery-header[\"'] data-outcome=[\"']([^\"']+)", page.read_text(encoding="utf-8")
    )
    return m.group(1) if m else None


def notebook_text(notebook: Path) -> str:
    """Every text output of an executed notebook (stdout, text/plain)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text", "")
            out.append("".join(text) if isinstance(text, list) else text)
            plain = o.get("data", {}).get("text/plain", "")
            out.append("".join(plain) if isinstance(plain, list) else plain)
    return "\n".join(out)
