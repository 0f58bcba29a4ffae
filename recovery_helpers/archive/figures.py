"""The incident as pictures: matplotlib figures returned as data, shown as embedded PNGs.

Each ``*_figure`` function takes plain data (times, the timeline of ``incident.json``, the plan) and returns a
``matplotlib.figure.Figure`` (no pyplot, no global state, any backend); tests check its elements. ``show`` displays
a figure as a PNG output, which survives nbconvert and reads offline. matplotlib is in the ``[runbook]`` extra.

Artists carry labels a test (or a reader of the legend) can find: ``restore time``, ``first corrupting write``,
``PITR window``, ``incident window``; timeline lanes are y tick labels.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .values import parse_iso

#: Bin widths (seconds) tried for "writes per ...": the first giving at most MAX_BINS bins is used.
BIN_CHOICES = (1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
BIN_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
MAX_BINS = 90
MAX_TENANTS = 8
COLOURS = {"restore": "#137333", "corrupt": "#000000", "window": "#fce8e6", "pitr": "#e8f0fe"}
#: Tenant lines: no red or green (the window and the restore time use them), no black (the first bad write).
TENANT_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
)


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return parse_iso(str(value)) if value not in (None, "") else None


def _figure(width: float = 9.0, height: float = 3.2) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC))
    ax.set_xlabel("UTC")


def bin_seconds_for(span_seconds: float) -> int:
    """The bin width for a span: per minute for an incident of an hour, per second for a drill of seconds."""
    for width in BIN_CHOICES:
        if span_seconds / width <= MAX_BINS:
            return width
    return BIN_CHOICES[-1]


def bin_name(width: int) -> str:
    return BIN_NAMES.get(width) or (f"{width // 60} minutes" if width % 60 == 0 else f"{width} seconds")


# -- 03: the restore time inside the PITR window -----------------------------------------------------------
def restore_window_figure(
    restore_time: Any, earliest: Any, latest: Any, *, incident_start: Any = None, incident_end: Any = None
) -> Any:
    """Two bars, the PITR window (earliest..latest restorable) and the incident (start..end, or until the latest
    restorable time while it lasts), crossed by the restore time chosen."""
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    rt, lo, hi = _when(restore_time), _when(earliest), _when(latest)
    start, end = _when(incident_start), _when(incident_end)
    fig = _figure(9.0, 2.0)
    ax = fig.add_subplot()
    handles = []
    if lo and hi:
        ax.broken_barh(
            [(mdates.date2num(lo), (hi - lo).total_seconds() / 86400)],
            (1.15, 0.7),
            color="#a8c7fa",
            label="PITR window (restorable)",
        )
        handles.append(Patch(color="#a8c7fa", label="PITR window (restorable)"))
    if start:
        stop = end or hi or start
        ax.broken_barh(
            [(mdates.date2num(start), max((stop - start).total_seconds(), 0) / 86400)],
            (0.15, 0.7),
            color="#f6aea9",
            label="incident window",
        )
        handles.append(
            Patch(color="#f6aea9", label="incident window" if end else "incident (from its start)")
        )
        line = ax.axvline(start, color=COLOURS["corrupt"], linestyle=":", label="incident start")
        handles.append(line)
    if rt:
        handles.append(ax.axvline(rt, color=COLOURS["restore"], linewidth=2.5, label="restore time"))
    ax.set_yticks([0.5, 1.5], ["incident", "PITR window"])
    ax.set_ylim(0, 2)
    ax.set_title(
        f"Restore time {rt:%Y-%m-%d %H:%M:%S} UTC inside the point-in-time window"
        if rt
        else "Point-in-time window"
    )
    _time_axis(ax)
    ax.legend(handles=handles, loc="upper left", fontsize=8, bbox_to_anchor=(1.01, 1))
    return fig


# -- 04: writes per bin per tenant -------------------------------------------------------------------------
def writes_figure(
    writes: Iterable[tuple[Any, str | None]],
    *,
    window_start: Any,
    window_end: Any,
    first_corrupting: Any = None,
    restore_time: Any = None,
    source: str = "change log",
) -> Any:
    """Writes per minute (or per second for a short drill) per tenant, across the incident window and a margin
    on each side; the first corrupting write and the restore time marked. ``writes``: (time, tenant)."""
    import matplotlib.dates as mdates

    ws, we = _when(window_start), _when(window_end)
    first, rt = _when(first_corrupting), _when(restore_time)
    if ws is None or we is None:
        raise ValueError("writes_figure needs window_start and window_end")
    margin = max((we - ws) / 2, dt.timedelta(seconds=1))
    lo, hi = min(x for x in (ws - margin, rt, first) if x), we + margin
    width = bin_seconds_for((hi - lo).total_seconds())
    origin = lo.timestamp() // width * width
    counts: dict[str, Counter[int]] = {}
    for when, tenant in writes:
        t = _when(when)
        if t is None or not (lo <= t <= hi):
            continue
        counts.setdefault(tenant or "(no tenant)", Counter())[int((t.timestamp() - origin) // width)] += 1
    ranked = sorted(counts, key=lambda k: -sum(counts[k].values()))
    shown, rest = ranked[:MAX_TENANTS], ranked[MAX_TENANTS:]
    if rest:
        other: Counter[int] = Counter()
        for name in rest:
            other.update(counts[name])
        counts["other tenants"] = other
        shown.append("other tenants")
    bins = range(int((hi.timestamp() - origin) // width) + 1)
    xs = [dt.datetime.fromtimestamp(origin + b * width, tz=dt.UTC) for b in bins]
    fig = _figure(9.0, 3.4)
    ax = fig.add_subplot()
    ax.axvspan(ws, we, color=COLOURS["window"], label="incident window")
    for i, name in enumerate(sorted(shown, key=lambda n: (n == "other tenants", n))):
        ax.step(
            xs,
            [counts[name].get(b, 0) for b in bins],
            where="post",
            label=name,
            color=TENANT_COLOURS[i % len(TENANT_COLOURS)],
        )
    if first:
        ax.axvline(
            first, color=COLOURS["corrupt"], linewidth=1.5, linestyle=":", label="first corrupting write"
        )
    if rt:
        ax.axvline(rt, color=COLOURS["restore"], linewidth=2.5, linestyle="--", label="restore time")
    ax.set_ylabel(f"writes per {bin_name(width)}")
    ax.set_title(f"Writes per {bin_name(width)} per tenant ({source})")
    ax.set_xlim(mdates.date2num(lo), mdates.date2num(hi))
    ax.set_ylim(bottom=0)
    _time_axis(ax)
    ax.legend(loc="upper left", fontsize=8, bbox_to_anchor=(1.01, 1))
    return fig


# -- 06: the whole incident --------------------------------------------------------------------------------
LANES = ("bad deploy", "read-only", "restore", "plan", "approvals", "patch", "lift")
APPROVAL_ACTIONS = ("approve plan", "approve item", "reject item", "approve class", "reject class")


def timeline_spans(data: Mapping[str, Any], plan_meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Spans (start, end) and points per lane from incident.json (and plan.json): what the timeline draws."""
    state, timeline = data.get("state", {}), data.get("timeline", [])
    spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {lane: [] for lane in LANES}
    points: dict[str, list[tuple[dt.datetime, str]]] = {lane: [] for lane in LANES}

    def at(event: Mapping[str, Any]) -> dt.datetime | None:
        return _when(event.get("time"))

    window = (plan_meta or {}).get("window") or next(
        (e.get("window") for e in reversed(timeline) if e.get("action") == "build plan" and e.get("window")),
        None,
    )
    if window and _when(window.get("start")) and _when(window.get("end")):
        spans["bad deploy"].append((_when(window["start"]), _when(window["end"])))
    restore_time = _when(state.get("restore_time"))
    if restore_time:
        points["bad deploy"].append((restore_time, "restored to"))
    contained = [at(e) for e in timeline if e.get("action") == "iam:AttachRolePolicy"] or [
        _when(state.get("contained_at"))
    ]
    lifted = _when(state.get("lifted_at")) or next(
        (at(e) for e in reversed(timeline) if e.get("action") == "iam:DetachRolePolicy"), None
    )
    first_contained = min((c for c in contained if c), default=None)
    last = max((t for t in (at(e) for e in timeline) if t), default=None)
    if first_contained:
        spans["read-only"].append((first_contained, lifted or last or first_contained))
    restore_start = next(
        (
            at(e)
            for e in timeline
            if e.get("action") in ("dynamodb:RestoreTableToPointInTime", "dynamodb:RestoreTableFromBackup")
        ),
        _when(state.get("restore_started")),
    )
    restore_done = next((at(e) for e in reversed(timeline) if e.get("action") == "restore complete"), None)
    if restore_start:
        spans["restore"].append((restore_start, restore_done or restore_start))
    for e in timeline:
        action, t = e.get("action"), at(e)
        if t is None:
            continue
        if action == "build plan":
            points["plan"].append((t, "plan built"))
        elif action in APPROVAL_ACTIONS:
            points["approvals"].append((t, action))
        elif action == "patch started":
            spans["patch"].append((t, t))
        elif action == "patch finished" and spans["patch"]:
            spans["patch"][-1] = (spans["patch"][-1][0], t)
        elif action in ("close incident",):
            points["lift"].append((t, "incident closed"))
    if lifted:
        points["lift"].append((lifted, "lifted"))
    return {"spans": spans, "points": points}


