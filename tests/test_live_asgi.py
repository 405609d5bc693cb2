"""The live relay under a real ASGI server (uvicorn serving ``tests.asgi``), on each channel:

* ``sqlite``: a migrated SQLite file; nothing is announced, the relay polls;
* ``postgresql``: this test's PostgreSQL database; ``NOTIFY`` / one ``LISTEN`` connection;
* ``redis``: a SQLite file, changes announced on Redis pub/sub (``LIVE_REDIS_URL``).

The last two need the services (PostgreSQL + Redis). Changes are made through the services, in
this process on PostgreSQL, else in a process of their own on the server's database.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from django.db import connection

from django_scout.live import CONNECT_CONCURRENCY
from tests.helpers import (
    ROOT,
    migrated_sqlite_env,
    postgresql_url,
    run_python,
    running_server_process,
    server_process_env,
    uvicorn,
)
from tests.testapp import live as changes

pytestmark = pytest.mark.django_db(transaction=True)

#: How long a test waits for a message it expects (a loaded machine is slow, never this slow).
WAIT = 20.0

SERVER_SCOUT = {
    "LIVE_PERMISSION": "tests.testapp.live.viewer_header",
    "LIVE_POLL_INTERVAL": 0.1,
    "LIVE_HEARTBEAT": 2.0,
}

#: Runs ``tests.testapp.live.<function>(*args)`` where the server's database is; returns its
#: printed result.
Change = Callable[..., str]


class Server:
    """A running uvicorn serving the test project, and how to change its rows."""

    def __init__(self, base_url: str, pid: int, change: Change, kind: str) -> None:
        self.base_url = base_url
        self.pid = pid
        self.change = change
        self.kind = kind

    def threads(self) -> int:
        """The server process's threads now."""
        return len(os.listdir(f"/proc/{self.pid}/task"))


def in_process(env: dict[str, str]) -> Change:
    def change(function: str, *args: str) -> str:
        return str(getattr(changes, function)(*args))

    return change


def in_subprocess(env: dict[str, str]) -> Change:
    def change(function: str, *args: str) -> str:
        command = ["-m", "tests.testapp.live", function, *args]
        return run_python(sys.executable, command, cwd=ROOT, env=env, timeout=120).strip()

    return change


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    kind = request.param
    overrides: dict[str, object] = dict(SERVER_SCOUT)
    if kind == "sqlite":
        env = migrated_sqlite_env(tmp_path_factory.mktemp("live") / "db.sqlite3", overrides)
        change = in_subprocess(env)
    elif kind == "redis":
        services = request.getfixturevalue("services")
        if not services["broker_url"].startswith("redis://"):
            pytest.skip("the broker is not Redis")
        overrides["LIVE_REDIS_URL"] = services["broker_url"]
        env = migrated_sqlite_env(tmp_path_factory.mktemp("live") / "db.sqlite3", overrides)
        change = in_subprocess(env)
    else:
        request.getfixturevalue("services")
        request.getfixturevalue("django_db_setup")
        if connection.vendor != "postgresql":
            pytest.skip("this run's database is not PostgreSQL")
        env = server_process_env(postgresql_url(), overrides)
        change = in_process(env)
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    with running_server_process(uvicorn, env, log_path) as (base_url, process):
        yield Server(base_url, process.pid, change, kind)


class Viewer(threading.Thread):
    """One ``EventSource``-like client reading a live URL on a thread of its own."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = headers
        self.messages: queue.Queue[dict[str, str]] = queue.Queue()
        self.status_code: int | None = None
        self.closed = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream(
                "GET", self.url, headers=self.headers, timeout=WAIT * 3, trust_env=False
            ) as response:
                self.status_code = response.status_code
                message: dict[str, str] = {}
                for line in response.iter_lines():
                    if line == "":
                        if message:
                            self.messages.put(message)
                        message = {}
                        continue
                    field, _, value = line.partition(":")
                    message[field or "comment"] = value.removeprefix(" ")
        finally:
            self.closed.set()

    def next_event(self) -> dict[str, str]:
        """The next message that is an event (not ``retry:`` or a comment)."""
        deadline = time.monotonic() + WAIT
        while True:
            message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            if "event" in message:
                return message


def watch(server: Server, interaction_id: str, **headers: str) -> Viewer:
    viewer = Viewer(
        f"{server.base_url}/scout/live/interactions/{interaction_id}/",
        {"X-Viewer": "allowed", **headers},
    )
    viewer.start()
    return viewer


def test_an_event_stored_after_connecting_arrives_then_the_end(server: Server) -> None:
    interaction_id = server.change("create_interaction")
    viewer = watch(server, interaction_id)
    first = viewer.next_event()
    assert (first["event"], '"status":"accepted"' in first["data"]) == ("status", True)

    server.change("add_event", interaction_id, "0", "after-connect")
    event = viewer.next_event()
    assert (event["event"], event["id"]) == ("scout_event", "0")
    assert '"name":"after-connect"' in event["data"]

    server.change("complete", interaction_id)
    assert viewer.next_event()["event"] == "status"
    assert viewer.next_event()["event"] == "end"
    assert viewer.closed.wait(WAIT)
    assert viewer.status_code == 200


def test_a_reconnect_resumes_after_last_event_id(server: Server) -> None:
    interaction_id = server.change("create_interaction")
    for sequence in range(3):
        server.change("add_event", interaction_id, str(sequence), f"e{sequence}")
    viewer = watch(server, interaction_id, **{"Last-Event-ID": "1"})
    event = viewer.next_event()
    assert (event["event"], event["id"]) == ("scout_event", "2")
    assert viewer.next_event()["event"] == "status"
    server.change("complete", interaction_id)
    assert [viewer.next_event()["event"] for _ in range(2)] == ["status", "end"]


def test_a_viewer_the_hook_refuses_gets_403(server: Server) -> None:
    interaction_id = server.change("create_interaction")
    response = httpx.get(
        f"{server.base_url}/scout/live/interactions/{interaction_id}/",
        timeout=WAIT,
        trust_env=False,
    )
    assert response.status_code == 403


def open_connections() -> int:
    """Connections to this test's PostgreSQL database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    return int(count)


