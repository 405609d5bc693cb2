"""``async def`` receivers of every django-scout signal, on Django 4.2 as on 5.0+.

Django 5.0+ awaits async receivers itself; on Django 4.2 the services' ``send_robust`` awaits
the coroutine Django hands back. Either way each receiver runs once per transition, can use the
async ORM, and one that raises is logged without undoing or repeating anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from django.db import models
from django.dispatch import Signal
from django.test import Client, override_settings

from django_scout import signals
from django_scout.api import run_workflow, start_interaction
from django_scout.models import CallbackDelivery, Interaction, WorkflowRun
from django_scout.services.workflows import fail_run, finish_run
from django_scout.tasks import run_workflow_task
from tests.helpers import UNIT_SCOUT, callback_payload, post_callback
from tests.mock_scout import MockScout

pytestmark = pytest.mark.django_db(transaction=True)

#: One recorded call: (signal, sender, keyword, object id, status read back with the async ORM)
Call = tuple[str, type[models.Model], str, str, str]


@pytest.fixture(autouse=True)
def _scout_settings() -> Iterator[None]:
    with override_settings(SCOUT={**UNIT_SCOUT, "FETCH_EVENTS": False}):
        yield


@pytest.fixture
def async_log() -> Iterator[list[Call]]:
    """An ``async def`` receiver on every django-scout signal, recording each call."""
    log: list[Call] = []
    connected: list[tuple[Signal, Any]] = []
    for name in signals.__all__:

        async def receiver(
            sender: type[models.Model], signal: Signal, _name: str = name, **kwargs: Any
        ) -> None:
            ((keyword, obj),) = kwargs.items()
            stored = await sender._default_manager.aget(pk=obj.pk)
            log.append((_name, sender, keyword, str(obj.pk), str(getattr(stored, "status", ""))))

        signal = getattr(signals, name)
        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
    yield log
    for signal, receiver in connected:
        signal.disconnect(receiver)


def interaction_through_callback(mock_scout: MockScout) -> tuple[Interaction, CallbackDelivery]:
    """An interaction started, accepted and completed by a succeeded callback."""
    interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    payload = callback_payload(str(interaction.session_id))
    post_callback(Client(), payload, interaction_id=interaction.pk)
    return interaction, CallbackDelivery.objects.get(interaction=interaction)


def test_async_receivers_get_every_signal_once(
    mock_scout: MockScout, async_log: list[Call], signal_log: list[tuple[str, str]]
) -> None:
    succeeded, delivery = interaction_through_callback(mock_scout)
    mock_scout.start_faults = [httpx.Response(422, json={"detail": "bad"})]
    refused = start_interaction("agent-1", "refused")
    with mock.patch.object(run_workflow_task, "apply_async"):  # finished by hand below
        ran, broke = run_workflow("wf_ok"), run_workflow("wf_broken")
    finish_run(ran.pk, "succeeded")
    fail_run(broke.pk, "scout_failed", "it broke")

    interaction = ("interaction", Interaction)
    run = ("run", WorkflowRun)
    expected: list[tuple[str, tuple[str, type[models.Model]], Any, str]] = [
        ("interaction_accepted", interaction, succeeded.pk, "accepted"),
        ("callback_received", ("delivery", CallbackDelivery), delivery.pk, "succeeded"),
        ("interaction_succeeded", interaction, succeeded.pk, "succeeded"),
        ("interaction_completed", interaction, succeeded.pk, "succeeded"),
        ("interaction_failed", interaction, refused.pk, "failed"),
        ("interaction_completed", interaction, refused.pk, "failed"),
        ("workflow_run_succeeded", run, ran.pk, "succeeded"),
        ("workflow_run_completed", run, ran.pk, "succeeded"),
        ("workflow_run_failed", run, broke.pk, "failed"),
        ("workflow_run_completed", run, broke.pk, "failed"),
    ]
    assert async_log == [
        (name, sender, keyword, str(pk), status) for name, (keyword, sender), pk, status in expected
    ]
    assert {name for name, *_ in async_log} == set(signals.__all__)
    # The sync receivers of the same signals still run, once each, in the same order.
    assert signal_log == [(name, str(pk)) for name, _, pk, _ in expected]


def test_async_receiver_that_raises_is_logged_and_the_transition_stands(
    mock_scout: MockScout, async_log: list[Call], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("async host bug")

    signals.interaction_succeeded.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="django_scout"):
            interaction, _ = interaction_through_callback(mock_scout)
    finally:
        signals.interaction_succeeded.disconnect(broken)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    (record,) = [r for r in caplog.records if r.name == "django_scout" and r.exc_info]
    assert "the transition stands" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "async host bug"
    assert record.exc_text is None or "async host bug" in record.exc_text
    assert [name for name, *_ in async_log] == [
        "interaction_accepted",
        "callback_received",
        "interaction_succeeded",
        "interaction_completed",
    ]
