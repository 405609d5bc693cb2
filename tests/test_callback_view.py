"""The callback endpoint: signatures, validation, dedupe, size limits and Django integration."""

from __future__ import annotations

import gc
import json
import time
import uuid
from typing import Any
from unittest import mock

import django
import pytest
from django.db import OperationalError, connection, connections
from django.test import Client, override_settings

from django_scout.client._json_depth import MAX_JSON_DEPTH
from django_scout.models import CallbackDelivery, Interaction, Session
from tests.helpers import SECRET, Committed, callback_payload, post_callback, seed_signature

# Rolled back after each test; what a committed delivery sets off runs under ``committed()``.
pytestmark = pytest.mark.django_db

NO_FETCH = {
    "API_KEY": "test-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": SECRET,
    "CALLBACK_BASE_URL": "https://app.example.test",
    "FETCH_EVENTS": False,
}


@pytest.fixture(autouse=True)
def _no_event_fetch() -> Any:
    with override_settings(SCOUT=NO_FETCH):
        yield


def accepted_interaction(session_id: str = "sess_abc123") -> Interaction:
    session = Session.objects.create(session_id=session_id, agent_id="agent-1")
    return Interaction.objects.create(
        agent_id="agent-1",
        messages=[{"content": "hi"}],
        status="accepted",
        session=session,
        events_url=f"https://api.scoutos.test/v1/agent-sessions/{session_id}/events",
    )


def test_valid_callback_is_stored_processed_and_answered_200(
    signal_log: list[Any], committed: Committed
) -> None:
    interaction = accepted_interaction()
    payload = callback_payload()
    with committed():
        response = post_callback(Client(), payload, interaction_id=interaction.pk)
    assert response.status_code == 200
    assert response.json() == {
        "callback_event_id": payload["callback_event_id"],
        "duplicate": False,
        "delivery_count": 1,
    }
    delivery = CallbackDelivery.objects.get()
    assert delivery.raw_body == json.dumps(payload)
    assert delivery.processed_at is not None
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert [name for name, _ in signal_log] == [
        "callback_received",
        "interaction_succeeded",
        "interaction_completed",
    ]


def test_failed_callback_records_scouts_error(committed: Committed) -> None:
    interaction = accepted_interaction()
    payload = callback_payload(
        status="failed", error={"code": "agent_error", "message": "tool crashed"}
    )
    with committed():
        assert post_callback(Client(), payload, interaction_id=interaction.pk).status_code == 200
    interaction.refresh_from_db()
    assert (interaction.status, interaction.error_code, interaction.error_message) == (
        "failed",
        "agent_error",
        "tool crashed",
    )


def test_session_only_url_matches_by_session(committed: Committed) -> None:
    interaction = accepted_interaction("sess_only")
    with committed():
        assert post_callback(Client(), callback_payload("sess_only")).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"


def test_repeat_counts_without_reprocessing(signal_log: list[Any], committed: Committed) -> None:
    interaction = accepted_interaction()
    payload = callback_payload()
    for _ in range(3):
        with committed():
            response = post_callback(Client(), payload, interaction_id=interaction.pk)
        assert response.status_code == 200
    assert response.json()["duplicate"] is True
    delivery = CallbackDelivery.objects.get()
    assert delivery.delivery_count == 3
    assert delivery.processing_attempts == 1
    assert [name for name, _ in signal_log].count("callback_received") == 1
    assert [name for name, _ in signal_log].count("interaction_completed") == 1


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "missing"),
        ("t=abc,sig=xyz", "malformed"),
        ("sig=only", "malformed"),
    ],
)
def test_bad_signature_header_is_401(signature: str | None, reason: str) -> None:
    interaction = accepted_interaction()
    if signature is None:
        response = Client().post(
            f"/scout/callbacks/{interaction.pk}/",
            data=json.dumps(callback_payload()),
            content_type="application/json",
        )
    else:
        response = post_callback(
            Client(), callback_payload(), interaction_id=interaction.pk, signature=signature
        )
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert not CallbackDelivery.objects.exists()


def test_forged_signature_is_401() -> None:
    response = post_callback(Client(), callback_payload(), secret="attacker-secret")
    assert response.status_code == 401
    assert "mismatch" in response.json()["detail"]
    assert not CallbackDelivery.objects.exists()


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_and_future_timestamps_are_401(offset: int) -> None:
    response = post_callback(Client(), callback_payload(), timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "stale" in response.json()["detail"]


def test_unsupported_algorithm_is_401() -> None:
    response = post_callback(
        Client(), callback_payload(), extra_headers={"X-Scout-Signature-Alg": "HMAC-MD5"}
    )
    assert response.status_code == 401
    assert "unsupported_algorithm" in response.json()["detail"]


def test_rotated_secret_accepted() -> None:
    accepted_interaction()
    with override_settings(SCOUT={**NO_FETCH, "SIGNING_SECRET": ["new-secret", SECRET]}):
        assert post_callback(Client(), callback_payload(), secret=SECRET).status_code == 200
        assert post_callback(Client(), callback_payload(), secret="new-secret").status_code == 200
        assert post_callback(Client(), callback_payload(), secret="older").status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "json"),
        (b"[1, 2]", "object"),
        (json.dumps({"session_id": "s", "status": "succeeded"}).encode(), "callback_event_id"),
        (json.dumps(callback_payload(status="cancelled")).encode(), "status"),
        (json.dumps(callback_payload(session_id="")).encode(), "session_id"),
        (b'{"callback_event_id": "\xff\xfe"}', "UTF-8"),
        (b'{"callback_event_id": "a\x00b", "session_id": "s", "status": "failed"}', "control"),
    ],
)
def test_malformed_body_is_400(body: bytes, fragment: str) -> None:
    response = post_callback(Client(), body)
    assert response.status_code == 400
    assert fragment.lower() in response.json()["detail"].lower()
    assert not CallbackDelivery.objects.exists()


