"""Starting interactions, processing callbacks, events, signals, reconcile and prune.

Unit level: Celery runs eagerly and Scout is the in-process ``MockScout`` transport.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.utils import timezone

from django_scout import services, signals
from django_scout.api import start_interaction
from django_scout.models import CallbackDelivery, Interaction, InteractionEvent
from django_scout.services import interactions
from django_scout.tasks import start_interaction_task
from tests.helpers import UNIT_SCOUT, Committed, callback_payload, post_callback
from tests.mock_scout import MockScout

# Rolled back after each test; each call that commits in production (a service call, a
# request, a task) runs under ``committed()``, which runs its on_commit callbacks as it ends.
pytestmark = pytest.mark.django_db

BASE_SCOUT = UNIT_SCOUT


@pytest.fixture(autouse=True)
def _scout_settings() -> Any:
    with override_settings(SCOUT=BASE_SCOUT):
        yield


def names(log: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in log]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"agent_id": "", "message": "hi"}, "agent_id"),
        ({"agent_id": "   ", "message": "hi"}, "agent_id"),
        ({"agent_id": "a", "message": ""}, "message"),
        ({"agent_id": "a"}, "message"),
        ({"agent_id": "a", "message": "hi", "tags": ["Bad Tag"]}, "tag"),
        ({"agent_id": "a", "message": "hi", "tags": [f"t{i}" for i in range(21)]}, "20"),
        ({"agent_id": "a", "message": "hi", "tags": ["x" * 33]}, "32"),
        ({"agent_id": "a", "message": "hi", "metadata": {"when": object()}}, "JSON"),
        ({"agent_id": "a", "message": "hi", "metadata": ["not", "a", "dict"]}, "metadata"),
        ({"agent_id": "a", "message": "hi", "variables": {"x": {1, 2}}}, "variables"),
        ({"agent_id": "a", "message": "hi", "session_id": ""}, "session_id"),
    ],
)
def test_invalid_input_raises_value_error_and_saves_nothing(
    kwargs: dict[str, Any], fragment: str, mock_scout: MockScout, committed: Committed
) -> None:
    agent_id = kwargs.pop("agent_id")
    with committed(), pytest.raises(ValueError, match=fragment):
        start_interaction(agent_id, **kwargs)
    assert not Interaction.objects.exists()
    assert mock_scout.requests == []


def test_missing_callback_base_url_is_improperly_configured(mock_scout: MockScout) -> None:
    with (
        override_settings(SCOUT={**BASE_SCOUT, "CALLBACK_BASE_URL": None}),
        pytest.raises(ImproperlyConfigured, match="CALLBACK_BASE_URL"),
    ):
        start_interaction("agent-1", "hi")
    assert not Interaction.objects.exists()


# --- starting --------------------------------------------------------------------------------


def test_start_accepts_and_signals_once(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    with committed():
        interaction = start_interaction(
            "agent-1", "hello", metadata={"ticket": 7}, variables={"v": 1}, tags=["support"]
        )
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    assert interaction.session_id == "sess_1"
    assert interaction.events_url.endswith("/sess_1/events")
    assert interaction.accepted_at is not None
    (request,) = mock_scout.start_requests()
    assert request.url.path == "/world/agent-1/_interact_async"
    body = json.loads(request.content)
    assert body["messages"] == [{"content": "hello"}]
    assert body["callback_url"] == (f"https://app.example.test/scout/callbacks/{interaction.pk}/")
    assert (body["metadata"], body["variables"], body["tags"]) == (
        {"ticket": 7},
        {"v": 1},
        ["support"],
    )
    assert signal_log == [("interaction_accepted", str(interaction.pk))]


def test_session_id_continues_a_session(mock_scout: MockScout, committed: Committed) -> None:
    with committed():
        start_interaction("agent-1", "again", session_id="sess_existing")
    (request,) = mock_scout.start_requests()
    assert request.url.path == "/world/agent-1/sess_existing/_interact_async"


@pytest.mark.parametrize(
    "fault",
    [
        503,
        502,
        504,
        httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "slow down"}),
        httpx.ConnectError("connection refused"),
    ],
)
def test_transient_start_failure_retries_then_accepts(
    mock_scout: MockScout, fault: Any, committed: Committed
) -> None:
    mock_scout.start_faults = [fault, fault]
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    assert len(mock_scout.start_requests()) == 3
    assert interaction.start_attempts == 3


def test_transient_failures_exhausting_retries_fail(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    mock_scout.start_faults = [503] * 10
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "failed"
    assert interaction.error_code == "http_503"
    assert "gave up" in interaction.error_message
    assert len(mock_scout.start_requests()) == BASE_SCOUT["TASK_MAX_RETRIES"] + 1
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]


@pytest.mark.parametrize(
    ("status", "code"),
    [(422, "validation_error"), (401, "unauthorized"), (403, "forbidden"), (404, "not_found")],
)
def test_permanent_start_failure_fails_without_retry(
    mock_scout: MockScout, signal_log: list[Any], status: int, code: str, committed: Committed
) -> None:
    mock_scout.start_faults = [
        httpx.Response(
            status,
            json={"detail": [{"loc": ["body", "messages"], "msg": "bad", "type": "value_error"}]},
        )
    ]
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "failed"
    assert interaction.error_code == code
    assert interaction.error_message
    assert len(mock_scout.start_requests()) == 1
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]


@pytest.mark.parametrize(
    "fault", [httpx.ReadTimeout("read timed out"), 500, httpx.RemoteProtocolError("dropped")]
)
def test_ambiguous_start_failure_is_never_repeated(
    mock_scout: MockScout, fault: Any, committed: Committed
) -> None:
    mock_scout.start_faults = [fault]
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "pending"
    assert interaction.error_code == "start_unconfirmed"
    with committed():
        start_interaction_task.apply(args=(str(interaction.pk),))
    assert len(mock_scout.start_requests()) == 1


def test_duplicated_start_task_sends_once(mock_scout: MockScout, committed: Committed) -> None:
    with committed():
        interaction = start_interaction("agent-1", "hello")
    for _ in range(3):
        with committed():
            assert start_interaction_task.apply(args=(str(interaction.pk),)).get() == "skipped"
    assert len(mock_scout.start_requests()) == 1


# --- callbacks and events ------------------------------------------------------------------


def deliver(committed: Committed, interaction: Interaction, **overrides: Any) -> Any:
    """POST Scout's signed callback for ``interaction`` to the endpoint; process it."""
    payload = callback_payload(str(interaction.session_id), **overrides)
    with committed():
        return post_callback(Client(), payload, interaction_id=interaction.pk)