def incident_timeline_figure(data: Mapping[str, Any], plan_meta: Mapping[str, Any] | None = None) -> Any:
    """One lane per phase: bad-deploy window, read-only period, restore, plan, approvals, patch, lift."""
    import matplotlib.dates as mdates

    found = timeline_spans(data, plan_meta)
    spans, points = found["spans"], found["points"]
    fig = _figure(10.0, 3.6)
    ax = fig.add_subplot()
    colours = dict(zip(LANES, ("#b3261e", "#f9ab00", "#1a73e8", "#5f6368", "#9334e6", "#137333", "#12b5cb")))
    times: list[dt.datetime] = []
    for row, lane in enumerate(LANES):
        y = len(LANES) - 1 - row
        for start, end in spans[lane]:
            width = max((end - start).total_seconds(), 0.0)
            ax.broken_barh(
                [(mdates.date2num(start), width / 86400 or 1e-9)],
                (y - 0.3, 0.6),
                color=colours[lane],
                label=lane,
            )
            if width == 0:
                ax.plot([start], [y], marker="|", markersize=14, color=colours[lane])
            times += [start, end]
        for when, text in points[lane]:
            ax.plot(
                [when],
                [y],
                marker="D" if lane == "bad deploy" else "o",
                color=colours[lane],
                linestyle="none",
                label=text,
            )
            times.append(when)
    ax.set_yticks(range(len(LANES)), list(reversed(LANES)))
    ax.set_ylim(-0.7, len(LANES) - 0.3)
    if times:
        lo, hi = min(times), max(times)
        pad = max((hi - lo) * 0.03, dt.timedelta(seconds=1))
        ax.set_xlim(mdates.date2num(lo - pad), mdates.date2num(hi + pad))
    ax.grid(axis="x", color="#eeeeee")
    ax.set_title(f"Incident {data.get('incident_id')}: timeline (UTC)")
    _time_axis(ax)
    return fig


# -- output ------------------------------------------------------------------------------------------------
def png_bytes(fig: Any) -> bytes:
    """The figure as PNG (Agg canvas; works headless)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(fig: Any) -> str:
    """``data:image/png;base64,...`` for an ``<img>`` in a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode()


def show(fig: Any) -> None:
    """Display a figure as an embedded PNG output (no pyplot: nothing is drawn twice)."""
    from IPython.display import Image, display

    display(Image(data=png_bytes(fig), format="png"))
