"""Page objects for the Django admin as a person sees it in Chromium.

:class:`AdminBrowser` is one logged-in (or anonymous) browser tab on the live server: it opens
admin URLs by name or path, records every console error, uncaught page error and failed request
(a test fails on any it did not allow), and saves screenshots under stable names. The page
objects on top of it know the admin's markup, which differs between Django 4.2 and 5.x only in
places they handle (e.g. filter headings, collapsed fieldsets):

* :class:`LoginPage` — the real login form.
* :class:`ModelPage` — the base of a model's pages: its admin URL names.
* :class:`ChangeList` — rows, list filters, search, row checkboxes and actions.
* :class:`ChangePage` — fieldsets, read-only fields, inlines, links to related objects.

New admin pages (e.g. a dashboard) need no new class to be checked: ``admin.open(
"admin:django_scout_dashboard")`` asserts the page loads cleanly; add a page object when a
test needs to read or use its parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.urls import reverse

from tests.browser.support import artifact_name

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Response

APP_LABEL = "django_scout"


class AdminBrowser:
    """One browser tab on the admin of the live server, watched for problems."""

    def __init__(self, page: Page, base_url: str, artifacts: Path) -> None:
        self.page = page
        # The live server listens on IPv4 loopback; name it so the browser never tries ::1.
        parts = urlsplit(base_url)
        self.base_url = f"{parts.scheme}://127.0.0.1:{parts.port}"
        self.artifacts = artifacts
        self.problems: list[str] = []
        self.allowed_statuses: set[int] = set()
        # The admin declares no icon, so Chromium asks for /favicon.ico and logs its 404 as a
        # console error; answer it in the browser instead.
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self._on_response)

    # -- watching ----------------------------------------------------------------------------

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _on_response(self, response: Response) -> None:
        if response.status < 400 or response.status in self.allowed_statuses:
            return
        self.problems.append(f"HTTP {response.status} for {response.url}")

    def assert_clean(self) -> None:
        """Fail if the pages logged console errors, raised, or any request failed."""
        assert not self.problems, "browser problems:\n" + "\n".join(self.problems)

    # -- navigating --------------------------------------------------------------------------

    def url(self, target: str, *args: Any, query: Mapping[str, str] | None = None) -> str:
        """Absolute URL of a URL name (``admin:...``, reversed with ``args``) or of a path."""
        path = reverse(target, args=args) if ":" in target and "/" not in target else target
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url

    def open(self, target: str, *args: Any, query: Mapping[str, str] | None = None) -> AdminBrowser:
        """Load a page by URL name or path; it must answer without an error status."""
        response = self.page.goto(self.url(target, *args, query=query))
        self._check_response(response, target)
        return self

    def navigate(self, action: Callable[[], object]) -> AdminBrowser:
        """Run ``action`` (a click, a submit), wait for the page it loads, check its status."""
        with self.page.expect_navigation() as navigation:
            action()
        self._check_response(navigation.value, self.page.url)
        self.page.wait_for_load_state("load")
        return self

    def _check_response(self, response: Response | None, what: str) -> None:
        assert response is not None, f"no response for {what}"
        assert response.status < 400 or response.status in self.allowed_statuses, (
            f"HTTP {response.status} for {response.url}"
        )
        assert "Server Error" not in self.page.title(), f"server error page at {response.url}"

    @property
    def path(self) -> str:
        """The path of the current page."""
        return urlsplit(self.page.url).path

    @property
    def query(self) -> str:
        """The query string of the current page."""
        return urlsplit(self.page.url).query

    # -- reading -----------------------------------------------------------------------------

    def heading(self) -> str:
        """The page's main heading (``#content h1``)."""
        return self.page.locator("#content h1").first.inner_text().strip()

    def messages(self) -> list[str]:
        """The texts of the message list (success, warning and error messages)."""
        return [m.strip() for m in self.page.locator("ul.messagelist li").all_inner_texts()]

    def breadcrumbs(self) -> str:
        """The breadcrumb trail's text."""
        return self.page.locator(".breadcrumbs").inner_text().strip()

    def text(self) -> str:
        """All visible text of the page."""
        return self.page.locator("body").inner_text()

    def is_styled(self) -> bool:
        """True when the admin's stylesheet applied (the header has the admin's background)."""
        background = self.page.evaluate(
            "getComputedStyle(document.querySelector('#header')).backgroundColor"
        )
        return background not in ("", "rgba(0, 0, 0, 0)", "transparent")

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as ``<artifacts>/<name>.png`` and return its path."""
        path = self.artifacts / f"{artifact_name(name, keep_case=True)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


class LoginPage:
    """The admin's login form."""

    def __init__(self, admin: AdminBrowser) -> None:
        self.admin = admin
        self.page = admin.page

    def open(self) -> LoginPage:
        """Open ``/admin/login/``."""
        self.admin.open("admin:login")
        return self

    def fill(self, username: str, password: str) -> LoginPage:
        """Type the credentials without submitting."""
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        return self

    def log_in(self, username: str, password: str) -> AdminBrowser:
        """Fill the form and submit it; the admin index (or ``next``) loads."""
        self.fill(username, password)
        self.admin.navigate(lambda: self.page.click("#login-form [type=submit]"))
        return self.admin

    def error(self) -> str:
        """The form's error note ('' when there is none)."""
        note = self.page.locator(".errornote")
        return note.inner_text().strip() if note.count() else ""