def accepted(committed: Committed) -> Interaction:
    """An interaction Scout (the ``mock_scout`` fixture) accepted."""
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    return interaction


def test_callback_fetches_events_before_signalling(
    mock_scout: MockScout, committed: Committed
) -> None:
    mock_scout.events = 7
    seen: list[int] = []

    def receiver(sender: Any, interaction: Interaction, **kwargs: Any) -> None:
        seen.append(interaction.events.count())

    signals.interaction_succeeded.connect(receiver)
    try:
        interaction = accepted(committed)
        assert deliver(committed, interaction).status_code == 200
    finally:
        signals.interaction_succeeded.disconnect(receiver)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert interaction.event_count == 7
    assert interaction.events_fetched_at is not None
    assert seen == [7]
    events = list(interaction.events.order_by("sequence"))
    assert [e.sequence for e in events] == list(range(7))
    assert events[3].name == "message"
    assert isinstance(events[3].data, dict)
    assert events[3].data["data"] == {"text": "t3"}


def test_refetch_never_duplicates(mock_scout: MockScout, committed: Committed) -> None:
    mock_scout.events = 12
    interaction = accepted(committed)
    assert services.fetch_events(interaction) == 12
    assert services.fetch_events(interaction) == 12
    assert InteractionEvent.objects.filter(interaction=interaction).count() == 12


def test_event_fetch_failing_then_recovering(mock_scout: MockScout, committed: Committed) -> None:
    mock_scout.events = 4
    mock_scout.events_faults = [503, 500]
    interaction = accepted(committed)
    deliver(committed, interaction)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert interaction.event_count == 4
    assert interaction.events_missing is False
    assert CallbackDelivery.objects.get().processed_at is not None


