"""The complete per-item diff, in the run folder: ``diff.html`` (searchable, one row per item) and ``diff.csv``.

The archived ``04_diff`` shows the summary, the writes picture and a few examples per classification; every
planned key is in these two files instead, so the notebook stays small at 10,000 items. Values read as
DynamoDB stores them (numbers as stored, no type wrappers, see ``values.py``), times to the millisecond,
masked attributes (``mask_attributes``) as ••••. The page is one static HTML file with a small inline script
for the search box: no network, opens in seconds at 10,000 rows.
"""

from __future__ import annotations

import contextlib
import csv
import html
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..incident import Incident
from ..items import KeySchema
from ..plan import CLASSIFICATIONS, PlanEntry, iter_plan, load_plan_meta
from .values import changed_attributes, item_text, time_text

HTML_FILE, CSV_FILE = "diff.html", "diff.csv"
MASK = "••••"
WHOLE_ITEM = "(whole item)"
CSV_COLUMNS = [
    "key_id",
    "key",
    "classification",
    "action",
    "tenant",
    "first_change",
    "sources",
    "attribute",
    "restored",
    "live",
]


@dataclass
class ItemDiff:
    """One plan entry as the diff page shows it: key text and the rows of its difference."""

    entry: PlanEntry
    key: str
    rows: list[tuple[str, str, str]]  # (attribute, restored, live); WHOLE_ITEM for created/deleted

    @property
    def attributes(self) -> list[str]:
        return [r[0] for r in self.rows]


def _masked_text(entry: PlanEntry, mask: set[str]) -> tuple[str, str]:
    def text(item: dict[str, Any] | None) -> str:
        if item is None:
            return "(absent)"
        return item_text({k: ({"S": MASK} if k in mask else v) for k, v in item.items()})

    return text(entry.restored), text(entry.live)


def item_diff(entry: PlanEntry, schema: KeySchema, mask: set[str] = frozenset()) -> ItemDiff:
    """The rows of one entry: changed top-level attributes, or one whole-item row when created or deleted."""
    plain = schema.key_to_plain(entry.key)
    key = ", ".join(f"{n}={MASK if n in mask else plain[n]}" for n in schema.names)
    if entry.restored is None or entry.live is None:
        old, new = _masked_text(entry, mask)
        rows = [(WHOLE_ITEM, old, new)]
    else:
        rows = [
            (name, MASK, MASK) if name in mask else (name, old, new)
            for name, old, new in changed_attributes(entry.restored, entry.live)
        ]
    return ItemDiff(entry, key, rows)


def iter_item_diffs(incident: Incident) -> Iterator[ItemDiff]:
    """Every plan entry as an :class:`ItemDiff`, streamed in plan order."""
    meta = load_plan_meta(incident)
    schema = KeySchema(**meta["key_schema"])
    mask = set(meta.get("mask_attributes") or [])
    for entry in iter_plan(incident):
        yield item_diff(entry, schema, mask)


def examples(incident: Incident, per_class: int = 3) -> dict[str, list[ItemDiff]]:
    """The first ``per_class`` items of each classification that the patch acts on (for the notebook)."""
    out: dict[str, list[ItemDiff]] = {c: [] for c in CLASSIFICATIONS if c != "unchanged"}
    for diff in iter_item_diffs(incident):
        bucket = out.get(diff.entry.classification)
        if bucket is not None and len(bucket) < per_class:
            bucket.append(diff)
        if all(len(b) >= per_class for b in out.values()):
            break
    return out


# -- CSV ---------------------------------------------------------------------------------------------------
def _csv_rows(d: ItemDiff) -> list[list[str]]:
    e = d.entry
    base = [
        e.key_id,
        d.key,
        e.classification,
        e.action,
        e.tenant or "",
        time_text(e.first_change),
        " ".join(e.sources),
    ]
    return [[*base, attribute, old, new] for attribute, old, new in d.rows or [("", "", "")]]


def write_csv(incident: Incident, path: Path | None = None) -> Path:
    """``diff.csv``: one row per changed attribute (one ``(whole item)`` row for created/deleted items)."""
    return write_diff_files(incident, html_path=False, csv_path=path)[1]


# -- HTML --------------------------------------------------------------------------------------------------
#: Rows laid out at first (and at most per search, until "show all"): the page opens in about the same time
#: at 120 or 100,000 items, since a browser only lays out the rows it shows. Every row is in the file.
SHOWN = 500
STYLE = """
body{font-family:sans-serif;font-size:13px;margin:16px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #e0e0e0;padding:3px 6px;text-align:left;vertical-align:top}
th{position:sticky;top:0;background:#f8f9fa}
td{white-space:pre-wrap;overflow-wrap:anywhere}
td.k{font-family:monospace}
.changed{color:#b06000}.deleted{color:#b3261e}.created{color:#1a73e8}.unchanged{color:#5f6368}
details table{width:auto;margin:4px 0}
details td{font-family:monospace;font-size:12px}
td.o{background:#e6f4ea}td.n{background:#fce8e6}
#bar{position:sticky;top:0;background:#fff;padding:6px 0}
#items:not(.searching) > tbody > tr:nth-child(n+@NEXT@){display:none}
""".replace("@NEXT@", str(SHOWN + 1))
SCRIPT = """
(function(){
var q=document.getElementById('q'),c=document.getElementById('c'),n=document.getElementById('n'),
all=document.getElementById('all'),table=document.getElementById('items');
var rows=Array.prototype.slice.call(document.querySelectorAll('#items > tbody > tr'));
var text=null,cap=@SHOWN@,timer=null;
function apply(){if(text===null){text=rows.map(function(r){return r.textContent.toLowerCase();});}
table.className='searching';var s=q.value.toLowerCase(),k=c.value,matches=0;
for(var i=0;i<rows.length;i++){var ok=(!k||rows[i].getAttribute('data-c')===k)&&(!s||text[i].indexOf(s)>=0);
if(ok)matches++;rows[i].style.display=ok&&matches<=cap?'':'none';}
show(matches);}
function show(matches){n.textContent=(matches>cap?'showing the first '+cap+' of ':'')+matches+' of '+rows.length+
' items';all.style.display=matches>cap?'':'none';}
q.addEventListener('input',function(){clearTimeout(timer);timer=setTimeout(apply,150);});
c.addEventListener('change',apply);all.addEventListener('click',function(){cap=Infinity;apply();});
show(rows.length);
})();
""".replace("@SHOWN@", str(SHOWN))