class ModelPage:
    """A page of one registered model's admin."""

    def __init__(self, admin: AdminBrowser, model_name: str, app_label: str = APP_LABEL) -> None:
        self.admin = admin
        self.page = admin.page
        self.model_name = model_name
        self.app_label = app_label

    def url_name(self, view: str) -> str:
        """The admin URL name of one of the model's views, e.g. ``changelist`` or ``change``."""
        return f"admin:{self.app_label}_{self.model_name}_{view}"


class ChangeList(ModelPage):
    """A model's changelist: rows, filters, search and actions."""

    def open(self, **query: str) -> ChangeList:
        """Load the changelist, with optional query parameters (e.g. ``status__exact``)."""
        self.admin.open(self.url_name("changelist"), query=query or None)
        return self

    @property
    def rows(self) -> Locator:
        """The result rows."""
        return self.page.locator("#result_list tbody tr")

    def row_texts(self) -> list[str]:
        """Each result row's text, tab-separated cells."""
        return [text.strip() for text in self.rows.all_inner_texts()]

    def row(self, text: str) -> Locator:
        """The one row that contains ``text``."""
        row = self.rows.filter(has_text=text)
        assert row.count() == 1, f"{row.count()} rows contain {text!r}: {self.row_texts()}"
        return row

    def column(self, field: str) -> list[str]:
        """The cells of a ``list_display`` column, by field or method name."""
        cells = self.page.locator(f"#result_list tbody .field-{field}")
        return [text.strip() for text in cells.all_inner_texts()]

    def clipped_columns(self) -> list[str]:
        """Headers of the columns that do not fit: only horizontal scrolling shows them."""
        script = """() => {
            const box = document.querySelector('#changelist .results').getBoundingClientRect();
            return [...document.querySelectorAll('#result_list thead th')]
                .filter(th => th.getBoundingClientRect().right > box.right + 1)
                .map(th => th.innerText.trim());
        }"""
        clipped: list[str] = self.page.evaluate(script)
        return clipped

    def result_count(self) -> int:
        """The number of rows shown."""
        return self.rows.count()

    def filter(self, title: str, choice: str) -> ChangeList:
        """Click ``choice`` under the list filter headed "By <title>"."""
        heading = f"By {title}"
        link = self.page.locator(
            "xpath=//*[@id='changelist-filter']//*[self::h3 or self::summary]"
            f"[normalize-space(.)='{heading}']/following-sibling::ul[1]"
            f"//a[normalize-space(.)='{choice}']"
        )
        assert link.count() == 1, f"no filter choice {choice!r} under {heading!r}"
        self.admin.navigate(link.click)
        return self

    def search(self, term: str) -> ChangeList:
        """Type ``term`` into the search bar and submit."""
        self.page.fill("#searchbar", term)
        self.admin.navigate(lambda: self.page.press("#searchbar", "Enter"))
        return self

    def select(self, *texts: str) -> ChangeList:
        """Tick the checkbox of each row containing one of ``texts``."""
        for text in texts:
            self.row(text).locator("input.action-select").check()
        return self

    def run_action(self, label: str) -> list[str]:
        """Choose the action by its label, press Go, and return the messages shown."""
        self.page.select_option("select[name=action]", label=label)
        self.admin.navigate(lambda: self.page.click("button[name=index]"))
        return self.admin.messages()

    def open_row(self, text: str) -> ChangePage:
        """Follow the link of the row containing ``text`` to its change page."""
        self.admin.navigate(self.row(text).locator("a").first.click)
        return ChangePage(self.admin, self.model_name, self.app_label)