def settled(measure: Callable[[], int], at_most: int) -> int:
    """``measure()`` once it is at most ``at_most`` (or its last value after a while): a
    read that just ran may still hold its connection or thread for a moment."""
    deadline = time.monotonic() + 5
    value = measure()
    while value > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
        value = measure()
    return value


def test_waiting_clients_hold_no_thread_and_no_connection(server: Server) -> None:
    interaction_id = server.change("create_interaction")
    first = watch(server, interaction_id)
    assert first.next_event()["event"] == "status"
    threads_with_one = server.threads()

    viewers = [watch(server, interaction_id) for _ in range(20)]
    for viewer in viewers:
        assert viewer.next_event()["event"] == "status"

    # Reads run on the event loop's default pool (at most cpu + 4 threads, which a burst of
    # connects may start); nothing else may grow with the clients.
    pool = min(32, (os.cpu_count() or 1) + 4)
    assert settled(server.threads, threads_with_one + pool) <= threads_with_one + pool
    if server.kind == "postgresql":
        # The one LISTEN connection; every read closed its connection.
        assert settled(open_connections, 1) == 1

    server.change("add_event", interaction_id, "0", "to-everyone")
    for viewer in [first, *viewers]:
        assert viewer.next_event()["id"] == "0"
    server.change("complete", interaction_id)
    for viewer in [first, *viewers]:
        assert [viewer.next_event()["event"] for _ in range(2)] == ["status", "end"]
        assert viewer.closed.wait(WAIT)
    if server.kind == "postgresql":
        # The listener leaves with the last client.
        assert settled(open_connections, 0) == 0


def test_a_burst_of_viewers_opens_a_bounded_number_of_connections(server: Server) -> None:
    if server.kind != "postgresql":
        pytest.skip("counts PostgreSQL connections")
    interaction_id = server.change("create_interaction")
    before = open_connections()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(postgresql_url(), autocommit=True) as sampler:
            while not done.is_set():
                (count,) = sampler.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone() or (0,)
                peak[0] = max(peak[0], int(count))
                time.sleep(0.02)

    sampling = threading.Thread(target=sample, daemon=True)
    sampling.start()
    # Each connect's hook takes 0.2 s on the request's thread, which holds a connection: 40
    # at once would hold 40 connections without the gate.
    viewers = [watch(server, interaction_id, **{"X-Viewer-Delay": "0.2"}) for _ in range(40)]
    for viewer in viewers:
        assert viewer.next_event()["event"] == "status"
    done.set()
    sampling.join()
    server.change("complete", interaction_id)
    for viewer in viewers:
        assert viewer.closed.wait(WAIT)
    pool = min(32, (os.cpu_count() or 1) + 4)
    # The connects the gate lets through, the reads' pool and the one listener.
    assert peak[0] - before <= CONNECT_CONCURRENCY + pool + 1


def test_the_listener_is_shared_by_the_process(server: Server) -> None:
    if server.kind == "sqlite":
        pytest.skip("polling: there is no listener")
    a, b = server.change("create_interaction"), server.change("create_interaction")
    viewers = {key: watch(server, key) for key in (a, b)}
    for viewer in viewers.values():
        assert viewer.next_event()["event"] == "status"
    server.change("add_event", b, "0", "only-b")
    assert viewers[b].next_event()["id"] == "0"
    server.change("complete", a)
    events_of_a = [viewers[a].next_event() for _ in range(2)]
    assert [message["event"] for message in events_of_a] == ["status", "end"]  # nothing of b's
    server.change("complete", b)
    assert [viewers[b].next_event()["event"] for _ in range(2)] == ["status", "end"]
