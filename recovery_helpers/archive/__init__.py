"""The postmortem's record: what a reader finds in ``runs/<incident_id>/`` weeks later, offline, without Jupyter.

- ``header``: the header of every step notebook (``begin`` / ``finish``), from the incident timeline.
- ``html_export``: ``export_step_html(notebook)``, the self-contained HTML copy of an executed step.
- ``index_page``: ``write_index(incident)``, the page a postmortem links.
- ``diff_page``: ``diff.html`` / ``diff.csv``, the complete per-item diff.
- ``figures``: matplotlib pictures (restore window, writes per tenant, incident timeline) as embedded PNGs.
- ``tables``, ``steps``: tidy tables and the one-call displays the notebooks use.
"""

from . import figures, steps, tables
from .header import begin, finish
from .html_export import export_step_html
from .index_page import write_index

__all__ = ["begin", "export_step_html", "figures", "finish", "steps", "tables", "write_index"]
