"""Fixtures of the browser suite: Chromium, the live server, seeded data, a logged-in tab.

* ``browser`` — headless Chromium for this module (skips without one, see ``support``).
* ``admin_data`` — :func:`tests.browser.seed.seed_admin_data`'s rows.
* ``anonymous_admin`` — an :class:`AdminBrowser` tab on the live server, not logged in.
* ``admin`` — the same, logged in as a superuser through the real login form.

Every tab fails its test on console errors, page errors and failed requests it did not allow
(``admin.allowed_statuses``), and a failing test leaves ``FAILED-<test>.png`` beside the
screenshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.pages import AdminBrowser, LoginPage, watched_tab
from tests.browser.seed import ADMIN_PASSWORD, ADMIN_USERNAME, AdminData, seed_admin_data
from tests.browser.support import artifacts_dir, launched_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser

COLLAPSE_NAV_SIDEBAR = "window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false');"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, for the failure screenshot."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, shared by one module's tests."""
    with launched_browser() as browser:
        yield browser


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder screenshots go to."""
    return artifacts_dir()


@pytest.fixture
def admin_data(transactional_db: None) -> AdminData:
    """The seeded history (flushed after the test, as the live server needs real commits)."""
    return seed_admin_data()


@pytest.fixture
def admin_credentials(transactional_db: None) -> tuple[str, str]:
    """A superuser's username and password (hashed fast, as ``tests/settings.py`` says)."""
    from django.contrib.auth.models import User

    User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
    return ADMIN_USERNAME, ADMIN_PASSWORD


@pytest.fixture
def anonymous_admin(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any, screenshots: Path
) -> Iterator[AdminBrowser]:
    """A fresh browser tab on the live server's admin, not logged in."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        locale="en-US",
        timezone_id="UTC",
        color_scheme="light",
    )
    context.set_default_timeout(15_000)
    # Collapse the admin's navigation sidebar (Django remembers that choice in localStorage):
    # it is sticky, so full-page screenshots would show it floating halfway down, and it
    # takes room the wide changelists need.
    context.add_init_script(COLLAPSE_NAV_SIDEBAR)
    yield from watched_tab(request, context, live_server.url, screenshots)


@pytest.fixture
def admin(anonymous_admin: AdminBrowser, admin_credentials: tuple[str, str]) -> AdminBrowser:
    """A tab logged in as a superuser through the login form."""
    LoginPage(anonymous_admin).open().log_in(*admin_credentials)
    assert anonymous_admin.path == "/admin/", anonymous_admin.text()
    return anonymous_admin
