"""The full diff page (``diff.html``) at 10,000 items against the demo's 120: write time, size, browser open time.

    .venv/bin/python bench/diff_page.py [--items 10000] [--baseline 120] [--chromium /usr/bin/chromium]

One line per plan size: ``items=N write_s=X html_kb=Y csv_kb=Z open_s=W``, then the ratios of the large plan to the
baseline measured in the same run (a shared, loaded machine makes absolute seconds meaningless). ``open_s`` is
headless Chromium (network blocked) loading the page until two animation frames have been drawn. Needs the
``playwright`` package; without it the open times are skipped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recovery_helpers.archive.diff_page import write_diff_files
from tests.unit.archive.test_archive_pages import _plan  # the same plan shape the size test uses


def open_seconds(page: Path, chromium: str, repeat: int = 3) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(repeat):
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            started = time.monotonic()
            tab.goto(page.as_uri(), wait_until="load")
            tab.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            times.append(time.monotonic() - started)
            tab.close()
        browser.close()
    return sorted(times)[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=120)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.baseline, args.items):
            incident = _plan(Path(tmp) / str(n), n)
            started = time.monotonic()
            html_path, csv_path = write_diff_files(incident)
            write_s = time.monotonic() - started
            opened = open_seconds(html_path, args.chromium)
            results[n] = (write_s, html_path.stat().st_size, csv_path.stat().st_size, opened)
            print(
                f"items={n} write_s={write_s:.2f} html_kb={html_path.stat().st_size / 1024:.0f} "
                f"csv_kb={csv_path.stat().st_size / 1024:.0f} open_s={'n/a' if opened is None else f'{opened:.2f}'}"
            )
    (bw, bh, _, bo), (lw, lh, _, lo) = results[args.baseline], results[args.items]
    ratio = args.items / args.baseline
    print(
        f"ratio items={ratio:.0f}x write={lw / bw:.0f}x html={lh / bh:.0f}x"
        + (f" open={lo / bo:.1f}x" if bo and lo else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
