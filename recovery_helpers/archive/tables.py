"""Tidy tables for notebooks and archives: no index column, check marks, wrapped text, a sentence when empty.

pandas' own HTML cuts long text with "..." and shows the index and plain True/False; a table with no rows shows
only its header. ``show(df, empty="no conflicts")`` displays the same data as a reader of the archive wants it.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

CHECK, CROSS = "✓", "✗"
#: One style block per table (not per cell: a 120-row table would carry 100 kB of repeated inline styles).
#: JupyterLab's (and nbconvert's lab) CSS right-aligns every cell of rendered HTML tables with
#: ``.jp-RenderedHTMLCommon td``; ``table.recovery-table td`` is more specific, and ``!important`` keeps it so.
STYLE = (
    "<style>table.recovery-table{border-collapse:collapse;margin:4px 0;font-size:13px;table-layout:auto}"
    "table.recovery-table td,table.recovery-table th{border-bottom:1px solid #e0e0e0;padding:3px 8px;"
    "text-align:left !important;vertical-align:top;white-space:pre-wrap;overflow-wrap:anywhere;max-width:48em}"
    "table.recovery-table caption{text-align:left !important;font-weight:bold}</style>"
)
MAX_TEXT_ROWS = 20


def cell_text(value: Any) -> str:
    """✓/✗ for booleans, '' for missing values, the text otherwise (never truncated)."""
    if isinstance(value, bool):
        return CHECK if value else CROSS
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def tidy_html(df: pd.DataFrame, *, caption: str | None = None, empty: str = "nothing to show") -> str:
    """The table as compact HTML (no index, text escaped and wrapped, inline styles), or ``empty`` in italics.

    Written by hand rather than with pandas' Styler: a Styler gives every cell an id and classes, three times
    the bytes for the same table in every archived notebook.
    """
    if df is None or len(df) == 0:
        return f"<p><i>{html.escape(empty)}</i></p>"
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell_text(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False, name=None)
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"{STYLE}<table class='recovery-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Table:
    """A displayable tidy table (``display(Table(df))``); ``str()`` gives aligned text for terminals."""

    def __init__(
        self, df: pd.DataFrame, *, caption: str | None = None, empty: str = "nothing to show"
    ) -> None:
        self.df, self.caption, self.empty = df, caption, empty

    def _repr_html_(self) -> str:
        return tidy_html(self.df, caption=self.caption, empty=self.empty)

    def __repr__(self) -> str:
        if self.df is None or len(self.df) == 0:
            return self.empty
        text = self.df.head(MAX_TEXT_ROWS).map(cell_text).to_string(index=False)
        more = len(self.df) - MAX_TEXT_ROWS
        return text + (f"\n... and {more} more rows (see the HTML table)" if more > 0 else "")


def show(df: pd.DataFrame, *, empty: str = "nothing to show", caption: str | None = None) -> None:
    """Display a tidy table in the notebook (or ``empty`` when it has no rows)."""
    from IPython.display import display

    display(Table(df, caption=caption, empty=empty))


class Folded:
    """Long text folded in ``<details>`` (e.g. a 150-line policy): one summary line, the text on click."""

    def __init__(self, text: str, summary: str) -> None:
        self.text, self.summary = text, summary

    def _repr_html_(self) -> str:
        return (
            f"<details><summary>{html.escape(self.summary)}</summary>"
            f"<pre style='white-space: pre-wrap'>{html.escape(self.text)}</pre></details>"
        )

    def __repr__(self) -> str:  # text/plain: the whole text, as print() gave it
        return self.text


def show_folded(text: str, summary: str) -> None:
    """Display long text folded, with ``summary`` as its one visible line."""
    from IPython.display import display

    display(Folded(text, summary))
