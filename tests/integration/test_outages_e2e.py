"""Outages and poison input against PostgreSQL, Redis, a real worker and the fake Scout.

The web side of the stack (Django's live server in this process) loses its broker while the
worker keeps its own connection: exactly what a web process sees when Redis stops or hangs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from django_scout import services, tasks
from django_scout.models import CallbackDelivery, DeliveryState, Interaction
from django_scout.services.batching import batch_publisher
from django_scout.services.publishing import publisher
from django_scout.testing import FakeScout, sign_callback
from tests import celery_app
from tests.integration.helpers import accepted_awaiting_callback, past_reconcile_grace, wait_for


def _publish_to(url: str | None) -> None:
    """Point this process's publishing at ``url`` (``None``: back to the real broker).

    Celery reads ``broker_url`` from the environment first, so the write URL is what can be
    changed; the pools are dropped (not closed: kombu shares them per URL) so that the next
    publish connects again.
    """
    app = celery_app.app
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    app.conf["broker_write_url"] = url


@contextmanager
def broker_outage(kind: str) -> Iterator[None]:
    """This process's broker is ``refused`` (stopped) or ``hung`` (accepts, never answers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if kind == "hung":
        listener.listen(128)
    else:
        listener.close()  # nothing listens on the port any more: connections are refused
    _publish_to(f"redis://127.0.0.1:{port}/0")
    try:
        yield
    finally:
        _publish_to(None)
        listener.close()


@pytest.mark.parametrize("kind", ["refused", "hung"])
def test_callbacks_are_answered_promptly_without_a_broker_and_processed_once_it_is_back(
    stack: FakeScout, integration_scout_settings: dict[str, Any], kind: str
) -> None:
    interactions = [accepted_awaiting_callback(stack, f"agent-outage-{i}") for i in range(6)]
    with broker_outage(kind):
        deliveries = [
            stack.send_callback(str(interaction.session_id)) for interaction in interactions
        ]
        batch_publisher.flush()  # the publishes follow the answers: still inside the outage
    durations = [attempt.duration for delivery in deliveries for attempt in delivery.attempts]
    assert [attempt.status for d in deliveries for attempt in d.attempts] == [200] * 6
    # Before the bound, each answer waited ~6 s (refused) or forever (hung) for the broker.
    assert max(durations) < 1.0, durations
    assert sorted(durations)[len(durations) // 2] < 0.3, durations
    assert CallbackDelivery.objects.filter(state=DeliveryState.PENDING).count() == 6

    # The broker is back: beat's reconcile (its own process, so its own breaker) drains them.
    publisher.reset()
    report = services.reconcile(now=past_reconcile_grace(integration_scout_settings))
    assert sorted(report.requeued_deliveries) == sorted(
        CallbackDelivery.objects.values_list("pk", flat=True)
    )

    def all_done() -> bool:
        return not CallbackDelivery.objects.filter(state=DeliveryState.PENDING).exists()

    wait_for(all_done, 30, "every interaction completed")
    assert set(Interaction.objects.values_list("status", flat=True)) == {"succeeded"}
    assert set(CallbackDelivery.objects.values_list("state", flat=True)) == {"processed"}


def test_a_poison_delivery_ends_failed_in_the_worker(stack: FakeScout) -> None:
    interaction = accepted_awaiting_callback(stack, "agent-poison")
    delivery = CallbackDelivery.objects.create(
        callback_event_id="cb-poison-e2e",
        target_interaction_id=interaction.pk,
        session_id=str(interaction.session_id),
        status="succeeded",
        # Stored before the edge refused such times: it overflows on every attempt.
        payload={
            "callback_event_id": "cb-poison-e2e",
            "session_id": str(interaction.session_id),
            "status": "succeeded",
            "completed_at": "0001-01-01T00:00:00+14:00",
        },
        raw_body="{}",
    )
    tasks.process_callback_task.apply_async(args=(delivery.pk,))

    def given_up() -> bool:
        delivery.refresh_from_db()
        return delivery.state == DeliveryState.FAILED

    wait_for(given_up, 30, "the delivery given up")
    interaction.refresh_from_db()
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")
    # Bounded: the first attempt plus the worker's TASK_MAX_RETRIES retries.
    assert delivery.processing_attempts == 5
    later = timezone.now() + timedelta(days=3)
    assert services.reconcile(now=later).requeued_deliveries == []


@pytest.mark.parametrize("completed_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_poison_callback_is_refused_at_the_edge(stack: FakeScout, completed_at: str) -> None:
    interaction = accepted_awaiting_callback(stack, "agent-poison-edge")
    body, headers = sign_callback(
        {
            "callback_event_id": "cb-edge",
            "session_id": str(interaction.session_id),
            "status": "succeeded",
            "completed_at": completed_at,
        },
        stack.signing_secret,
    )
    response = httpx.post(services.callback_url_for(interaction), content=body, headers=headers)
    assert response.status_code == 400
    assert "completed_at" in response.json()["detail"]
    assert not CallbackDelivery.objects.exists()
