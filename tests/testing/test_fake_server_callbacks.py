"""Signed completion callbacks of the fake Scout, received by a tiny stdlib HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from django_scout import signing
from django_scout.testing import AgentBehaviour, FakeScout, callback_payload, sign_callback

SECRET = "test-signing-secret"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

pytestmark = pytest.mark.fake_scout(callback_backoff=0.05, callback_timeout=2.0)


# --------------------------------------------------------------------------- the receiver


@dataclass
class Received:
    time: float
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A loopback HTTP server that records POSTs and answers per a plan.

    Each request takes the next action of ``plan`` (an HTTP status, ``"drop"`` to close the
    socket without answering, or ``("sleep", seconds)`` before a 200); then 200s.
    """

    def __init__(self) -> None:
        self.plan: list[Any] = []
        self.received: list[Received] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.received.append(
                        Received(
                            time.time(),
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    action = receiver.plan.pop(0) if receiver.plan else 200
                    receiver.changed.notify_all()
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, tuple):
                    time.sleep(action[1])
                    action = 200
                self.send_response(action)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/scout/callback/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= count, timeout), (
                f"expected {count} callbacks, got {len(self.received)}"
            )
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def api(fake_scout: FakeScout) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_scout.base_url,
        headers={"Authorization": "Bearer test-api-key"},
        trust_env=False,
        timeout=10,
    ) as client:
        yield client


def start(api: httpx.Client, callback_url: str, agent_id: str = "agent-1") -> dict[str, str]:
    response = api.post(
        f"/world/{agent_id}/_interact_async",
        json={"messages": [{"content": "go"}], "callback_url": callback_url},
    )
    assert response.status_code == 202, response.text
    body: dict[str, str] = response.json()
    return body


