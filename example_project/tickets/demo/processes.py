"""Start and stop the demo's moving parts: the web server thread and the Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

EXAMPLE_DIR = Path(__file__).resolve().parents[2]


class QuietHandler(WSGIRequestHandler):
    """Django's request handler without the per-request log lines."""

    def log_message(self, format: str, *args: object) -> None:
        """Drop access-log lines; the demo prints its own progress."""


class WebServer:
    """This site, served by Django's threaded WSGI server on a loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = ThreadedWSGIServer((host, port), QuietHandler, allow_reuse_address=True)
        self.server.set_app(get_wsgi_application())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8123``."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WebServer:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Worker:
    """A real ``celery -A example_project worker`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 4) -> None:
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Worker:
        """Launch the worker; its output goes to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "example_project",
                "worker",
                "--pool=threads",
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=EXAMPLE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the worker logs that it is ready (or fail with its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.log_tail()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not start in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the worker's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Ask the worker to shut down warm, then make sure it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()


def worker_environment(extra: dict[str, str]) -> dict[str, str]:
    """The current environment plus ``extra``, with this project's settings module."""
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLE_DIR), env.get("PYTHONPATH")]))
    return env
