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


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each step's screenshot goes ($RECOVERY_SCREENSHOTS, or a temporary folder); printed."""
    folder = Path(os.environ.get("RECOVERY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n*** browser screenshots: {folder} ***", file=sys.__stderr__)
    return folder
