"""Shared fixtures: service availability (PostgreSQL, Redis) for the integration tests, the
loopback-only network guard, ``signal_log``, ``mock_scout`` and ``committed``.

Without services the integration tests skip with a message saying what to set. With
``SCOUT_REQUIRE_SERVICES=1`` (CI) a missing or unreachable service fails the run instead.

Fixtures only: what test modules import (builders, constants, types) lives in
``tests/helpers.py``, never here.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_django import DjangoCaptureOnCommitCallbacks

from tests import celery_app  # noqa: F401  (sets the default Celery app for shared tasks)
from tests.helpers import Committed, DatabaseLock

REQUIRE_SERVICES = os.environ.get("SCOUT_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 3
        ).close()
    except OSError:
        return False
    return True


def service_problem() -> str | None:
    """Return why the PostgreSQL + Redis services are unusable, or None when both are up."""
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return "DATABASE_URL is not a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test)"
    if not broker_url.startswith(("redis://", "amqp://")):
        return "CELERY_BROKER_URL is not a Redis/RabbitMQ URL (e.g. redis://127.0.0.1:6379/0)"
    if not _reachable(database_url, 5432):
        return f"PostgreSQL at {urlsplit(database_url).netloc} is unreachable"
    default_broker_port = 6379 if broker_url.startswith("redis") else 5672
    if not _reachable(broker_url, default_broker_port):
        return f"the broker at {urlsplit(broker_url).netloc} is unreachable"
    return None


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Resolve only loopback names: no test may send traffic off this machine."""
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name not in _LOOPBACK_NAMES and not name.startswith("127."):
        raise socket.gaierror(f"the test suite only talks to loopback; refused to resolve {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    """Guard the network; fail fast in CI when the mandatory services are missing."""
    socket.getaddrinfo = _loopback_only_getaddrinfo
    if REQUIRE_SERVICES:
        problem = service_problem()
        if problem:
            raise pytest.UsageError(f"SCOUT_REQUIRE_SERVICES=1 but {problem}")


@pytest.fixture(autouse=True)
def _celery_join_guard_off() -> None:
    """Celery's "never call result.get() within a task" guard is process-wide state, switched
    on only where a worker is built. Once seen on in the middle of a full SQLite run (where no
    test builds one); each test starts with it off, as in any process that is not a worker."""
    from celery import _state

    _state._set_task_join_will_block(False)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """PostgreSQL + broker URLs; skips (or fails under SCOUT_REQUIRE_SERVICES=1) without them."""
    problem = service_problem()
    if problem:
        message = (
            f"integration test needs PostgreSQL + Redis: {problem}. "
            "Set DATABASE_URL and CELERY_BROKER_URL to run it."
        )
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return {
        "database_url": os.environ["DATABASE_URL"],
        "broker_url": os.environ["CELERY_BROKER_URL"],
    }


@pytest.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    """Close the connection an async test opened in asgiref's thread for sync work.

    A request's ``request_finished`` closes it in a server; here nothing would, and on
    PostgreSQL it would keep the test database from being dropped.
    """
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def signal_log() -> Any:
    """Record every django-scout signal as ``(signal name, object id)``, in order."""
    from django_scout import signals

    log: list[tuple[str, str]] = []
    receivers = []
    for name in signals.__all__:
        signal = getattr(signals, name)

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            obj = kwargs.get("interaction") or kwargs.get("delivery") or kwargs.get("run")
            log.append((_name, str(getattr(obj, "pk", None))))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


@pytest.fixture
def mock_scout() -> Any:
    """A scripted in-process Scout API (``tests.mock_scout.MockScout``) used by the services."""
    from django_scout.services import common
    from tests.mock_scout import MockScout

    mock = MockScout()
    previous = mock.install()
    yield mock
    common.client_factory = previous


@pytest.fixture
def committed(django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> Committed:
    """``with committed(): ...`` runs the ``on_commit`` callbacks the block registered when it
    ends, as the commit of a request or a task would, in order (and those they register).

    For tests in a transaction that is rolled back (``django_db`` without ``transaction=True``):
    wrap each call that would commit in production (a view, a service call, a task). Tests that
    need several connections, threads that use the database, a live server or a real worker
    stay transactional.
    """
    return functools.partial(django_capture_on_commit_callbacks, execute=True)


@pytest.fixture
def database_lock(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatabaseLock]:
    """A :class:`~tests.helpers.DatabaseLock` on the default connection, not yet locked; the
    in-place waits for a lock (``waiting_out_locks``) do not pause."""
    from celery.signals import task_prerun
    from django.db import connection

    from django_scout.services import common

    monkeypatch.setattr(common, "STREAM_WRITE_PAUSE", 0.0)
    lock = DatabaseLock()
    task_prerun.connect(lock.next_attempt, weak=False)
    try:
        with connection.execute_wrapper(lock):
            yield lock
    finally:
        task_prerun.disconnect(lock.next_attempt)
