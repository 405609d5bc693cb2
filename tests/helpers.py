"""Small builders shared by the unit tests (and the callback benchmarks in ``bench/``)."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from django.db import OperationalError, connection
from django.test import Client
from django.test.client import Client as DjangoClient
from django.urls import reverse

from django_scout.testing.callbacks import callback_payload as testing_callback_payload

#: The ``committed`` fixture (``tests/conftest.py``): ``with committed(): ...`` runs the
#: ``on_commit`` callbacks the block registered when it ends.
Committed = Callable[[], AbstractContextManager[list[Callable[[], Any]]]]

SECRET = "test-signing-secret"
#: Headers of a request for a Server-Sent Events answer, as the Scout clients send them.
SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
ROOT = Path(__file__).resolve().parent.parent

#: ``settings.SCOUT`` for unit tests of the services: no waiting between retries.
UNIT_SCOUT: dict[str, Any] = {
    "API_KEY": "test-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": SECRET,
    "CALLBACK_BASE_URL": "https://app.example.test",
    "TASK_RETRY_BACKOFF": 0.0,
    "MAX_RETRIES": 0,
    "TASK_MAX_RETRIES": 3,
}


def nox_matrix() -> dict[str, tuple[str, ...]]:
    """noxfile.py's ``DJANGO_PYTHONS`` (Django version -> its Python versions), read without nox."""
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DJANGO_PYTHONS":
            matrix: dict[str, tuple[str, ...]] = ast.literal_eval(node.value)
            return matrix
    raise AssertionError("noxfile.py has no DJANGO_PYTHONS")


def run_python(
    python: str | Path, args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 60
) -> str:
    """Run ``python *args``; return what it printed, or fail the test with its stderr."""
    result = subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def seed_signature(raw_body: bytes, timestamp: int, secret: str = SECRET) -> str:
    """``X-Scout-Signature`` computed with the recipe of Scout's async-interactions guide
    (independent of ``django_scout.signing``)."""
    signed = f"{timestamp}.".encode() + raw_body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"t={timestamp},sig={base64.b64encode(digest).decode()}"


def callback_payload(session_id: str = "sess_abc123", **overrides: Any) -> dict[str, Any]:
    """A succeeded callback body (the fake Scout's builder) with fixed times and URLs;
    ``overrides`` replace or add fields as given, valid or not."""
    payload = testing_callback_payload(
        session_id,
        f"https://api.scoutos.test/v1/agent-sessions/{session_id}/events",
        completed_at="2026-03-05T14:30:00Z",
    )
    payload.update(overrides)
    return payload


def post_callback(
    client: DjangoClient | Client,
    payload: dict[str, Any] | bytes,
    *,
    interaction_id: uuid.UUID | str | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Any:
    """POST a signed callback the way Scout does; returns the test client's response."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "X-Scout-Signature-Alg": "HMAC-SHA256",
        "X-Scout-Signature": signature
        if signature is not None
        else seed_signature(raw, ts, secret),
    }
    headers.update(extra_headers or {})
    if interaction_id is None:
        url = reverse("django_scout:callback")
    else:
        url = reverse(
            "django_scout:interaction-callback", kwargs={"interaction_id": interaction_id}
        )
    return client.post(url, data=raw, content_type="application/json", headers=headers)


@contextmanager
def running_server(
    command: Callable[[int], list[str]], env: dict[str, str], log_path: Path
) -> Iterator[str]:
    """A real WSGI/ASGI server; yields its base URL once it answers, then kills it.

    ``command(fd)`` is its command line after ``python``, serving the listening socket ``fd``
    that this process opened (no port race). It runs from the repository root in its own
    process group, so that killing it also kills its workers; its output goes to ``log_path``.
    """
    with running_server_process(command, env, log_path) as (base_url, _):
        yield base_url


@contextmanager
def running_server_process(
    command: Callable[[int], list[str]], env: dict[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`running_server`, yielding its process too (its pid, to count its threads)."""
    listener = socket.create_server(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *command(listener.fileno())],
            cwd=ROOT,
            env=env,
            pass_fds=[listener.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    listener.close()
    try:
        # Generous: a worker's first request imports Django, slowly on a loaded machine.
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the server did not start:\n{log_text}")
            try:
                httpx.get(f"{base_url}/scout/callbacks/", timeout=10, trust_env=False)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            break
        yield base_url, process
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def server_process_env(database_url: str, overrides: dict[str, object]) -> dict[str, str]:
    """Environment for a server process serving ``tests.settings`` on ``database_url``.

    Tasks run eagerly in that process (``SCOUT_TEST_EAGER``); ``overrides`` update its
    ``settings.SCOUT``.
    """
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "memory://",
        "SCOUT_TEST_EAGER": "1",
        "SCOUT_TEST_OVERRIDES": json.dumps(overrides),
        "PYTHONPATH": str(ROOT),
    }


def migrated_sqlite_env(database: Path, overrides: dict[str, object]) -> dict[str, str]:
    """:func:`server_process_env` on the SQLite file ``database``, migrated here."""
    env = server_process_env(f"sqlite:///{database}", overrides)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return env


class DatabaseLock:
    """A database that refuses writes, as a locked SQLite file does, once :meth:`lock` is called.

    Installed on the default connection by the ``database_lock`` fixture: every ``INSERT``,
    ``UPDATE`` and ``DELETE`` then raises ``OperationalError("database is locked")``, until the
    next attempt of a Celery task starts (a retry), or after ``refusals`` refused writes when
    given. Code that writes around the connection's cursor (PostgreSQL's ``COPY``) calls
    :meth:`refuse` itself.
    """

    def __init__(self) -> None:
        self.locked = False
        self.left: int | None = None
        self.refused = 0

    def lock(self, refusals: int | None = None) -> None:
        """Refuse writes from now on: until the next task attempt, or ``refusals`` of them."""
        self.locked, self.left = True, refusals

    def refuse(self) -> None:
        """Raise ``OperationalError`` while locked (one refused write)."""
        if not self.locked:
            return
        self.refused += 1
        if self.left is not None:
            self.left -= 1
            self.locked = self.left > 0
        raise OperationalError("database is locked")

    def next_attempt(self, **_: Any) -> None:
        """A task attempt starts (Celery's ``task_prerun``): a lock held until then lifts."""
        if self.left is None:
            self.locked = False

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        """The connection's execute wrapper."""
        if sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.refuse()
        return execute(sql, *args)


def locking_before(
    lock: DatabaseLock, write: Callable[..., Any], when: Callable[..., bool]
) -> Callable[..., Any]:
    """``write``, locking ``lock`` (until the task's next attempt) before a call whose
    arguments satisfy ``when``."""

    def locked(*args: Any, **kwargs: Any) -> Any:
        if when(*args):
            lock.lock()
        return write(*args, **kwargs)

    return locked


def uvicorn(fd: int) -> list[str]:
    """uvicorn serving the test project's ASGI application on the socket ``fd``."""
    return ["-m", "uvicorn", "--fd", str(fd), "--log-level", "warning", "tests.asgi:application"]


def postgresql_url() -> str:
    """A URL of the database this test runs on (pytest-django's ``test_…`` database)."""
    conf = connection.settings_dict
    password = f":{conf['PASSWORD']}" if conf["PASSWORD"] else ""
    return f"postgres://{conf['USER']}{password}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"
