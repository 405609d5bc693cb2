"""``{% scout_live %}`` in headless Chromium, under uvicorn (the relay's ASGI mode):

* a streamed interaction against the fake Scout, its events paced: events appear on the page
  while the interaction is still running in the database, then its outcome;
* without JavaScript the server-rendered status and events stay, with a reload link;
* event text that looks like markup is shown as text, whether rendered or streamed.

The server's database is a migrated SQLite file; rows change in processes of their own
(``python -m tests.testapp.live ...``), as a Celery worker's would. The relay polls it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from django_scout.testing import FakeScout
from tests.browser.pages import AdminBrowser, watched_tab
from tests.helpers import ROOT, migrated_sqlite_env, run_python, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator

#: Milliseconds a test waits for something it expects (a loaded machine is slow, never this slow).
WAIT_MS = 30_000
#: Markup in event data: shown as text, never run or parsed.
HOSTILE = "<script>window.pwned = 1</script><b>bold</b>"
#: The paced agent: its stream lasts EVENTS x INTERVAL seconds (plus its terminal event).
EVENTS = 30
INTERVAL = 0.3


def asgi_with_static(fd: int) -> list[str]:
    """uvicorn serving the test project and its static files on the socket ``fd``."""
    return [
        "-m",
        "uvicorn",
        "--fd",
        str(fd),
        "--log-level",
        "warning",
        "tests.browser.asgi:application",
    ]


class Site:
    """The running site, and how to change and read its rows."""

    def __init__(self, base_url: str, env: dict[str, str], database: Path) -> None:
        self.base_url = base_url
        self.env = env
        self.database = database

    def change(self, function: str, *args: str) -> str:
        """Run ``tests.testapp.live.<function>(*args)`` on the site's database; its result."""
        command = ["-m", "tests.testapp.live", function, *args]
        return run_python(sys.executable, command, cwd=ROOT, env=self.env, timeout=120).strip()

    def change_in_background(self, function: str, *args: str) -> subprocess.Popen[bytes]:
        """:meth:`change`, without waiting for it."""
        return subprocess.Popen(
            [sys.executable, "-m", "tests.testapp.live", function, *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
        )

    def status(self, interaction_id: str) -> str:
        """The interaction's status in the database, now."""
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT status FROM django_scout_interaction WHERE id = ?",
                (uuid.UUID(interaction_id).hex,),
            ).fetchone()
        assert row is not None, interaction_id
        return str(row[0])

    def page_path(self, interaction_id: str) -> str:
        return f"/testapp/live/interaction/{interaction_id}/"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeScout]:
    """The fake Scout the streamed interactions run against."""
    scout = FakeScout()
    scout.start()
    try:
        yield scout
    finally:
        scout.stop()


