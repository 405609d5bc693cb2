"""End to end on PostgreSQL + Redis + a real Celery worker + the fake Scout over loopback HTTP."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any
from unittest import mock

import httpx
import pytest
from django.test import override_settings
from kombu.exceptions import OperationalError as BrokerDown

from django_scout import services
from django_scout.api import start_interaction
from django_scout.models import CallbackDelivery, InteractionEvent
from django_scout.services.batching import batch_publisher
from django_scout.services.publishing import publisher
from django_scout.testing import AgentBehaviour, FakeScout
from django_scout.testing import sign_callback as fake_sign
from tests.integration.helpers import (
    accepted_awaiting_callback,
    past_reconcile_grace,
    progress_until_terminal,
    terminal,
    wait_for,
    wait_signals,
)
from tests.testapp.models import Document, SignalRecord

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_happy_path(stack: FakeScout) -> None:
    stack.agent("agent-ok", AgentBehaviour(events=30, events_format="sse"))
    document = Document.objects.create(title="Q3 report")
    interaction = start_interaction(
        "agent-ok", "Summarise the report", tags=["it"], metadata={"doc": 1}, subject=document
    )
    terminal(interaction)
    assert interaction.status == "succeeded"
    assert interaction.session_id
    assert interaction.event_count == 30
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 30
    assert interaction.subject == document
    assert wait_signals(interaction, 3) == [
        "interaction_accepted",
        "interaction_succeeded",
        "interaction_completed",
    ]
    record = SignalRecord.objects.get(name="interaction_succeeded", object_id=str(interaction.pk))
    assert record.event_count == 30  # receivers can read the events
    (started,) = stack.interactions
    assert started.callback_url is not None
    assert started.callback_url.endswith(f"/scout/callbacks/{interaction.pk}/")


def test_failure(stack: FakeScout) -> None:
    stack.agent(
        "agent-fail",
        AgentBehaviour(outcome="failed", error={"code": "tool_error", "message": "boom"}),
    )
    interaction = terminal(start_interaction("agent-fail", "go"))
    assert (interaction.status, interaction.error_code, interaction.error_message) == (
        "failed",
        "tool_error",
        "boom",
    )
    assert wait_signals(interaction, 3) == [
        "interaction_accepted",
        "interaction_failed",
        "interaction_completed",
    ]


@pytest.mark.parametrize(("extra", "concurrent"), [(3, False), (9, True)])
def test_duplicate_callbacks_processed_once(stack: FakeScout, extra: int, concurrent: bool) -> None:
    stack.agent(
        "agent-dup", AgentBehaviour(events=5, duplicates=extra, concurrent_duplicates=concurrent)
    )
    interaction = terminal(start_interaction("agent-dup", "go"))
    assert interaction.status == "succeeded"
    stack.wait_for_callbacks(extra + 1, timeout=15, ok_only=True)
    delivery = wait_for(
        lambda: CallbackDelivery.objects.filter(delivery_count=extra + 1).first(), 10, "count"
    )
    assert CallbackDelivery.objects.count() == 1
    assert delivery.interaction_id == interaction.pk
    assert wait_signals(interaction, 3).count("interaction_completed") == 1
    assert SignalRecord.objects.filter(name="callback_received").count() == 1
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 5


def test_callback_before_accept(stack: FakeScout) -> None:
    stack.agent("agent-early", AgentBehaviour(events=4, callback_before_accept=True))
    interaction = terminal(start_interaction("agent-early", "go"))
    assert interaction.status == "succeeded"
    assert interaction.event_count == 4
    assert wait_signals(interaction, 3) == [
        "interaction_accepted",
        "interaction_succeeded",
        "interaction_completed",
    ]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "forged-secret"}, "mismatch"),
        ({"timestamp": int(time.time()) - 3600}, "stale"),
        ({"timestamp": int(time.time()) + 3600}, "stale"),
    ],
)
def test_bad_signatures_rejected(stack: FakeScout, kwargs: dict[str, Any], reason: str) -> None:
    interaction = accepted_awaiting_callback(stack, "agent-sig")
    delivery = stack.send_callback(str(interaction.session_id), **kwargs)
    assert {attempt.status for attempt in delivery.attempts} == {401}
    assert not CallbackDelivery.objects.exists()
    interaction.refresh_from_db()
    assert interaction.status == "accepted"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"X-Scout-Signature": "t=now,sig=???"}, "malformed"),
        ({"X-Scout-Signature-Alg": "HMAC-SHA1"}, "unsupported_algorithm"),
    ],
)
def test_missing_malformed_and_wrong_algorithm(
    stack: FakeScout, live_server: Any, headers: dict[str, str], reason: str
) -> None:
    body = json.dumps(
        {"callback_event_id": "c1", "session_id": "s1", "status": "succeeded"}
    ).encode()
    signed_body, signed_headers = fake_sign(body, stack.signing_secret)
    sent_headers = {"Content-Type": "application/json"}
    if headers.get("X-Scout-Signature-Alg"):
        sent_headers.update(signed_headers)
    sent_headers.update(headers)
    response = httpx.post(
        f"{live_server.url}/scout/callbacks/", content=signed_body, headers=sent_headers
    )
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert not CallbackDelivery.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"session_id": "s", "status": "succeeded"}).encode(),
        json.dumps({"callback_event_id": "c", "session_id": "s", "status": "paused"}).encode(),
    ],
)
def test_malformed_bodies_rejected(stack: FakeScout, live_server: Any, body: bytes) -> None:
    signed_body, headers = fake_sign(body, stack.signing_secret)
    response = httpx.post(
        f"{live_server.url}/scout/callbacks/",
        content=signed_body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert not CallbackDelivery.objects.exists()


def test_secret_rotation(stack: FakeScout, integration_scout_settings: dict[str, Any]) -> None:
    interaction = accepted_awaiting_callback(stack, "agent-rotate")
    rotated = {**integration_scout_settings, "SIGNING_SECRET": ["brand-new", stack.signing_secret]}
    with override_settings(SCOUT=rotated):
        old = stack.send_callback(str(interaction.session_id))
        new = stack.send_callback(
            str(interaction.session_id), secret="brand-new", callback_event_id="rotated-2"
        )
    assert [a.status for a in old.attempts] == [200]
    assert [a.status for a in new.attempts] == [200]
    terminal(interaction)
    assert interaction.status == "succeeded"


def test_broker_down_when_callback_arrives_then_reconcile(
    stack: FakeScout, integration_scout_settings: dict[str, Any]
) -> None:
    interaction = accepted_awaiting_callback(stack, "agent-broker")
    from django_scout import tasks

    with mock.patch.object(
        tasks.process_callbacks_task, "apply_async", side_effect=BrokerDown("broker down")
    ):
        delivery = stack.send_callback(str(interaction.session_id))
        batch_publisher.flush()  # the publish follows the answer: still inside the outage
    assert [a.status for a in delivery.attempts] == [200]  # stored, Scout need not retry
    stored = CallbackDelivery.objects.get()
    assert stored.processed_at is None
    time.sleep(1)
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    assert publisher.is_open  # later publishes from this process wait for the breaker
    # Reconcile runs in beat's worker, whose publisher saw no failure.
    publisher.reset()
    report = services.reconcile(now=past_reconcile_grace(integration_scout_settings))
    assert report.requeued_deliveries == [stored.pk]
    terminal(interaction)
    assert interaction.status == "succeeded"


@pytest.mark.parametrize("status", [503, 429, 502])
def test_transient_start_errors_then_success(stack: FakeScout, status: int) -> None:
    stack.agent("agent-flaky", AgentBehaviour(events=3))
    stack.fail_next("POST", "/world/*", status, times=3, retry_after=0 if status == 429 else None)
    interaction = terminal(start_interaction("agent-flaky", "go"))
    assert interaction.status == "succeeded"
    assert len(stack.interactions) == 1  # started exactly once at Scout
    assert interaction.start_attempts >= 2


def test_permanent_422_on_start(stack: FakeScout) -> None:
    stack.fail_next(
        "POST",
        "/world/*",
        422,
        body={"detail": [{"loc": ["body", "messages"], "msg": "bad", "type": "value_error"}]},
    )
    interaction = terminal(start_interaction("agent-422", "go"))
    assert (interaction.status, interaction.error_code) == ("failed", "validation_error")
    assert "body.messages" in interaction.error_message
    assert stack.interactions == []
    assert wait_signals(interaction, 2) == ["interaction_failed", "interaction_completed"]


def test_event_fetch_failing_then_recovering(stack: FakeScout) -> None:
    stack.agent("agent-events", AgentBehaviour(events=12, events_format="json"))
    stack.fail_next("GET", "/world/*/events", 503, times=3)
    interaction = terminal(start_interaction("agent-events", "go"))
    assert interaction.status == "succeeded"
    assert interaction.event_count == 12
    assert interaction.events_missing is False
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 12


def test_50k_event_stream_stored_with_bounded_memory(stack: FakeScout) -> None:
    stack.agent("agent-big", AgentBehaviour(events=50_000, events_format="ndjson"))
    interaction = terminal(start_interaction("agent-big", "go"), timeout=120)
    assert interaction.status == "succeeded"
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 50_000
    assert interaction.event_count == 50_000

    # Re-fetch in this process under tracemalloc: idempotent, and memory stays bounded.
    stream = httpx.get(interaction.events_url, headers={"Authorization": f"Bearer {stack.api_key}"})
    body_size = len(stream.content)
    del stream
    tracemalloc.start()
    try:
        assert services.fetch_events(interaction) == 50_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 50_000
    assert body_size > 5_000_000
    assert peak < body_size / 2, f"peak {peak} bytes for a {body_size}-byte stream"


def test_streamed_interaction_shows_its_events_before_it_ends(stack: FakeScout) -> None:
    stack.agent("agent-live", AgentBehaviour(events=8, event_interval=0.25, reply="live answer"))
    interaction = start_interaction("agent-live", "Talk to me", stream=True)
    seen = progress_until_terminal(interaction)
    total = 8 + 1  # the events and the terminal event
    assert (interaction.stream, interaction.status, interaction.error_code) == (
        True,
        "succeeded",
        "",
    )
    assert interaction.event_count == total
    events = list(interaction.events.order_by("sequence").values_list("sequence", "name"))
    assert [sequence for sequence, _ in events] == list(range(total))
    assert events[-1][1] == "interaction_completed"
    # Progress was visible while the interaction was going: some (not all) events stored.
    midway = [s for s in seen if s[0] == "accepted" and 0 < s[1] < total and 0 < s[2] < total]
    assert midway, f"never saw an accepted interaction with partial events: {seen}"
    (started,) = stack.interactions
    assert (started.endpoint, started.callback_url) == ("stream", None)
    assert interaction.session_id == started.session_id
    assert wait_signals(interaction, 3) == [
        "interaction_accepted",
        "interaction_succeeded",
        "interaction_completed",
    ]
    record = SignalRecord.objects.get(name="interaction_succeeded", object_id=str(interaction.pk))
    assert record.event_count == total  # receivers can read the events


def test_streamed_interaction_cut_off_is_interrupted_in_the_worker(stack: FakeScout) -> None:
    stack.agent("agent-cut", AgentBehaviour(events=6, cut_off_after=3, cut_off_mode="abort"))
    interaction = terminal(start_interaction("agent-cut", "Talk to me", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "stream_interrupted")
    assert interaction.event_count == 3
    assert len(stack.requests_matching("POST", "/world/*/_interact")) == 1
    assert wait_signals(interaction, 3) == [
        "interaction_accepted",
        "interaction_failed",
        "interaction_completed",
    ]
