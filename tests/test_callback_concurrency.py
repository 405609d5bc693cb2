"""Concurrent duplicates through a real server: gunicorn workers sharing one SQLite file.

The unit suite's in-memory SQLite cannot run statements from several threads at once, so the
"stored once, every delivery counted" guarantee is checked here across processes, as a
deployment on SQLite runs it. (``tests/test_callback_ingest.py`` checks it with threads on
PostgreSQL.)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_scout.testing.callbacks import callback_payload, encode_callback, sign_callback
from tests.helpers import SECRET, migrated_sqlite_env
from tests.helpers import running_server as serving

WORKERS = 3
DUPLICATES = 12


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A gunicorn with several sync workers on a migrated SQLite file (WAL)."""
    directory = tmp_path_factory.mktemp("concurrent")
    database = directory / "db.sqlite3"
    env = migrated_sqlite_env(database, {"FETCH_EVENTS": False})
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
    command = [
        *("-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync"),
        "django.core.wsgi:get_wsgi_application()",
    ]
    with serving(
        lambda fd: [*command, "--bind", f"fd://{fd}"], env, directory / "server.log"
    ) as base_url:
        yield base_url, database


def test_concurrent_duplicates_are_stored_once_and_all_counted(
    sqlite_server: tuple[str, Path],
) -> None:
    base_url, database = sqlite_server
    payload = callback_payload("sess_concurrent", "https://api.scoutos.test/v1/events")
    body = encode_callback(payload)
    barrier = threading.Barrier(DUPLICATES)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        _, headers = sign_callback(body, SECRET)
        barrier.wait(10)
        response = httpx.post(
            f"{base_url}/scout/callbacks/", content=body, headers=headers, trust_env=False
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())

    threads = [threading.Thread(target=deliver) for _ in range(DUPLICATES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == DUPLICATES
    assert sum(1 for answer in answers if not answer["duplicate"]) == 1
    assert sorted(answer["delivery_count"] for answer in answers) == list(range(1, DUPLICATES + 1))
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT delivery_count FROM django_scout_callbackdelivery WHERE callback_event_id = ?",
            (payload["callback_event_id"],),
        ).fetchall()
    assert rows == [(DUPLICATES,)]