def verify_signature(body: bytes, header: str, secret: str = SECRET) -> int:
    """The seed page's recipe: HMAC-SHA256 over f"{t}.{body}", base64, constant-time compare."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    signed = f"{parts['t']}.{body.decode('utf-8')}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    assert hmac.compare_digest(expected.decode(), parts["sig"]), "bad signature"
    return int(parts["t"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- payloads


def test_succeeded_callback_is_signed_and_shaped_like_scouts(api, fake_scout, receiver):
    started = start(api, receiver.url)
    [got] = receiver.wait_for(1)
    payload = httpx.Response(200, content=got.body).json()
    assert set(payload) == {
        "callback_event_id",
        "session_id",
        "status",
        "completed_at",
        "events_url",
    }
    assert payload["status"] == "succeeded"
    assert payload["session_id"] == started["session_id"]
    assert payload["events_url"] == started["events_url"]
    assert ISO_Z.match(payload["completed_at"])
    uuid.UUID(payload["callback_event_id"])
    assert payload["callback_event_id"] == fake_scout.interactions[0].callback_event_id
    assert got.path == "/scout/callback/"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-scout-signature-alg"] == "HMAC-SHA256"
    timestamp = verify_signature(got.body, got.headers["x-scout-signature"])
    assert abs(timestamp - time.time()) < 10
    signing.verify(got.body, got.headers["x-scout-signature"], SECRET)
    [attempt] = fake_scout.wait_for_callbacks(1)
    assert attempt.ok
    assert attempt.status == 200
    assert attempt.body == got.body
    assert attempt.attempt == 1
    assert attempt.delivery == 0
    assert attempt.payload == payload
    assert attempt.session_id == started["session_id"]
    assert attempt.url == receiver.url


def test_failed_callback_carries_the_error(api, fake_scout, receiver):
    fake_scout.agent(
        "broken", outcome="failed", error={"code": "tool_error", "message": "The CRM is down"}
    )
    fake_scout.agent("broken-default", outcome="failed")
    start(api, receiver.url, "broken")
    start(api, receiver.url, "broken-default")
    received = receiver.wait_for(2)
    payloads = sorted(
        (httpx.Response(200, content=r.body).json() for r in received),
        key=lambda p: p["error"]["code"],
    )
    assert payloads[0]["status"] == "failed"
    assert payloads[0]["error"] == {
        "code": "agent_error",
        "message": payloads[0]["error"]["message"],
    }
    assert payloads[1]["error"] == {"code": "tool_error", "message": "The CRM is down"}
    for got in received:
        verify_signature(got.body, got.headers["x-scout-signature"])


def test_succeeded_callbacks_have_no_error_key(api, receiver):
    start(api, receiver.url)
    [got] = receiver.wait_for(1)
    assert "error" not in httpx.Response(200, content=got.body).json()


def test_a_wrong_secret_does_not_verify(api, fake_scout, receiver):
    start(api, receiver.url)
    [got] = receiver.wait_for(1)
    with pytest.raises(AssertionError, match="bad signature"):
        verify_signature(got.body, got.headers["x-scout-signature"], "another-secret")
    with pytest.raises(AssertionError, match="bad signature"):
        verify_signature(got.body + b" ", got.headers["x-scout-signature"])


# --------------------------------------------------------------------------- retries


def test_retries_on_5xx_with_exponential_backoff(api, fake_scout, receiver):
    receiver.plan = [500, 503, 200]
    start(api, receiver.url)
    received = receiver.wait_for(3)
    attempts = fake_scout.wait_for_callbacks(3)
    assert [a.status for a in attempts] == [500, 503, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert (
        len({httpx.Response(200, content=r.body).json()["callback_event_id"] for r in received})
        == 1
    )
    assert len({r.body for r in received}) == 1
    for got in received:
        verify_signature(got.body, got.headers["x-scout-signature"])
    first_gap = received[1].time - received[0].time
    second_gap = received[2].time - received[1].time
    assert first_gap >= 0.045  # backoff 0.05 s
    assert second_gap >= 0.095  # then doubled
    fake_scout.wait_until_idle(5)
    assert len(receiver.received) == 3


def test_retries_after_a_dropped_connection(api, fake_scout, receiver):
    receiver.plan = ["drop", 200]
    start(api, receiver.url)
    receiver.wait_for(2)
    attempts = fake_scout.wait_for_callbacks(2)
    assert attempts[0].status is None
    assert "RemoteProtocolError" in (attempts[0].error or "")
    assert attempts[1].ok


@pytest.mark.fake_scout(callback_timeout=0.2, callback_backoff=0.01)
def test_retries_after_a_timeout(api, fake_scout, receiver):
    receiver.plan = [("sleep", 0.6), 200]
    start(api, receiver.url)
    attempts = fake_scout.wait_for_callbacks(2)
    assert "Timeout" in (attempts[0].error or "")
    assert attempts[1].ok


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_stops_on_4xx(api, fake_scout, receiver, status):
    receiver.plan = [status]
    start(api, receiver.url)
    receiver.wait_for(1)
    assert fake_scout.wait_until_idle(5)
    assert [a.status for a in fake_scout.callbacks] == [status]
    assert len(receiver.received) == 1


@pytest.mark.fake_scout(callback_max_attempts=3, callback_backoff=0.01)
def test_gives_up_after_max_attempts(api, fake_scout):
    start(api, f"http://127.0.0.1:{free_port()}/gone")
    assert fake_scout.wait_until_idle(5)
    attempts = fake_scout.callbacks
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status is None and "ConnectError" in (a.error or "") for a in attempts)


def test_wait_for_callbacks_times_out(fake_scout):
    with pytest.raises(TimeoutError, match="expected 1"):
        fake_scout.wait_for_callbacks(1, timeout=0.05)


# --------------------------------------------------------------------------- duplicates


def test_sequential_duplicates_share_the_callback_event_id(api, fake_scout, receiver):
    fake_scout.agent("agent-1", duplicates=2)
    start(api, receiver.url)
    received = receiver.wait_for(3)
    fake_scout.wait_until_idle(5)
    assert len(receiver.received) == 3
    payloads = [httpx.Response(200, content=r.body).json() for r in received]
    assert len({p["callback_event_id"] for p in payloads}) == 1
    assert payloads[0] == payloads[1] == payloads[2]
    for got in received:
        verify_signature(got.body, got.headers["x-scout-signature"])
    assert sorted(a.delivery for a in fake_scout.callbacks) == [0, 1, 2]


def test_concurrent_duplicates_arrive_together(api, fake_scout, receiver):
    fake_scout.agent("agent-1", duplicates=3, concurrent_duplicates=True)
    receiver.plan = [("sleep", 0.3)] * 4
    start(api, receiver.url)
    received = receiver.wait_for(4)
    arrivals = [r.time for r in received]
    # One after another they would be >= 0.3 s apart; together they all arrive at once.
    assert max(arrivals) - min(arrivals) < 0.25
    assert len({r.body for r in received}) == 1
    fake_scout.wait_until_idle(5)
    assert sorted(a.delivery for a in fake_scout.callbacks) == [0, 1, 2, 3]
    assert all(a.ok for a in fake_scout.callbacks)


def test_duplicates_retry_independently(api, fake_scout, receiver):
    fake_scout.agent("agent-1", duplicates=1)
    receiver.plan = [200, 500, 200]
    start(api, receiver.url)
    receiver.wait_for(3)
    fake_scout.wait_until_idle(5)
    assert [(a.delivery, a.attempt, a.status) for a in fake_scout.callbacks] == [
        (0, 1, 200),
        (1, 1, 500),
        (1, 2, 200),
    ]


# --------------------------------------------------------------------------- timing


def test_callback_before_accept(api, fake_scout, receiver):
    fake_scout.agent("agent-1", callback_before_accept=True)
    receiver.plan = [("sleep", 0.2)]
    sent = time.monotonic()
    started = start(api, receiver.url)
    answered_at = time.time()
    # The receiver already has it: no waiting before looking.
    assert len(receiver.received) == 1
    assert receiver.received[0].time < answered_at
    assert time.monotonic() - sent >= 0.2  # the 202 waited for the receiver's answer
    payload = httpx.Response(200, content=receiver.received[0].body).json()
    assert payload["session_id"] == started["session_id"]
    assert fake_scout.callbacks[0].ok


def test_callback_before_accept_does_not_wait_forever():
    # Times far apart, so that a loaded machine's scheduling noise cannot blur them.
    with FakeScout(before_accept_timeout=1.0, callback_timeout=2.5) as scout:
        scout.agent("agent-1", callback_before_accept=True, auto_callback=True)
        receiver = Receiver()
        try:
            receiver.plan = [("sleep", 2.0)]
            sent = time.monotonic()
            response = httpx.post(
                scout.url("/world/agent-1/_interact_async"),
                json={"messages": [{"content": "go"}], "callback_url": receiver.url},
                headers={"Authorization": "Bearer test-api-key"},
                trust_env=False,
            )
            assert response.status_code == 202
            assert 1.0 <= time.monotonic() - sent < 2.0
        finally:
            receiver.close()


def test_delayed_callbacks_can_arrive_out_of_order(api, fake_scout, receiver):
    fake_scout.agent("slow", callback_delay=1.5)
    fake_scout.agent("fast")
    sent = time.time()
    slow = start(api, receiver.url, "slow")
    fast = start(api, receiver.url, "fast")
    assert time.time() - sent < 1.0  # the 202s don't wait for the delay
    first, second = receiver.wait_for(2)
    assert httpx.Response(200, content=first.body).json()["session_id"] == fast["session_id"]
    assert httpx.Response(200, content=second.body).json()["session_id"] == slow["session_id"]
    assert second.time - sent >= 0.3


# --------------------------------------------------------------------------- on demand


def test_send_callback_on_demand_redelivers(api, fake_scout, receiver):
    fake_scout.agent("agent-1", auto_callback=False)
    started = start(api, receiver.url)
    assert fake_scout.wait_until_idle(1)
    time.sleep(0.05)
    assert receiver.received == []
    delivery = fake_scout.send_callback(started["session_id"])
    assert delivery.done
    assert delivery.delivered
    [got] = receiver.wait_for(1)
    payload = httpx.Response(200, content=got.body).json()
    assert payload["callback_event_id"] == fake_scout.interactions[0].callback_event_id
    assert payload["status"] == "succeeded"
    again = fake_scout.send_callback(started["session_id"])
    assert again.callback_event_id == delivery.callback_event_id
    other = fake_scout.send_callback(
        started["session_id"],
        "failed",
        error={"code": "cancelled", "message": "Stopped"},
        callback_event_id="evt-2",
    )
    assert other.payload["error"] == {"code": "cancelled", "message": "Stopped"}
    received = receiver.wait_for(3)
    assert httpx.Response(200, content=received[2].body).json()["callback_event_id"] == "evt-2"


def test_send_callback_with_a_bad_or_stale_signature(api, fake_scout, receiver):
    fake_scout.agent("agent-1", auto_callback=False)
    session_id = start(api, receiver.url)["session_id"]
    fake_scout.send_callback(session_id, secret="not-the-secret")
    fake_scout.send_callback(session_id, timestamp=1_000_000_000)
    bad, stale = receiver.wait_for(2)
    with pytest.raises(AssertionError, match="bad signature"):
        verify_signature(bad.body, bad.headers["x-scout-signature"])
    assert verify_signature(stale.body, stale.headers["x-scout-signature"]) == 1_000_000_000
    with pytest.raises(signing.SignatureError):
        signing.verify(stale.body, stale.headers["x-scout-signature"], SECRET)


def test_send_callback_to_another_url_and_unknown_sessions(api, fake_scout, receiver):
    fake_scout.agent("agent-1", auto_callback=False)
    session_id = start(api, "http://127.0.0.1:9/nowhere")["session_id"]
    fake_scout.send_callback(session_id, url=receiver.url + "other")
    assert receiver.wait_for(1)[0].path == "/scout/callback/other"
    with pytest.raises(KeyError, match="no session"):
        fake_scout.send_callback("nope")
    sync_session = api.post(
        "/world/agent-1/_interact_sync", json={"messages": [{"content": "x"}]}
    ).json()["session_id"]
    with pytest.raises(ValueError, match="callback_url"):
        fake_scout.send_callback(sync_session)


# --------------------------------------------------------------------------- helpers


def test_sign_callback_helper_verifies_with_the_seed_recipe():
    payload = callback_payload(
        "sess_1", "http://127.0.0.1:1/e", "failed", error={"code": "x", "message": "y"}
    )
    body, headers = sign_callback(payload, SECRET, timestamp=1_709_651_400)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Scout-Signature-Alg"] == "HMAC-SHA256"
    assert headers["X-Scout-Signature"].startswith("t=1709651400,sig=")
    assert verify_signature(body, headers["X-Scout-Signature"]) == 1_709_651_400
    assert httpx.Response(200, content=body).json() == payload
    raw_body, raw_headers = sign_callback(b'{"a": 1}', SECRET)
    assert raw_body == b'{"a": 1}'
    signing.verify(raw_body, raw_headers["X-Scout-Signature"], SECRET)


def test_callback_payload_helper():
    ok = callback_payload("s", "u", callback_event_id="c", completed_at="2026-03-05T14:30:00Z")
    assert ok == {
        "callback_event_id": "c",
        "session_id": "s",
        "status": "succeeded",
        "completed_at": "2026-03-05T14:30:00Z",
        "events_url": "u",
    }
    failed = callback_payload("s", "u", "failed")
    assert set(failed["error"]) == {"code", "message"}
    assert ISO_Z.match(failed["completed_at"])


def test_agent_behaviour_validation():
    with pytest.raises(ValueError, match="events_format"):
        AgentBehaviour(events_format="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="accept_status"):
        AgentBehaviour(accept_status=500)
    with pytest.raises(ValueError, match="duplicates"):
        AgentBehaviour(duplicates=-1)
