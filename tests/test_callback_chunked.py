"""Callbacks sent with ``Transfer-Encoding: chunked``: no ``Content-Length``, a de-chunked input.

The WSGI environ is what gunicorn builds for such a request: no ``CONTENT_LENGTH``, a
``wsgi.input`` that yields the body and then EOF, and ``wsgi.input_terminated`` set.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from django_scout.models import CallbackDelivery, Interaction, Session
from tests.helpers import SECRET, Committed, callback_payload, seed_signature

# Rolled back after each test; what a committed delivery sets off runs under ``committed()``.
pytestmark = pytest.mark.django_db


def scout_settings(limit: int = 1_048_576) -> dict[str, Any]:
    """The test ``SCOUT`` settings without event fetching, with ``limit`` as the body limit."""
    return {
        "SIGNING_SECRET": SECRET,
        "CALLBACK_BASE_URL": "https://app.example.test",
        "FETCH_EVENTS": False,
        "MAX_CALLBACK_BODY_BYTES": limit,
    }


class DechunkedInput:
    """A ``wsgi.input`` like gunicorn's for a chunked body: ``body``, then EOF (or never EOF).

    ``endless`` makes it an attacker's stream that never ends; ``bytes_read`` counts what the
    application took from it.
    """

    def __init__(self, body: bytes = b"", *, endless: bool = False) -> None:
        self.body = body
        self.endless = endless
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; an unbounded read of an endless stream fails the test."""
        if self.endless:
            assert size >= 0, "an endless body was read without a bound"
            data = b" " * size
        else:
            end = len(self.body) if size < 0 else self.bytes_read + size
            data = self.body[self.bytes_read : end]
        self.bytes_read += len(data)
        return data

    def readline(self, size: int = -1, /) -> bytes:
        """Not used by the callback view (Django's ``LimitedStream`` needs the attribute)."""
        raise AssertionError("readline() on a callback body")


def post_chunked(
    stream: Any, body: bytes, url: str = "/scout/callbacks/", *, terminated: bool = True
) -> Any:
    """POST ``stream`` as a chunked body signed over ``body``; gunicorn sets ``terminated``."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "X-Scout-Signature-Alg": "HMAC-SHA256",
        "X-Scout-Signature": seed_signature(body, timestamp),
    }
    wsgi = {"wsgi.input": stream, "wsgi.input_terminated": terminated}
    return Client().generic("POST", url, b"", headers=headers, **wsgi)


@pytest.mark.parametrize(("slack", "expected"), [(0, 200), (-1, 413)])
def test_chunked_callback_is_stored_up_to_the_limit_and_413_one_byte_over(
    slack: int, expected: int, committed: Committed
) -> None:
    session = Session.objects.create(session_id="sess_chunked", agent_id="agent-1")
    interaction = Interaction.objects.create(
        agent_id="agent-1", messages=[], status="accepted", session=session
    )
    body = json.dumps(callback_payload("sess_chunked")).encode()
    with override_settings(SCOUT=scout_settings(limit=len(body) + slack)), committed():
        response = post_chunked(
            DechunkedInput(body), body, url=f"/scout/callbacks/{interaction.pk}/"
        )
    assert response.status_code == expected, response.content
    if expected == 413:
        assert not CallbackDelivery.objects.exists()
        return
    assert CallbackDelivery.objects.get().raw_body == body.decode()
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"


def test_endless_chunked_body_is_413_after_at_most_limit_plus_one_bytes() -> None:
    stream = DechunkedInput(endless=True)
    with override_settings(SCOUT=scout_settings(limit=10_000)):
        response = post_chunked(stream, b"")
    assert response.status_code == 413
    assert response.json() == {"detail": "callback body exceeds 10000 bytes"}
    assert 10_000 < stream.bytes_read <= 10_001


def test_unterminated_input_without_length_is_not_read() -> None:
    """A server without ``wsgi.input_terminated`` (e.g. runserver) may block on a read to EOF."""
    stream = DechunkedInput(endless=True)
    body = json.dumps(callback_payload()).encode()
    with override_settings(SCOUT=scout_settings()):
        response = post_chunked(stream, body, terminated=False)
    assert response.status_code == 401
    assert stream.bytes_read == 0
