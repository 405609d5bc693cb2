"""Integration harness: PostgreSQL + Redis + a real Celery worker + the fake Scout over HTTP.

Session-scoped: one fake Scout server, Django's live server (the callback endpoint) and one
``celery worker`` subprocess on its own Redis queue, pointed at pytest-django's test database.
Each test starts clean: the fake is reset and the tables are flushed (transactional tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from django_scout.services.batching import batch_publisher
from django_scout.services.publishing import publisher
from django_scout.testing import FakeScout
from tests import celery_app
from tests.integration.helpers import WORKER_SCOUT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def scout_server(services: dict[str, str]) -> Iterator[FakeScout]:
    """The fake Scout for the whole integration session."""
    with FakeScout(callback_backoff=0.1, callback_max_backoff=1.0) as fake:
        yield fake


@pytest.fixture(scope="session")
def integration_scout_settings(scout_server: FakeScout, live_server: Any) -> dict[str, Any]:
    """``settings.SCOUT`` shared by the test process and the worker."""
    return scout_server.scout_settings(CALLBACK_BASE_URL=live_server.url, **WORKER_SCOUT)


@pytest.fixture(scope="session")
def celery_worker_process(
    services: dict[str, str],
    django_db_setup: Any,
    django_db_blocker: Any,
    integration_scout_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` on Redis, using the test database."""
    with django_db_blocker.unblock():
        test_db_name = connection.settings_dict["NAME"]
    queue = f"django-scout-it-{uuid.uuid4().hex[:8]}"
    database_url = services["database_url"].rsplit("/", 1)[0] + f"/{test_db_name}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": services["broker_url"],
        "SCOUT_TEST_EAGER": "0",
        "SCOUT_TEST_QUEUE": queue,
        "SCOUT_TEST_OVERRIDES": json.dumps(integration_scout_settings),
        "PYTHONPATH": str(ROOT),
    }
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    previous_queue = celery_app.app.conf.task_default_queue
    celery_app.app.conf.task_default_queue = queue
    process.log_path = log_path  # type: ignore[attr-defined]
    yield process
    celery_app.app.conf.task_default_queue = previous_queue
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def stack(
    celery_worker_process: subprocess.Popen[bytes],
    scout_server: FakeScout,
    integration_scout_settings: dict[str, Any],
    transactional_db: Any,
) -> Iterator[FakeScout]:
    """Everything running; this process publishes to Redis instead of running tasks eagerly."""
    scout_server.reset()
    publisher.reset()
    eager = celery_app.app.conf.task_always_eager
    celery_app.app.conf.task_always_eager = False
    try:
        with override_settings(SCOUT=integration_scout_settings):
            yield scout_server
    finally:
        batch_publisher.flush()  # nothing of this test's is published during the next one
        celery_app.app.conf.task_always_eager = eager
        publisher.reset()
        scout_server.wait_until_idle(5)
        _drain(celery_worker_process)


def _drain(worker: subprocess.Popen[bytes], quiet_for: float = 0.5, limit: float = 15) -> None:
    """Wait until the worker's log stops growing, so the next test's flush does not race it."""
    log_path: Path = worker.log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + limit
    size = -1
    while time.monotonic() < deadline:
        current = log_path.stat().st_size
        if current == size:
            return
        size = current
        time.sleep(quiet_for)
