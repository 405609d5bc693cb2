"""docs/quickstart.md works by copy-paste: its blocks, applied to a fresh ``startproject``.

The page is walked in order. Each titled block is applied to the project as its title says
(``path (new file)``, ``path (add at the end)``, ``path (replace the file)``); the block titled
``python manage.py shell`` is typed into the shell; each command line of an untitled ``bash``
block is run by the action of :data:`ACTIONS` that stands for it (a command the test does not
know fails the test, so an edited command is noticed here). Both round trips are checked: the
manual one (the fake Scout, ``runserver`` and the shell, ending with the receiver's line in the
``runserver`` output) and the documented pytest test. The only deviation from the page: free
ports instead of 8765 and 8000, set at the end of ``settings.py``.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from django_scout.testing.cli import build_parser
from tests.quickstart_env import ROOT, CleanVenv, build_wheel

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "quickstart.md"
FENCE = re.compile(
    r"^```(?P<lang>\w+)(?: title=\"(?P<title>[^\"]+)\")?\n(?P<code>.*?)^```$", re.M | re.S
)
FILE_TITLE = re.compile(r"^(?P<path>\S+) \((?P<mode>new file|add at the end|replace the file)\)$")
SHELL_TITLE = "python manage.py shell"


@dataclass
class Block:
    lang: str
    title: str | None
    code: str


def page_blocks(text: str) -> list[Block]:
    """The fenced blocks of the page, in order."""
    return [Block(m["lang"], m["title"], m["code"]) for m in FENCE.finditer(text)]


def test_every_titled_block_says_where_it_goes() -> None:
    titles = [block.title for block in page_blocks(PAGE.read_text()) if block.title]
    assert titles, "the quickstart has no titled blocks"
    unknown = [t for t in titles if t != SHELL_TITLE and not FILE_TITLE.match(t)]
    assert not unknown, f"titles the quickstart test cannot apply: {unknown}"


def test_the_documented_ports_are_the_defaults() -> None:
    """The page says the fake listens on 8765 and runserver on 8000."""
    assert build_parser().get_default("port") == 8765
    text = PAGE.read_text()
    assert '"http://127.0.0.1:8765"' in text
    assert '"http://127.0.0.1:8000"' in text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A background process whose output is collected line by line."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, seen: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; got:\n{seen()}")
        time.sleep(0.2)


class Walk:
    """Follows the page: one method per documented command, and the blocks."""

    def __init__(self, venv: CleanVenv, wheel: Path, workdir: Path) -> None:
        self.venv = venv
        self.wheel = wheel
        self.cwd = workdir
        self.servers: list[Server] = []
        self.fake_url = ""
        self.site_port = 0
        self.site: Server | None = None

    # --- helpers ------------------------------------------------------------------------

    def run(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(self.venv.python), *args],
            cwd=self.cwd,
            env=self.venv.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, *args: str) -> Server:
        process = subprocess.Popen(
            [str(self.venv.python), *args],
            cwd=self.cwd,
            env=self.venv.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = Server(process)
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    # --- the documented commands --------------------------------------------------------

    def install_package(self) -> None:
        self.venv.install(wheel=self.wheel)

    def install_pytest(self) -> None:
        self.venv.install("pytest", "pytest-django")

    def startproject(self) -> None:
        self.run("-m", "django", "startproject", "mysite")  # what django-admin runs

    def enter_project(self) -> None:
        self.cwd = self.cwd / "mysite"

    def manage(self, *args: str) -> Callable[[], None]:
        def step() -> None:
            self.run("manage.py", *args)

        return step

    def fake_server(self) -> None:
        server = self.start("manage.py", "scout_fake_server", "--port", "0")
        wait_until(lambda: bool(server.lines), 60, "the fake Scout's URL", lambda: server.output)
        self.fake_url = server.lines[0].strip()
        assert self.fake_url.startswith("http://127.0.0.1:"), server.output
        self.site_port = free_port()
        with (self.cwd / "mysite" / "settings.py").open("a") as settings:
            settings.write(
                "\n# tests/test_quickstart.py: this run's ports\n"
                f'SCOUT["API_BASE_URL"] = "{self.fake_url}"\n'
                f'SCOUT["CALLBACK_BASE_URL"] = "http://127.0.0.1:{self.site_port}"\n'
            )

    def runserver(self) -> None:
        address = f"127.0.0.1:{self.site_port}"
        self.site = self.start("manage.py", "runserver", address, "--noreload")
        url = f"http://127.0.0.1:{self.site_port}/admin/login/"

        def up() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "runserver", lambda: self.site.output if self.site else "")

    def pytest(self) -> None:
        out = self.run("-m", "pytest", "-q", "-p", "no:cacheprovider")
        assert "1 passed" in out, out

    # --- the blocks ---------------------------------------------------------------------

    def apply(self, block: Block) -> None:
        assert block.title is not None
        if block.title == SHELL_TITLE:
            self.shell(block.code)
            return
        match = FILE_TITLE.match(block.title)
        assert match, block.title
        path = self.cwd / match["path"]
        if match["mode"] == "new file":
            assert not path.exists(), f"{path} exists; the page says it is new"
            path.write_text(block.code)
        elif match["mode"] == "replace the file":
            assert path.exists(), f"{path} does not exist; the page says to replace it"
            path.write_text(block.code)
        else:
            assert path.exists(), f"{path} does not exist; the page says to add to it"
            with path.open("a") as existing:
                existing.write("\n\n" + block.code)

    def shell(self, code: str) -> None:
        self.run("manage.py", "shell", stdin=code)
        site = self.site
        assert site is not None, "the page runs the shell before runserver"
        (printed,) = (b.code for b in page_blocks(PAGE.read_text()) if b.lang == "text")
        line = printed.strip()
        assert line.startswith("ticket 1: "), line
        wait_until(
            lambda: line in site.output, 60, f"the receiver's line {line!r}", lambda: site.output
        )
        with sqlite3.connect(self.cwd / "db.sqlite3") as db:
            (status,) = db.execute("SELECT status FROM django_scout_interaction").fetchone()
            (summary,) = db.execute("SELECT ai_summary FROM tickets_ticket").fetchone()
        assert status == "succeeded"
        assert "fake Scout agent's answer" in summary


ACTIONS: dict[str, Callable[[Walk], Callable[[], None]]] = {
    "pip install django-scout": lambda w: w.install_package,
    "django-admin startproject mysite": lambda w: w.startproject,
    "cd mysite": lambda w: w.enter_project,
    "python manage.py startapp tickets": lambda w: w.manage("startapp", "tickets"),
    "python manage.py makemigrations tickets": lambda w: w.manage("makemigrations", "tickets"),
    "python manage.py migrate": lambda w: w.manage("migrate"),
    "python manage.py scout_fake_server": lambda w: w.fake_server,
    "python manage.py runserver": lambda w: w.runserver,
    "python manage.py shell": lambda w: lambda: None,  # its input is the next block
    "pip install pytest pytest-django": lambda w: w.install_pytest,
    "pytest": lambda w: w.pytest,
}


def commands(block: Block) -> Iterator[str]:
    for line in block.code.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_quickstart_by_copy_paste(wheel: Path, tmp_path: Path) -> None:
    walk = Walk(CleanVenv(tmp_path / "venv"), wheel, tmp_path)
    done: list[str] = []
    try:
        for block in page_blocks(PAGE.read_text()):
            if block.title:
                walk.apply(block)
                done.append(block.title)
            elif block.lang == "bash":
                for command in commands(block):
                    assert command in ACTIONS, f"the test does not know how to run {command!r}"
                    ACTIONS[command](walk)()
                    done.append(command)
    finally:
        walk.stop()
    assert done[-1] == "pytest", done
    assert "python manage.py shell" in done