def test_event_fetch_exhausted_completes_with_events_missing(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    mock_scout.events_faults = [503] * 50
    interaction = accepted(committed)
    deliver(committed, interaction)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert interaction.events_missing is True
    assert "503" in interaction.events_error
    assert names(signal_log).count("interaction_succeeded") == 1

    # Later, scout_fetch_events --missing fills them in.
    from django.core.management import call_command

    mock_scout.events_faults = []
    mock_scout.events = 5
    with committed():
        call_command("scout_fetch_events", "--missing")
    interaction.refresh_from_db()
    assert (interaction.events_missing, interaction.event_count) == (False, 5)


def test_callback_before_accept_is_applied_when_matched(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    interaction = Interaction.objects.create(agent_id="agent-1", messages=[{"content": "x"}])
    claimed = services.claim_start(interaction.pk)
    assert claimed is not None
    # Scout calls back before its 202 reaches us.
    payload = callback_payload("sess_early")
    with committed():
        assert post_callback(Client(), payload, interaction_id=interaction.pk).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert interaction.session_id == "sess_early"
    # The 202 then arrives; accepting again is a no-op.
    with committed():
        assert services.accept_interaction(interaction.pk, "sess_early", "https://x/e") is False
    assert names(signal_log) == [
        "callback_received",
        "interaction_accepted",
        "interaction_succeeded",
        "interaction_completed",
    ]


def test_orphan_callback_by_session_applied_on_accept(
    mock_scout: MockScout, committed: Committed
) -> None:
    payload = callback_payload("sess_1")  # MockScout's first session id
    with committed():
        assert post_callback(Client(), payload).status_code == 200
    delivery = CallbackDelivery.objects.get()
    assert delivery.processed_at is None
    assert delivery.processing_attempts == 1  # tried at once, kept for when its interaction comes
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    delivery.refresh_from_db()
    assert interaction.status == "succeeded"
    assert delivery.processed_at is not None
    assert delivery.interaction_id == interaction.pk


def test_second_distinct_callback_does_not_change_terminal_status(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    interaction = accepted(committed)
    deliver(committed, interaction)
    late = callback_payload(str(interaction.session_id), status="failed", error={"code": "x"})
    with committed():
        post_callback(Client(), late, interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert names(signal_log).count("interaction_completed") == 1
    assert (
        "already succeeded"
        in CallbackDelivery.objects.get(
            callback_event_id=late["callback_event_id"]
        ).processing_error
    )


def test_callback_with_mismatched_session_is_rejected(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    with committed():
        post_callback(Client(), callback_payload("sess_other"), interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    assert "does not match" in CallbackDelivery.objects.get().processing_error


def test_receiver_that_raises_is_logged_and_transition_stands(
    mock_scout: MockScout,
    caplog: pytest.LogCaptureFixture,
    signal_log: list[Any],
    committed: Committed,
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("host bug")

    signals.interaction_succeeded.connect(broken)
    try:
        with override_settings(SCOUT={**BASE_SCOUT, "FETCH_EVENTS": False}):
            interaction = accepted(committed)
            with caplog.at_level(logging.ERROR, logger="django_scout"):
                deliver(committed, interaction)
    finally:
        signals.interaction_succeeded.disconnect(broken)
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"
    assert any("host bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert names(signal_log).count("interaction_completed") == 1


# --- reconcile and prune -------------------------------------------------------------------


def test_reconcile_times_out_silent_interactions(
    mock_scout: MockScout, signal_log: list[Any], committed: Committed
) -> None:
    interaction = accepted(committed)
    Interaction.objects.filter(pk=interaction.pk).update(
        accepted_at=timezone.now() - timedelta(days=2)
    )
    with committed():
        report = services.reconcile()
    interaction.refresh_from_db()
    assert report.timed_out == [str(interaction.pk)]
    assert (interaction.status, interaction.error_code) == ("failed", "callback_timeout")
    assert names(signal_log)[-2:] == ["interaction_failed", "interaction_completed"]
    with committed():
        assert services.reconcile().timed_out == []


def test_reconcile_reprocesses_stored_deliveries(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    from unittest import mock

    with mock.patch("django_scout.tasks.process_callbacks_task.apply_async", side_effect=OSError):
        assert deliver(committed, interaction).status_code == 200
    delivery = CallbackDelivery.objects.get()
    assert delivery.processed_at is None
    with committed():
        assert services.reconcile().requeued_deliveries == []  # not due before RECONCILE_GRACE
    with committed():
        report = services.reconcile(now=timezone.now() + timedelta(minutes=2))
    assert report.requeued_deliveries == [delivery.pk]
    interaction.refresh_from_db()
    assert interaction.status == "succeeded"


def test_reconcile_restarts_never_started_interactions(
    mock_scout: MockScout, committed: Committed
) -> None:
    from unittest import mock

    with (
        mock.patch("django_scout.tasks.start_interaction_task.apply_async", side_effect=OSError),
        committed(),
    ):
        interaction = start_interaction("agent-1", "hello")
    assert mock_scout.start_requests() == []
    with committed():
        assert services.reconcile().requeued_starts == []  # not due before RECONCILE_GRACE
    later = timezone.now() + timedelta(minutes=2)
    with committed():
        assert services.reconcile(now=later).requeued_starts == [str(interaction.pk)]
    interaction.refresh_from_db()
    assert interaction.status == "accepted"


def test_prune_deletes_old_events_and_processed_deliveries(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    deliver(committed, interaction, completed_at=timezone.now().isoformat())
    assert InteractionEvent.objects.count() == 3
    assert services.prune(30) == {"events": 0, "run_events": 0, "deliveries": 0}
    later = timezone.now() + timedelta(days=31)
    assert services.prune(30, now=later) == {"events": 3, "run_events": 0, "deliveries": 1}
    assert Interaction.objects.filter(pk=interaction.pk).exists()
    with pytest.raises(ValueError, match="zero or more"):
        services.prune(-1)


def test_transient_database_error_in_a_task_is_retried(
    mock_scout: MockScout, committed: Committed
) -> None:
    from unittest import mock

    from django.db import OperationalError

    real_claim = services.claim_start
    calls: list[str] = []

    def flaky_claim(interaction_id: Any) -> Any:
        calls.append(str(interaction_id))
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real_claim(interaction_id)

    with mock.patch.object(interactions, "claim_start", side_effect=flaky_claim), committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert len(calls) == 2
    assert interaction.status == "accepted"
    assert len(mock_scout.start_requests()) == 1


def test_processing_a_vanished_delivery_is_a_no_op() -> None:
    assert services.process_delivery(987654) == services.ProcessOutcome.MISSING
