"""Headless Chromium for the browser suite: finding it, launching it, and where screenshots go.

The suite drives Debian's ``chromium`` package through Playwright's Python client (never
Playwright's own browser download). Without a browser the tests skip with a reason saying what
to install; with ``SCOUT_REQUIRE_BROWSER=1`` (as ``.ci/run`` sets it) they fail instead.

| variable | meaning |
|---|---|
| ``SCOUT_CHROMIUM`` | the browser (default: ``chromium`` on ``PATH``, then alikes) |
| ``SCOUT_REQUIRE_BROWSER`` | ``1``: no browser (or no Playwright) fails instead of skipping |
| ``SCOUT_BROWSER_ARTIFACTS`` | screenshots' folder (default ``<repo>/test-artifacts/browser``) |
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]
REQUIRE_BROWSER = os.environ.get("SCOUT_REQUIRE_BROWSER") == "1"
INSTALL_HINT = "needs Chromium: apt-get install chromium"

# Headless, no sandbox (CI runs as root), and none of Chromium's own traffic: without the
# background-networking flags it phones home, and a closed network refuses those connections.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable: ``SCOUT_CHROMIUM`` if set, else the first one on ``PATH``."""
    configured = os.environ.get("SCOUT_CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_problem() -> str | None:
    """Why no browser test can run here, or ``None`` when Playwright and Chromium are there."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright's Python client: pip install -e '.[test]'"
    if find_chromium() is None:
        configured = os.environ.get("SCOUT_CHROMIUM")
        if configured:
            return f"SCOUT_CHROMIUM={configured!r} is not an executable; {INSTALL_HINT}"
        return f"{INSTALL_HINT} (no chromium on PATH)"
    return None


def require_chromium() -> str:
    """The Chromium executable; skips the test without one (fails under SCOUT_REQUIRE_BROWSER=1)."""
    problem = browser_problem()
    if problem is not None:
        message = f"browser test {problem}"
        if REQUIRE_BROWSER:
            pytest.fail(f"SCOUT_REQUIRE_BROWSER=1 but the {message}", pytrace=False)
        pytest.skip(message)
    executable = find_chromium()
    assert executable is not None
    return executable


@contextmanager
def launched_browser() -> Iterator[Browser]:
    """Headless Chromium, closed on exit (skips or fails as :func:`require_chromium` says).

    While Playwright's sync API is alive, its event loop counts as running in this thread (it
    is marked running between calls), so Django would refuse the ORM here with
    ``SynchronousOnlyOperation`` although nothing async runs. ``DJANGO_ALLOW_ASYNC_UNSAFE`` is
    set for exactly that span; keep Playwright's lifetime short (a module at most) so no
    asyncio test runs beside it.
    """
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def artifacts_dir() -> Path:
    """The folder screenshots go to (created): ``SCOUT_BROWSER_ARTIFACTS`` or the default."""
    configured = os.environ.get("SCOUT_BROWSER_ARTIFACTS")
    folder = Path(configured) if configured else REPO / "test-artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_name(text: str, keep_case: bool = False) -> str:
    """``text`` as a file name stem: ``-`` for anything but letters and digits, lower case
    unless ``keep_case``."""
    stem = text if keep_case else text.lower()
    return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-") or "page"
