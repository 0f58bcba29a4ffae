"""Open a run folder's archive in headless Chromium with the network blocked, and screenshot its pages.

    python tools/screenshot_archive.py runs/demo [--out shots/] [--pages index.html,04_diff.html,...]

Every request that is not ``file://``, ``data:`` or loopback is blocked (``page.route``) and listed: an archive
that needs the network shows up here as a blocked request. For each page it prints the load time, the page
height, the number of images that rendered and the blocked requests, then saves a PNG (clipped to
``--max-height`` pixels; the height printed is the whole page's). Needs the ``playwright`` Python package and a
Chromium (Debian's ``/usr/bin/chromium`` by default: never ``playwright install``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_PAGES = (
    "index.html",
    "04_diff.html",
    "diff.html",
    "06_lift.html",
    "01_prepare.html",
    "03_restore.html",
    "05_patch.html",
)
ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def allowed(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "about", "blob") or parsed.hostname in ALLOWED_HOSTS


def shoot(run_dir: Path, out: Path, pages: list[str], *, chromium: str, max_height: int, width: int) -> int:
    """Screenshot each page; returns the number of pages that made a blocked (network) request or are missing."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    problems = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name in pages:
            path = (run_dir / name).resolve()
            if not path.is_file():
                print(f"{name}: missing")
                problems += 1
                continue
            page = browser.new_page(viewport={"width": width, "height": 900})
            blocked: list[str] = []

            def route(r, blocked=blocked):
                if allowed(r.request.url):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            started = time.monotonic()
            page.goto(path.as_uri(), wait_until="load")
            seconds = time.monotonic() - started
            height = page.evaluate("document.documentElement.scrollHeight")
            images = page.evaluate(
                "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
            )
            target = out / f"{path.stem}.png"
            page.screenshot(
                path=str(target),
                full_page=height <= max_height,
                clip=None if height <= max_height else {"x": 0, "y": 0, "width": width, "height": max_height},
            )
            size = path.stat().st_size
            print(
                f"{name}: {size / 1024:.0f} kB, loaded in {seconds:.2f} s, {height} px tall, "
                f"{images} images, blocked {len(blocked)}: {blocked[:3]} -> {target}"
            )
            problems += bool(blocked)
            page.close()
        browser.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: <run_dir>/screenshots")
    parser.add_argument("--pages", default=",".join(DEFAULT_PAGES))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--max-height", type=int, default=6000)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    out = args.out or args.run_dir / "screenshots"
    return (
        1
        if shoot(
            args.run_dir, out, pages, chromium=args.chromium, max_height=args.max_height, width=args.width
        )
        else 0
    )


if __name__ == "__main__":
    sys.exit(main())
