"""Chunked callbacks through real servers: gunicorn (WSGI, sync worker) and uvicorn (ASGI).

Each server serves ``tests.settings`` from its own process on a listening socket this test
opened (no port race), with a migrated SQLite file as the database; the test reads the stored
delivery from that file.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from django_scout.testing.callbacks import callback_payload, encode_callback, sign_callback
from tests.helpers import SECRET, migrated_sqlite_env, running_server

LIMIT = 4096

SERVERS: dict[str, Callable[[int], list[str]]] = {
    "gunicorn": lambda fd: [
        *("-m", "gunicorn", "--bind", f"fd://{fd}", "--workers", "1", "--worker-class", "sync"),
        "django.core.wsgi:get_wsgi_application()",
    ],
    "uvicorn": lambda fd: [
        *("-m", "uvicorn", "--fd", str(fd), "--log-level", "warning", "--factory"),
        "django.core.asgi:get_asgi_application",
    ],
}


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The servers' environment, with a freshly migrated SQLite file as their database."""
    database = tmp_path_factory.mktemp("chunked") / "db.sqlite3"
    return migrated_sqlite_env(database, {"FETCH_EVENTS": False, "MAX_CALLBACK_BODY_BYTES": LIMIT})


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest,
    server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The base URL of a running gunicorn or uvicorn; the server is killed afterwards."""
    log_path = tmp_path_factory.mktemp(request.param) / "server.log"
    with running_server(SERVERS[request.param], server_env, log_path) as base_url:
        yield base_url


def post_chunked(base_url: str, body: bytes) -> httpx.Response:
    """POST a signed callback whose body is sent in 1000-byte chunks (no Content-Length)."""
    _, headers = sign_callback(body, SECRET)
    chunks = (body[start : start + 1000] for start in range(0, len(body), 1000))
    response = httpx.post(
        f"{base_url}/scout/callbacks/", content=chunks, headers=headers, trust_env=False
    )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    return response


def stored_raw_bodies(env: dict[str, str]) -> list[str]:
    """``raw_body`` of every delivery in the servers' SQLite database."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT raw_body FROM django_scout_callbackdelivery")]


def test_chunked_callback_is_stored(server: str, server_env: dict[str, str]) -> None:
    payload = callback_payload("sess_chunked", "https://api.scoutos.test/v1/events")
    body = encode_callback(payload) + b" " * 1500
    response = post_chunked(server, body)
    assert response.status_code == 200, response.text
    assert response.json()["callback_event_id"] == payload["callback_event_id"]
    assert body.decode() in stored_raw_bodies(server_env)


def test_oversize_chunked_callback_is_413(server: str, server_env: dict[str, str]) -> None:
    payload = callback_payload("sess_too_big", "https://api.scoutos.test/v1/events")
    body = encode_callback(payload) + b" " * LIMIT
    response = post_chunked(server, body)
    assert response.status_code == 413, response.text
    assert body.decode() not in stored_raw_bodies(server_env)


@pytest.mark.parametrize("server", ["gunicorn"], indirect=True)
def test_endless_chunked_callback_is_413(server: str) -> None:
    """An attacker's body that never ends is cut at the limit; gunicorn does not buffer it.

    (uvicorn is not tested: Django's ASGI handler buffers the whole body before any view runs.)
    """
    chunk = b"%x\r\n%s\r\n" % (LIMIT, b" " * LIMIT)
    stop = threading.Event()
    port = httpx.URL(server).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        _, headers = sign_callback(b"", SECRET)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(
            f"POST /scout/callbacks/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )

        def send_forever() -> None:
            # At most 64 MiB: should the body not be cut, the answer times out instead.
            for _ in range(64 * 1024 * 1024 // LIMIT):
                if stop.is_set():
                    return
                try:
                    sock.sendall(chunk)
                except OSError:
                    return

        sender = threading.Thread(target=send_forever, daemon=True)
        sender.start()
        try:
            status_line = sock.makefile("rb").readline()
        finally:
            stop.set()
        sender.join(10)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
