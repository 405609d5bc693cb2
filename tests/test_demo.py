"""The README's main job: the example project's demo, run once for the module.

Without services it runs on SQLite and kombu's file broker; with ``DATABASE_URL`` and
``CELERY_BROKER_URL`` set (CI's second run) the same command runs on PostgreSQL + Redis. It runs
with ``--serve-for`` (exits like ``--once``, after keeping the admin up until SIGTERM), so the
tests can also check that its admin is served with its CSS, over HTTP and in Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import django
import httpx
import pytest

from tests.helpers import run_python

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
ADMIN_LINE = re.compile(r"^admin: (http://127\.0\.0\.1:\d+)/admin/", re.MULTILINE)
LIVE_LINE = re.compile(r"^live triage: http://127\.0\.0\.1:\d+(/tickets/\d+/) ", re.MULTILINE)
SERVING = "serving the admin for"


class DemoProcess:
    """``manage.py scout_demo --serve-for``: its output so far, and the site's URL once up."""

    def __init__(self, var_dir: Path) -> None:
        env = {**os.environ, "EXAMPLE_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [sys.executable, "manage.py", "scout_demo", "--port", "0", "--timeout", "120"]
        self.process = subprocess.Popen(
            [*command, "--serve-for", "300"],
            cwd=EXAMPLE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.serving = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(SERVING):
                self.serving.set()
        self.serving.set()  # the demo ended: stop waiting

    @property
    def output(self) -> str:
        """Everything the demo printed so far."""
        return "".join(self.lines)

    def wait_until_serving(self, timeout: float = 240) -> str:
        """Wait for the summary and the admin hint; return the site's base URL."""
        self.serving.wait(timeout)
        found = ADMIN_LINE.search(self.output)
        problem = f"the demo is not serving:\n{self.output[-4000:]}"
        assert found, problem
        assert SERVING in self.output, problem
        return found.group(1)

    def stop(self) -> int:
        """SIGTERM (the demo's own way out of --serve-for); return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        return status


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoProcess, str]]:
    """The demo, run once for this module: every scenario, then the admin kept up."""
    process = DemoProcess(tmp_path_factory.mktemp("demo-var"))
    try:
        url = process.wait_until_serving()
        yield process, url
    finally:
        status = process.stop()
    assert status == 0, process.output[-4000:]


def test_demo_runs_every_scenario(demo: tuple[DemoProcess, str]) -> None:
    output = demo[0].output
    assert "all interactions ended as expected" in output
    table = output.split("scenario", 1)[1]
    for scenario in ("success", "many-events", "fails", "duplicates", "callback-first", "live"):
        assert scenario in table
    duplicates_row = next(line for line in table.splitlines() if line.startswith("duplicates"))
    assert duplicates_row.split()[2:6] == ["callback", "succeeded", "10", "4"]
    live_row = next(line for line in table.splitlines() if line.startswith("live"))
    assert live_row.split()[2:6] == ["stream", "succeeded", "13", "0"]  # events + its end
    fails_row = next(line for line in table.splitlines() if line.startswith("fails"))
    assert "failed" in fails_row
    assert "tool_error" in fails_row
    plain = next(line for line in table.splitlines() if line.startswith("workflow-plain"))
    assert plain.split()[2:4] == ["plain", "succeeded"]
    assert "billing-support" in plain  # the receiver wrote the routing onto the ticket
    streamed = next(line for line in table.splitlines() if line.startswith("workflow-stream"))
    assert streamed.split()[2:4] == ["stream", "succeeded"]
    assert int(streamed.split()[4]) > 10  # every streamed event was stored
    assert "account-team" in streamed
    assert "admin: http://127.0.0.1:" in output
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert "postgresql" in output
    else:
        assert "sqlite3" in output
        assert "filesystem://" in output


def test_demo_serves_the_admin_css(demo: tuple[DemoProcess, str]) -> None:
    """DEBUG is off in the demo; WhiteNoise serves what collectstatic gathered."""
    url = demo[1]
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.get("/admin/login/")
        assert login.status_code == 200
        assert "/static/admin/css/base.css" in login.text
        css = client.get("/static/admin/css/base.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "#header" in css.text
        script = client.get("/static/admin/js/nav_sidebar.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert client.get("/static/admin/css/no-such-file.css").status_code == 404


def test_demo_admin_is_styled_in_a_browser(demo: tuple[DemoProcess, str]) -> None:
    """What a new user opens first: the demo's admin, logged in as demo/demo, with its CSS."""
    from tests.browser.pages import AdminBrowser, ChangeList, LoginPage
    from tests.browser.support import artifacts_dir, launched_browser

    with launched_browser() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
        try:
            admin = AdminBrowser(context.new_page(), demo[1], artifacts_dir())
            LoginPage(admin).open()
            assert admin.is_styled(), "the demo's admin has no CSS"
            LoginPage(admin).log_in("demo", "demo")
            assert admin.path == "/admin/"
            assert admin.is_styled()
            admin.screenshot("demo-index")
            changelist = ChangeList(admin, "interaction").open()
            assert changelist.result_count() >= 5
            assert admin.is_styled()
            admin.screenshot("demo-interaction-changelist")
            admin.assert_clean()
        finally:
            context.close()


def test_demo_ticket_page_follows_the_live_triage(demo: tuple[DemoProcess, str]) -> None:
    """The live scenario's ticket page: ``{% scout_live %}`` with its static script, and the
    relay's stream served by the demo's WSGI server."""
    from tests.browser.pages import AdminBrowser, LoginPage
    from tests.browser.support import artifacts_dir, launched_browser

    found = LIVE_LINE.search(demo[0].output)
    assert found, demo[0].output[-4000:]
    with httpx.Client(base_url=demo[1], timeout=30) as client:
        script = client.get("/static/django_scout/live.js")
        assert script.status_code == 200
        assert "EventSource" in script.text
        assert client.get(found.group(1)).status_code == 302  # staff only: to the login
    with launched_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        try:
            page = AdminBrowser(context.new_page(), demo[1], artifacts_dir())
            LoginPage(page).open().log_in("demo", "demo")
            page.open(found.group(1))
            widget = page.page.locator("[data-scout-live]").first
            assert widget.locator("[data-scout-live-badge]").inner_text().strip() == "succeeded"
            assert widget.locator(".scout-live__event").count() == 13  # events + its end
            assert widget.locator("[data-scout-live-outcome]").is_visible()
            page.screenshot("demo-ticket-live")
            # The stream itself, from the page (the session cookie authorises it).
            end = page.page.evaluate(
                """url => new Promise((resolve, reject) => {
                    const source = new EventSource(url);
                    source.addEventListener("end", (e) => { source.close(); resolve(e.data); });
                    source.onerror = () => { source.close(); reject(new Error("stream failed")); };
                })""",
                f"/scout/live/interactions/{widget.get_attribute('data-scout-live-id')}/",
            )
            assert '"status":"succeeded"' in end
            page.assert_clean()
        finally:
            context.close()


@pytest.mark.django_db
def test_migrations_are_up_to_date() -> None:
    from django.core.management import call_command

    call_command("makemigrations", "django_scout", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize("database_url", [None, "sqlite:///{tmp}/via-url.sqlite3"])
def test_example_sqlite_tuning_applies_however_sqlite_is_configured(
    tmp_path: Path, database_url: str | None
) -> None:
    env = {**os.environ, "EXAMPLE_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url.format(tmp=tmp_path)
    script = (
        "import json, django; from example_project import settings as s; "
        "print(json.dumps(s.DATABASES['default']['OPTIONS']))"
    )
    options = json.loads(run_python(sys.executable, ["-c", script], cwd=EXAMPLE, env=env))
    assert options["timeout"] == 30  # waits for the worker's lock instead of "database is locked"
    if django.VERSION >= (5, 1):
        assert options["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in options["init_command"]


#: Puts 20 messages through the example's file broker; before each one is renamed into place,
#: records the sizes of the message files a worker would take from the folder.
BROKER_PROBE = """
import json, os
from example_project.celery import app

replace, seen = os.replace, []

def spy(source, target):
    folder = os.path.dirname(target)
    visible = [n for n in os.listdir(folder) if n.partition(".")[2] == "probe.msg"]
    seen.append([os.path.getsize(os.path.join(folder, n)) for n in visible])
    replace(source, target)

os.replace = spy
with app.connection_for_write() as connection:
    queue = connection.SimpleQueue("probe")
    for n in range(20):
        queue.put({"n": n})
    got = []
    for _ in range(20):
        message = queue.get(timeout=5)
        message.ack()
        got.append(message.payload["n"])
print(json.dumps({"seen": seen, "got": got}))
"""


def test_example_broker_never_shows_a_worker_a_half_written_message(tmp_path: Path) -> None:
    # kombu's own file transport creates a message's file before writing it: a worker that
    # read it in between stopped on a JSONDecodeError, and the demo's interactions stayed
    # pending.
    env = {**os.environ, "EXAMPLE_VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "filesystem://"}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    result = json.loads(run_python(sys.executable, ["-c", BROKER_PROBE], cwd=EXAMPLE, env=env))
    assert sorted(result["got"]) == list(range(20))  # within a millisecond, in any order
    assert len(result["seen"]) == 20  # each message was renamed into place
    assert all(size > 0 for sizes in result["seen"] for size in sizes)


def test_example_broker_keeps_its_files_in_its_var_dir(tmp_path: Path) -> None:
    """kombu's file broker would otherwise write exchange tables to ./control."""
    env = {**os.environ, "EXAMPLE_VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "filesystem://"}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    script = (
        "import json; from example_project.celery import app; "
        "print(json.dumps(app.conf.broker_transport_options))"
    )
    options = json.loads(run_python(sys.executable, ["-c", script], cwd=EXAMPLE, env=env))
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        assert Path(options[key]).is_relative_to(tmp_path / "broker"), key
    assert (tmp_path / "broker" / "control").is_dir()
