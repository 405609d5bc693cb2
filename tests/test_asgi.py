"""The async API under a real ASGI server: uvicorn serves the test project (``tests.asgi``).

An async view (``tests.testapp.views``) awaits ``astart_interaction`` and answers. Tasks run
eagerly in the server, so the start task it enqueued on commit asks the fake Scout to start the
interaction; the test then reads the row the server wrote. The database is a migrated SQLite
file, or this test's own PostgreSQL database when the services are available.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.db import connection

from django_scout.testing import FakeScout
from tests.helpers import (
    migrated_sqlite_env,
    postgresql_url,
    running_server,
    server_process_env,
    uvicorn,
)

pytestmark = pytest.mark.django_db(transaction=True)

#: Reads rows with a SQL statement from the server's database.
Query = Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeScout]:
    """One fake Scout for the module's servers, its records cleared before each test."""
    scout = FakeScout().start()
    try:
        yield scout
    finally:
        scout.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake: FakeScout
) -> tuple[dict[str, str], Query]:
    """The server's environment, pointed at ``fake``, and a way to read its rows."""
    overrides = fake.scout_settings(
        CALLBACK_BASE_URL="http://127.0.0.1:9", FETCH_EVENTS=False, MAX_RETRIES=0
    )
    if request.param == "postgresql":
        request.getfixturevalue("services")
        request.getfixturevalue("django_db_setup")
        if connection.vendor != "postgresql":
            pytest.skip("this run's database is not PostgreSQL")

        def query_postgresql(sql: str) -> list[tuple[Any, ...]]:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())

        return server_process_env(postgresql_url(), overrides), query_postgresql
    path = tmp_path_factory.mktemp("asgi") / "db.sqlite3"

    def query_sqlite(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as db:
            return db.execute(sql).fetchall()

    return migrated_sqlite_env(path, overrides), query_sqlite


@pytest.fixture(scope="module")
def server(
    database: tuple[dict[str, str], Query], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of uvicorn serving the test project; killed afterwards."""
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    with running_server(uvicorn, database[0], log_path) as base_url:
        yield base_url


@pytest.fixture
def fake_scout(fake: FakeScout) -> FakeScout:
    """The module's fake Scout with no agents and no records from earlier tests."""
    fake.reset()
    return fake


def start(server: str, agent: str, message: str) -> httpx.Response:
    """GET the async view that awaits ``astart_interaction``."""
    return httpx.get(
        f"{server}/testapp/start-interaction/",
        params={"agent": agent, "message": message},
        timeout=30,
        trust_env=False,
    )


def test_async_view_starts_an_interaction(
    server: str, database: tuple[dict[str, str], Query], fake_scout: FakeScout
) -> None:
    fake_scout.agent("agent-asgi", auto_callback=False)
    response = start(server, "agent-asgi", "from an async view")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "pending"  # the row as saved; the task ran after the commit
    _, query = database
    rows = query(
        "SELECT id, agent_id, status, session_id FROM django_scout_interaction"
        " WHERE agent_id = 'agent-asgi'"
    )
    assert [(uuid.UUID(str(pk)), agent, status) for pk, agent, status, _ in rows] == [
        (uuid.UUID(answer["id"]), "agent-asgi", "accepted")
    ]
    (started,) = fake_scout.interactions
    assert started.agent_id == "agent-asgi"
    assert started.messages == [{"content": "from an async view"}]
    assert started.callback_url == f"http://127.0.0.1:9/scout/callbacks/{answer['id']}/"
    assert rows[0][3] is not None  # the session Scout accepted it with


def test_async_view_refuses_invalid_input_and_saves_nothing(
    server: str, database: tuple[dict[str, str], Query], fake_scout: FakeScout
) -> None:
    response = start(server, "agent-refused", "")
    assert response.status_code == 400
    assert "message" in response.json()["error"]
    _, query = database
    assert query("SELECT id FROM django_scout_interaction WHERE agent_id = 'agent-refused'") == []
    assert fake_scout.interactions == []
