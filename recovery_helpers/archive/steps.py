"""What each step notebook shows, as one call per cell: tidy tables, folded policy, pictures, the full diff.

The engines return data; these functions only show it, for JupyterLab and for the archived HTML alike.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..context import Context
from . import figures, tables
from .diff_page import WHOLE_ITEM, examples, write_diff_files
from .values import parse_iso


# -- 01 prepare --------------------------------------------------------------------------------------------
def show_readiness(report: Any) -> None:
    """The readiness summary line and one row per check (✓/✗, text wrapped)."""
    print(report.summary().splitlines()[0])
    frame = report.to_frame()
    if "fixed now" in frame:  # ✓ where apply fixed it; blank (not ✗) where there was nothing to fix
        frame["fixed now"] = frame["fixed now"].map(lambda fixed: "✓" if fixed else "")
    tables.show(frame, empty="no checks ran")
    if getattr(report, "changes", None):
        print("changed now: " + "; ".join(report.changes))


def show_policy(report: Any) -> None:
    """The recovery role's policy, folded: one line saying what it is, the JSON on click."""
    text = report.recovery_role_policy_json
    statements = len((report.recovery_role_policy or {}).get("Statement", []))
    tables.show_folded(
        text,
        f"recovery role policy: {statements} statements, {len(text.splitlines())} lines (click to unfold)",
    )


# -- 03 restore --------------------------------------------------------------------------------------------
def show_restore_window(ctx: Context, result: Any, incident_start: Any = None) -> None:
    """The restore time inside the point-in-time window, with the incident's start when known."""
    window = getattr(result, "window", None) or {}
    start = incident_start or ctx.incident.get("incident_start")
    if not (result.restore_time and window.get("earliest") and window.get("latest")):
        print("no point-in-time window to draw (restore from a backup or an existing table)")
        return
    figures.show(
        figures.restore_window_figure(
            result.restore_time, window["earliest"], window["latest"], incident_start=start
        )
    )


# -- 04 diff -----------------------------------------------------------------------------------------------
def write_events(ctx: Context, log_file: str | None = None) -> tuple[list[tuple[Any, str | None]], str]:
    """(time, tenant) of every write to draw, and where they came from: the change log file when given
    (every write, legitimate ones too), else each impacted item's first change (impacted.jsonl)."""
    from ..items import KeySchema
    from ..plan import load_plan_meta
    from ..tenancy import Tenancy

    meta = load_plan_meta(ctx.incident)
    tenancy = Tenancy.parse(meta.get("tenant_attribute"))
    if log_file:
        from ..changelog import iter_change_log

        schema = KeySchema(**meta["key_schema"])
        try:
            return [
                (r.timestamp, tenancy.tenant_of(r.key)) for r in iter_change_log(log_file, schema)
            ], "every write in the change log"
        except Exception as exc:  # noqa: BLE001 - the picture must not fail the step; say why it is thinner
            print(f"change log not drawn ({exc}); drawing first changes of impacted items")
    events = []
    path = ctx.incident.path / "impacted.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                if obj.get("first_change"):
                    events.append((obj["first_change"], obj.get("tenant")))
    return events, "first change of each impacted item"


def first_corrupting_write(ctx: Context) -> Any:
    """The earliest first change of an item the plan acts on."""
    from ..plan import iter_plan

    times = [
        parse_iso(e.first_change) for e in iter_plan(ctx.incident) if e.action != "none" and e.first_change
    ]
    return min((t for t in times if t), default=None)


def show_writes(ctx: Context, log_file: str | None = None) -> None:
    """Writes per minute per tenant across the window; first corrupting write and restore time marked."""
    from ..plan import load_plan_meta

    meta = load_plan_meta(ctx.incident)
    window = meta.get("window") or {}
    events, source = write_events(ctx, log_file)
    if not events:
        print("no source with times: nothing to draw (keys_file and full_compare carry no times)")
        return
    figures.show(
        figures.writes_figure(
            events,
            window_start=window.get("start"),
            window_end=window.get("end"),
            first_corrupting=first_corrupting_write(ctx),
            restore_time=ctx.incident.get("restore_time"),
            source=source,
        )
    )


def examples_frame(ctx: Context, per_class: int = 3) -> pd.DataFrame:
    """A few items per classification, one row per changed attribute (one "whole item" row when created or
    deleted): key, classification, attribute, restored (written back), live (replaced)."""
    rows = []
    for cls, diffs in examples(ctx.incident, per_class).items():
        for d in diffs:
            for attribute, old, new in d.rows:
                rows.append(
                    {
                        "key": d.key,
                        "classification": cls,
                        "attribute": attribute,
                        "restored (written back)": old,
                        "live (replaced)": new,
                    }
                )
    return pd.DataFrame(
        rows, columns=["key", "classification", "attribute", "restored (written back)", "live (replaced)"]
    )


def show_diff(ctx: Context, result: Any, *, log_file: str | None = None, per_class: int = 3) -> None:
    """The archived part of 04_diff: summary, sources, the writes picture, a few examples per classification,
    and the full diff written to ``diff.html`` / ``diff.csv`` in the run folder (linked here)."""
    from IPython.display import Markdown, display

    tables.show(
        result.summary,
        caption=f"Plan {result.digest[:12]}…: {result.total} impacted items, "
        f"{result.proposed} proposed changes",
    )
    if len(result.sources):
        tables.show(result.sources, caption="Where the impacted keys came from")
    show_writes(ctx, log_file)
    html_path, csv_path = write_diff_files(ctx.incident)
    if result.proposed == 0:
        display(Markdown("**Nothing to patch**: every impacted item equals its restored version."))
        return
    tables.show(
        examples_frame(ctx, per_class),
        caption=f"Examples: the first {per_class} items of each "
        f"classification ({WHOLE_ITEM}: created or deleted by the incident)",
    )
    display(
        Markdown(
            f"Every one of the {result.total} planned items, with its changed attributes: "
            f"[{html_path.name}]({html_path.name}) (searchable) and [{csv_path.name}]({csv_path.name}) in the run "
            f"folder `{ctx.incident.path}`."
        )
    )


# -- 06 lift -----------------------------------------------------------------------------------------------
def show_lift(ctx: Context, report: Any) -> None:
    """What the lift did, the write paths as the application sees them now, and the incident as a timeline."""
    from ..plan import META_FILE

    print(report.text())
    tables.show(report.to_frame(), empty="no write path probed")
    ctx.incident.reload()
    meta_path = ctx.incident.path / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
    summary = ctx.incident.data.get("summary")
    if summary:
        tables.show(
            pd.DataFrame(
                [
                    {"what": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
                    for k, v in summary.items()
                ]
            ),
            caption="Incident summary",
        )
    figures.show(figures.incident_timeline_figure(ctx.incident.data, meta))