def test_a_nul_character_is_stored_where_the_database_can_and_replaced_where_not() -> None:
    """PostgreSQL cannot store NUL in ``jsonb``: there it becomes U+FFFD in the payload, the
    raw body (whose JSON escape holds no NUL) is kept as it came, and the callback counts."""
    payload = callback_payload(note="a\u0000b", session_id="sess\u0000")
    response = post_callback(Client(), payload)
    assert response.status_code == 200, response.json()
    assert post_callback(Client(), payload).json()["duplicate"] is True
    delivery = CallbackDelivery.objects.get()
    nul = "\ufffd" if connection.vendor == "postgresql" else "\x00"
    assert (delivery.payload["note"], delivery.session_id) == (f"a{nul}b", f"sess{nul}")
    assert delivery.raw_body == json.dumps(payload)
    assert delivery.delivery_count == 2


def nested(levels: int) -> Any:
    """A JSON value nested ``levels`` deep (``[]`` is one level)."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_limit_is_the_products_own_rule() -> None:
    # The body object is level 1, so an extra field may hold MAX_JSON_DEPTH - 1 levels.
    fits = post_callback(Client(), callback_payload(extra=nested(MAX_JSON_DEPTH - 1)))
    assert fits.status_code == 200
    too_deep = post_callback(Client(), callback_payload(extra=nested(MAX_JSON_DEPTH)))
    assert too_deep.status_code == 400
    assert f"nested more than {MAX_JSON_DEPTH} levels" in too_deep.json()["detail"]
    assert CallbackDelivery.objects.count() == 1


def test_oversized_body_is_413() -> None:
    with override_settings(SCOUT={**NO_FETCH, "MAX_CALLBACK_BODY_BYTES": 1000}):
        big = callback_payload(padding="x" * 2000)
        response = post_callback(Client(), big)
    assert response.status_code == 413
    assert not CallbackDelivery.objects.exists()


def test_database_failure_is_503_so_scout_retries() -> None:
    with mock.patch(
        "django_scout.services.record_callback", side_effect=OperationalError("db down")
    ):
        response = post_callback(Client(), callback_payload())
    assert response.status_code == 503


def test_missing_signing_secret_is_503() -> None:
    with override_settings(SCOUT={**NO_FETCH, "SIGNING_SECRET": []}):
        response = post_callback(Client(), callback_payload())
    assert response.status_code == 503


def test_stored_headers_are_redacted() -> None:
    accepted_interaction()
    post_callback(
        Client(),
        callback_payload(),
        extra_headers={
            "Authorization": "Bearer leaked",
            "Cookie": "sessionid=leaked",
            "User-Agent": "Scout/1.0",
        },
    )
    headers = {k.lower(): v for k, v in CallbackDelivery.objects.get().headers.items()}
    assert headers["user-agent"] == "Scout/1.0"
    assert headers["x-scout-signature-alg"] == "HMAC-SHA256"
    for secret_header in ("authorization", "cookie", "x-scout-signature"):
        assert headers[secret_header] == "***"  # the name is kept, the value never
    assert "leaked" not in json.dumps(headers)


def test_csrf_enforced_client_still_accepted() -> None:
    accepted_interaction()
    response = post_callback(Client(enforce_csrf_checks=True), callback_payload())
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)  # the request's own transaction commits
def test_works_with_atomic_requests() -> None:
    interaction = accepted_interaction()
    connection = connections["default"]
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        payload = callback_payload()
        first = post_callback(Client(), payload, interaction_id=interaction.pk)
        second = post_callback(Client(), payload, interaction_id=interaction.pk)
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert (first.status_code, second.status_code) == (200, 200)
    assert CallbackDelivery.objects.get().delivery_count == 2
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is Django 5.1+")
def test_works_with_login_required_middleware(settings: Any) -> None:
    accepted_interaction()
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    assert post_callback(Client(), callback_payload()).status_code == 200
    # The middleware really is active: the admin redirects an anonymous user.
    assert Client().get("/admin/django_scout/interaction/").status_code == 302


def test_get_is_not_allowed() -> None:
    raw = b""
    response = Client().get(
        "/scout/callbacks/", headers={"X-Scout-Signature": seed_signature(raw, int(time.time()))}
    )
    assert response.status_code == 405


def test_unknown_interaction_in_url_is_kept_unprocessed(committed: Committed) -> None:
    with committed():
        response = post_callback(Client(), callback_payload(), interaction_id=uuid.uuid4())
    assert response.status_code == 200
    delivery = CallbackDelivery.objects.get()
    assert delivery.processed_at is None
    assert "no interaction" in delivery.processing_error


def test_a_callback_leaves_no_cycle_of_the_view_for_the_garbage_collector() -> None:
    """DRF's request refers to itself and to the view; the view cuts that as it answers, so
    reference counting frees them and the collector is not left a cycle per callback."""
    from rest_framework.request import Request

    from django_scout.views import CallbackView

    def alive() -> list[object]:
        return [obj for obj in gc.get_objects() if isinstance(obj, (CallbackView, Request))]

    client = Client()
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            response = post_callback(client, callback_payload())
            assert response.status_code == 200
            del response
        assert alive() == []
    finally:
        gc.enable()