def _row(d: ItemDiff) -> str:
    e, esc = d.entry, html.escape
    details = "".join(
        f"<tr><td>{esc(a)}</td><td class=o>{esc(o)}</td><td class=n>{esc(n)}</td></tr>" for a, o, n in d.rows
    )
    summary = (
        WHOLE_ITEM
        if d.rows and d.rows[0][0] == WHOLE_ITEM
        else (", ".join(d.attributes) if d.rows else "no difference")
    )
    folded = (
        f"<details><summary>{esc(summary)}</summary><table><tr><th>attribute</th><th>restored "
        f"(written back)</th><th>live (replaced)</th></tr>{details}</table></details>"
        if d.rows
        else esc(summary)
    )
    return (
        f"<tr data-c={e.classification}><td class=k>{esc(d.key)}</td><td class={e.classification}>"
        f"{e.classification}</td><td>{e.action}</td><td>{esc(e.tenant or '')}</td>"
        f"<td>{time_text(e.first_change)}</td><td>{esc(' '.join(e.sources))}</td><td>{folded}</td></tr>\n"
    )


def _html_head(incident: Incident, meta: dict[str, Any]) -> str:
    counts = meta.get("counts", {})
    options = "".join(f"<option value={c}>{c} ({counts.get(c, 0)})</option>" for c in CLASSIFICATIONS)
    title = f"Incident {incident.incident_id}: full diff of plan {str(meta.get('digest'))[:12]}"
    window = meta.get("window") or {}
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Table <code>{html.escape(str(meta.get('table_name')))}</code> against "
        f"<code>{html.escape(str(meta.get('restored_table_name')))}</code>; window "
        f"{time_text(window.get('start'))} – {time_text(window.get('end'))}; plan digest "
        f"<code>{html.escape(str(meta.get('digest')))}</code>. <b>restored</b> is what the patch writes back, "
        f"<b>live</b> what it replaces. Values as DynamoDB stores them. The first {SHOWN} rows are shown; the "
        "search box searches every row (or <i>show all</i>). The same rows: "
        f"<a href='{CSV_FILE}'>{CSV_FILE}</a>.</p>"
        "<div id=bar><input id=q type=search placeholder='search keys, tenants, attributes, values' size=50>"
        f" <select id=c><option value=''>every classification</option>{options}</select> <span id=n></span>"
        " <button id=all type=button style='display:none'>show all</button>"
        "</div><table id=items><thead><tr><th>key</th><th>classification</th><th>action</th><th>tenant</th>"
        "<th>first change</th><th>sources</th><th>difference</th></tr></thead><tbody>\n"
    )


def write_html(incident: Incident, path: Path | None = None) -> Path:
    """``diff.html``: every planned key, one row each with its changed attributes folded in; searchable."""
    return write_diff_files(incident, html_path=path, csv_path=False)[0]


def _batched(it: Iterator[ItemDiff], n: int) -> Iterator[list[ItemDiff]]:
    while batch := list(itertools.islice(it, n)):
        yield batch


def write_diff_files(
    incident: Incident, *, html_path: Path | None | bool = None, csv_path: Path | None | bool = None
) -> tuple[Path | None, Path | None]:
    """``diff.html`` and ``diff.csv`` from one pass over the plan (``False`` skips one); returns their paths."""
    meta = load_plan_meta(incident)
    html_target = None if html_path is False else (html_path or incident.path / HTML_FILE)
    csv_target = None if csv_path is False else (csv_path or incident.path / CSV_FILE)
    with contextlib.ExitStack() as stack:
        page = (
            stack.enter_context(html_target.with_suffix(".html.tmp").open("w", encoding="utf-8"))
            if html_target
            else None
        )
        sheet = (
            stack.enter_context(csv_target.with_suffix(".csv.tmp").open("w", newline="", encoding="utf-8"))
            if csv_target
            else None
        )
        rows = csv.writer(sheet) if sheet else None
        if page:
            page.write(_html_head(incident, meta))
        if rows:
            rows.writerow(CSV_COLUMNS)
        for batch in _batched(iter_item_diffs(incident), 500):
            if page:
                page.write("".join(_row(d) for d in batch))
            if rows:
                rows.writerows(r for d in batch for r in _csv_rows(d))
        if page:
            page.write(f"</tbody></table><script>{SCRIPT}</script></body></html>\n")
    for target, suffix in ((html_target, ".html.tmp"), (csv_target, ".csv.tmp")):
        if target:
            target.with_suffix(suffix).replace(target)
    return html_target, csv_target