class ChangePage(ModelPage):
    """An object's change (here: view) page: fieldsets, read-only fields and inlines."""

    def open(self, pk: Any) -> ChangePage:
        """Load the page of the object with primary key ``pk``."""
        self.admin.open(self.url_name("change"), pk)
        return self

    def fieldsets(self) -> list[str]:
        """The fieldsets' headings, in order (the unnamed first one has none)."""
        headings = self.page.locator("fieldset.module h2").all_inner_texts()
        return [heading.strip() for heading in headings]

    def field(self, name: str) -> str:
        """The shown value of a read-only field (``.field-<name>``)."""
        return self.page.locator(f".field-{name} .readonly").first.inner_text().strip()

    def field_link(self, name: str) -> Locator:
        """The link a read-only foreign key field shows to its object's admin page."""
        return self.page.locator(f".field-{name} .readonly a").first

    def follow_field(self, name: str, model_name: str) -> ChangePage:
        """Follow a read-only foreign key's link; returns the related object's page."""
        self.admin.navigate(self.field_link(name).click)
        return ChangePage(self.admin, model_name, self.app_label)

    def timeline_rows(self, field: str) -> list[str]:
        """The rows of an event timeline shown in a read-only field."""
        rows = self.page.locator(f".field-{field} .scout-timeline tbody tr")
        return [text.strip() for text in rows.all_inner_texts()]

    def inline(self, prefix: str) -> Locator:
        """An inline group by its formset prefix, e.g. ``events`` or ``deliveries``."""
        return self.page.locator(f"#{prefix}-group")

    def inline_rows(self, prefix: str) -> list[str]:
        """The texts of an inline's rows."""
        rows = self.inline(prefix).locator("tbody tr.has_original, tbody tr.form-row")
        return [text.strip() for text in rows.all_inner_texts() if text.strip()]

    def inline_link(self, prefix: str, text: str) -> Locator:
        """The View/Change link of the inline row containing ``text`` (``show_change_link``)."""
        row = self.inline(prefix).locator("tbody tr").filter(has_text=text)
        return row.locator("a.inlineviewlink, a.inlinechangelink").first

    def expand_collapsed(self) -> ChangePage:
        """Open every collapsed fieldset and inline (``<details>`` on Django 5.1+, else JS)."""
        for summary in self.page.locator("details:not([open]) > summary").all():
            summary.click()
        for toggle in self.page.locator("a.collapse-toggle").all():
            if toggle.inner_text().strip().lower() == "show":
                toggle.click()
        return self

    def is_read_only(self) -> bool:
        """True when the page offers no save or delete button."""
        buttons = self.page.locator("input[name=_save], input[name=_continue], a.deletelink")
        return buttons.count() == 0

    def follow(self, text: str, model_name: str) -> ChangePage:
        """Follow the link with exactly this text; returns the page it opens."""
        self.admin.navigate(self.page.get_by_role("link", name=text, exact=True).first.click)
        return ChangePage(self.admin, model_name, self.app_label)


def watched_tab(
    request: pytest.FixtureRequest, context: BrowserContext, base_url: str, screenshots: Path
) -> Iterator[AdminBrowser]:
    """A tab of ``context`` on ``base_url`` for one test: it fails the test on browser problems
    (or, when the test failed, saves a screenshot); the context is closed afterwards."""
    tab = AdminBrowser(context.new_page(), base_url, screenshots)
    try:
        yield tab
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            tab.screenshot(f"FAILED-{artifact_name(request.node.name)}")
            print("browser problems:", *tab.problems, sep="\n  ")
        else:
            tab.assert_clean()
    finally:
        context.close()