@pytest.fixture(scope="module")
def site(fake: FakeScout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    database = tmp_path_factory.mktemp("widget") / "db.sqlite3"
    overrides = fake.scout_settings(
        LIVE_PERMISSION="tests.testapp.live.viewer_header",
        LIVE_POLL_INTERVAL=0.1,
        MAX_RETRIES=0,
    )
    env = migrated_sqlite_env(database, overrides)
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    with running_server(asgi_with_static, env, log) as base_url:
        yield Site(base_url, env, database)


def open_tab(
    request: pytest.FixtureRequest,
    browser: Browser,
    site: Site,
    screenshots: Path,
    *,
    javascript: bool = True,
) -> Iterator[AdminBrowser]:
    # The site's LIVE_PERMISSION lets in requests with this header (the stream's too).
    context = browser.new_context(
        extra_http_headers={"X-Viewer": "allowed"}, java_script_enabled=javascript
    )
    context.set_default_timeout(WAIT_MS)
    yield from watched_tab(request, context, site.base_url, screenshots)


@pytest.fixture
def tab(
    request: pytest.FixtureRequest, browser: Browser, site: Site, screenshots: Path
) -> Iterator[AdminBrowser]:
    """A tab the site lets watch, with JavaScript."""
    yield from open_tab(request, browser, site, screenshots)


@pytest.fixture
def tab_without_js(
    request: pytest.FixtureRequest, browser: Browser, site: Site, screenshots: Path
) -> Iterator[AdminBrowser]:
    """A tab the site lets watch, with JavaScript off."""
    yield from open_tab(request, browser, site, screenshots, javascript=False)


def widget(tab: AdminBrowser) -> Locator:
    return tab.page.locator("[data-scout-live]")


def badge(tab: AdminBrowser) -> str:
    return widget(tab).locator("[data-scout-live-badge]").inner_text().strip()


def events(tab: AdminBrowser) -> Locator:
    return widget(tab).locator(".scout-live__event")


def test_events_appear_while_the_interaction_runs(
    tab: AdminBrowser, site: Site, fake: FakeScout
) -> None:
    fake.agent("widget-paced", events=EVENTS, event_interval=INTERVAL, reply=HOSTILE)
    interaction_id = site.change("create_streamed", "widget-paced")
    tab.open(site.page_path(interaction_id))
    assert badge(tab) == "pending"
    assert events(tab).count() == 0
    runner = site.change_in_background("run_start", interaction_id)
    try:
        events(tab).first.wait_for()
        # The first event is on the page and the stream still has seconds to go.
        assert site.status(interaction_id) not in ("succeeded", "failed")
        assert badge(tab) == "accepted"
        tab.screenshot("live-widget-running")
        outcome = widget(tab).locator("[data-scout-live-outcome]")
        outcome.wait_for(state="visible")
        assert runner.wait(timeout=WAIT_MS / 1000) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    assert site.status(interaction_id) == "succeeded"
    assert "succeeded" in outcome.inner_text()
    assert badge(tab) == "succeeded"
    assert events(tab).count() == EVENTS + 1  # and the terminal event
    sequences = [
        int(s) for s in events(tab).evaluate_all("items => items.map(i => i.dataset.sequence)")
    ]
    assert sequences == list(range(EVENTS + 1))
    # The reply (the last message's text) is shown as text, not run or parsed.
    assert HOSTILE in events(tab).nth(EVENTS - 1).inner_text()
    assert tab.page.evaluate("window.pwned") is None
    assert widget(tab).locator("b, script:not([src])").count() == 0
    assert widget(tab).get_attribute("data-scout-live-ended") == ""
    tab.screenshot("live-widget-finished")


def test_without_javascript_the_rendered_status_and_events_stay(
    tab_without_js: AdminBrowser, site: Site
) -> None:
    tab = tab_without_js
    interaction_id = site.change("create_interaction")
    for sequence in ("0", "1"):
        site.change("add_event", interaction_id, sequence, f"step-{sequence}")
    tab.open(site.page_path(interaction_id))
    assert badge(tab) == "accepted"
    assert [
        name.strip() for name in events(tab).locator(".scout-live__name").all_inner_texts()
    ] == [
        "step-0",
        "step-1",
    ]
    note = widget(tab).locator("[data-scout-live-note]")
    assert note.is_visible()
    assert note.get_by_role("link", name="Reload the page").count() == 1
    assert not widget(tab).locator("[data-scout-live-outcome]").is_visible()
    tab.screenshot("live-widget-no-js")
    site.change("complete", interaction_id)
    tab.open(site.page_path(interaction_id))
    assert badge(tab) == "succeeded"
    assert "succeeded" in widget(tab).locator("[data-scout-live-outcome]").inner_text()
    assert note.count() == 0


def test_markup_in_events_is_shown_as_text(tab: AdminBrowser, site: Site) -> None:
    interaction_id = site.change("create_interaction")
    site.change("add_event", interaction_id, "0", HOSTILE)  # rendered by the server
    tab.open(site.page_path(interaction_id))
    site.change("add_event", interaction_id, "1", HOSTILE)  # streamed to the script
    events(tab).nth(1).wait_for()
    names = events(tab).locator(".scout-live__name").all_inner_texts()
    assert [name.strip() for name in names] == [HOSTILE, HOSTILE]
    assert tab.page.evaluate("window.pwned") is None
    assert widget(tab).locator("b, script:not([src])").count() == 0
    site.change("complete", interaction_id)
    widget(tab).locator("[data-scout-live-outcome]").wait_for(state="visible")
    assert badge(tab) == "succeeded"
