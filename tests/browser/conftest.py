"""Browser tests: Playwright for Python driving Debian's chromium against JupyterLab on 127.0.0.1.

They skip, loudly, only outside CI: with the CI environment variable set (``.ci/run`` sets it) a missing
browser or Playwright fails them. ``playwright install`` is never used: it downloads browsers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RECOVERY_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium executable; skips (outside CI) or fails (in CI) when the browser tests cannot run."""
    why = _missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI, but {why}")
        print(
            f"\n*** BROWSER TESTS SKIPPED: {why}. In CI they must run (.ci/run installs both). ***",
            file=sys.__stderr__,
        )
        pytest.skip(f"BROWSER TESTS SKIPPED: {why}")
    return CHROMIUM


#: Each step's screenshot lands here ($RECOVERY_SCREENSHOTS, default build/browser-screenshots/, which
#: `make clean` removes); the folder is printed at the end of the run.
SCREENSHOTS = Path(
    os.environ.get("RECOVERY_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "build" / "browser-screenshots"
)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The screenshots folder, emptied of an earlier run's pictures."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    print(f"\n*** browser screenshots: {SCREENSHOTS} ***", file=sys.__stderr__)
    return SCREENSHOTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the screenshots folder in the summary (also under pytest-xdist, whose workers' stderr is hidden)."""
    why = _missing()
    if why:
        terminalreporter.write_line(f"*** BROWSER TESTS SKIPPED: {why}; in CI they must run ***", red=True)
    elif SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
