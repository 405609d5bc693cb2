"""Streamed interactions (``start_interaction(..., stream=True)``): eager Celery, the fake Scout.

The worker reads Scout's streaming interact endpoint, stores each event as it arrives and takes
the outcome from the stream's end, with the start rule of async starts and exactly-once signals
whether or not a callback also arrives.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.test import override_settings

from django_scout import services
from django_scout.api import astart_interaction, start_interaction
from django_scout.client import EventStream, SessionEvent
from django_scout.models import CallbackDelivery, Interaction, InteractionEvent
from django_scout.payloads import CallbackPayload
from django_scout.services import common, event_store, interactions
from django_scout.tasks import start_interaction_task
from django_scout.testing import FakeScout
from django_scout.testing.generators import AGENT_STREAM_COMPLETED, AGENT_STREAM_FAILED
from tests.helpers import DatabaseLock, locking_before

pytestmark = pytest.mark.django_db(transaction=True)

STREAM_PATH = "/world/*/_interact"
SUCCESS = ["interaction_accepted", "interaction_succeeded", "interaction_completed"]
FAILURE = ["interaction_accepted", "interaction_failed", "interaction_completed"]


@pytest.fixture(autouse=True)
def _point_at_fake(fake_scout: FakeScout) -> Iterator[None]:
    # No CALLBACK_BASE_URL: a streamed interaction has no callback URL.
    conf = fake_scout.scout_settings(TASK_RETRY_BACKOFF=0.0, MAX_RETRIES=0, TASK_MAX_RETRIES=3)
    with override_settings(SCOUT=conf):
        yield


def names(log: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in log]


def fresh(interaction: Interaction) -> Interaction:
    interaction.refresh_from_db()
    return interaction


def event_rows(interaction: Interaction) -> list[tuple[int, str]]:
    rows = InteractionEvent.objects.filter(interaction=interaction).order_by("sequence")
    return list(rows.values_list("sequence", "name"))


def stream_requests(fake_scout: FakeScout) -> list[Any]:
    return fake_scout.requests_matching("POST", STREAM_PATH)


def session_event(sequence: int, name: str, data: Any) -> SessionEvent:
    return SessionEvent(sequence=sequence, name=name, data=data, id=f"e{sequence}", timestamp=None)


def event_stream(events: list[SessionEvent], *, done: bool = False) -> EventStream[SessionEvent]:
    def generate() -> Generator[SessionEvent, None, None]:
        yield from events

    stream = EventStream(generate())
    stream.ended_with_done = done
    return stream


def streamed_row(**fields: Any) -> Interaction:
    """A claimed streamed interaction, as the start task has it before the stream opens."""
    return Interaction.objects.create(
        agent_id="a1", messages=[{"content": "hi"}], stream=True, **fields
    )


# --- outcomes ------------------------------------------------------------------------------------


def test_stream_stores_every_event_and_succeeds(
    fake_scout: FakeScout, signal_log: list[Any]
) -> None:
    fake_scout.agent("a1", events=5, reply="the answer")
    interaction = fresh(start_interaction("a1", "hi", tags=["live"], stream=True))
    assert (interaction.stream, interaction.status, interaction.error_code) == (
        True,
        "succeeded",
        "",
    )
    assert event_rows(interaction) == [
        (0, "message"),
        (1, "tool_call"),
        (2, "tool_result"),
        (3, "message"),
        (4, "message"),
        (5, AGENT_STREAM_COMPLETED),
    ]
    assert interaction.event_count == 5 + 1
    assert interaction.events_fetched_at is not None
    (recorded,) = fake_scout.interactions
    assert recorded.endpoint == "stream"
    assert recorded.callback_url is None  # no callback URL: Scout streams instead
    assert recorded.tags == ["live"]
    assert interaction.session_id == recorded.session_id  # from the terminal event
    last = InteractionEvent.objects.get(interaction=interaction, sequence=4)
    assert isinstance(last.data, dict)
    assert last.data["data"]["text"] == "the answer"
    assert last.timestamp is not None
    assert signal_log == [(name, str(interaction.pk)) for name in SUCCESS]


def test_stream_continues_the_requested_session(fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", events=2)
    interaction = fresh(start_interaction("a1", "hi", session_id="sess-7", stream=True))
    assert (interaction.status, interaction.session_id) == ("succeeded", "sess-7")
    (request,) = stream_requests(fake_scout)
    assert request.path == "/world/a1/sess-7/_interact"
    assert "callback_url" not in json.loads(request.body)


def test_failed_terminal_event_fails_with_scouts_error(
    fake_scout: FakeScout, signal_log: list[Any]
) -> None:
    fake_scout.agent(
        "a1", events=3, outcome="failed", error={"code": "tool_crashed", "message": "boom"}
    )
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code, interaction.error_message) == (
        "failed",
        "tool_crashed",
        "boom",
    )
    assert event_rows(interaction)[-1] == (3, AGENT_STREAM_FAILED)
    assert names(signal_log) == FAILURE


@pytest.mark.parametrize(
    ("mode", "outcome", "signals"),
    [
        # The body ends normally, with no terminal event and no [DONE]: the server closed the
        # stream, which is how Scout's own SDK sees an agent's stream end.
        ("clean", ("succeeded", ""), SUCCESS),
        ("abort", ("failed", "stream_interrupted"), FAILURE),
    ],
)
def test_a_stream_that_stops_after_three_events_ends_and_is_not_resent(
    fake_scout: FakeScout,
    signal_log: list[Any],
    mode: Any,
    outcome: tuple[str, str],
    signals: list[str],
) -> None:
    fake_scout.agent("a1", events=6, cut_off_after=3, cut_off_mode=mode)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == outcome
    assert interaction.completed_at is not None
    assert [sequence for sequence, _ in event_rows(interaction)] == [0, 1, 2]  # kept
    assert interaction.event_count == 3
    assert len(stream_requests(fake_scout)) == 1
    assert names(signal_log) == signals
    assert start_interaction_task.apply(args=(str(interaction.pk),)).get() == "skipped"
    assert len(stream_requests(fake_scout)) == 1


def test_refused_stream_fails_with_the_status_code(
    fake_scout: FakeScout, signal_log: list[Any]
) -> None:
    fake_scout.agent("a1")
    fake_scout.fail_next("POST", STREAM_PATH, 422)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "validation_error")
    assert interaction.accepted_at is None
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]
    assert len(stream_requests(fake_scout)) == 1


@pytest.mark.parametrize("status", [503, 429])
def test_stream_refused_before_anything_started_is_retried(
    fake_scout: FakeScout, signal_log: list[Any], status: int
) -> None:
    fake_scout.agent("a1", events=2)
    fake_scout.fail_next("POST", STREAM_PATH, status, times=2, retry_after=0)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert interaction.status == "succeeded"
    assert interaction.start_attempts == 3
    assert len(stream_requests(fake_scout)) == 3
    assert len(fake_scout.interactions) == 1  # Scout ran it once
    assert names(signal_log) == SUCCESS


def test_stream_retries_exhausted_fail(fake_scout: FakeScout) -> None:
    fake_scout.agent("a1")
    fake_scout.fail_next("POST", STREAM_PATH, 503, times=10)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "http_503")
    assert interaction.error_message.startswith("gave up after retries:")
    assert len(stream_requests(fake_scout)) == 4


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop_connection": True}])
def test_ambiguous_stream_start_is_outcome_unknown(
    fake_scout: FakeScout, signal_log: list[Any], fault: dict[str, Any]
) -> None:
    fake_scout.agent("a1")
    fake_scout.fail_next("POST", STREAM_PATH, **fault)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "outcome_unknown")
    assert "not repeated" in interaction.error_message
    assert len(stream_requests(fake_scout)) == 1
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]
    assert start_interaction_task.apply(args=(str(interaction.pk),)).get() == "skipped"
    assert len(stream_requests(fake_scout)) == 1


def test_an_unexpected_error_mid_stream_ends_it_failed(
    fake_scout: FakeScout, signal_log: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_scout.agent("a1", events=4)
    real = event_store.store_event_stream

    def store(interaction: Interaction, events: Any, *, batch_size: int) -> int:
        (event,) = events
        if event.sequence == 2:
            raise RuntimeError("disk on fire")
        return real(interaction, (event,), batch_size=batch_size)

    monkeypatch.setattr(interactions, "store_event_stream", store)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")
    assert "disk on fire" in interaction.error_message
    assert names(signal_log) == FAILURE


def test_an_unexpected_error_storing_the_streams_end_ends_it_failed(
    fake_scout: FakeScout, signal_log: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_scout.agent("a1", events=2)
    broken = mock.Mock(side_effect=RuntimeError("constraint on fire"))
    monkeypatch.setattr(interactions, "complete_interaction", broken)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")
    assert "constraint on fire" in interaction.error_message
    assert len(stream_requests(fake_scout)) == 1
    assert names(signal_log) == FAILURE


def test_a_briefly_locked_database_mid_stream_is_waited_out(
    fake_scout: FakeScout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task's retry would find the interaction claimed and leave it pending: each write is
    retried in place instead (seen on SQLite with Django 4.2, "database is locked")."""
    fake_scout.agent("a1", events=4)
    real = event_store.store_event_stream
    locked = {1: 2, 3: 1}  # sequence -> times the write is refused

    def store(interaction: Interaction, events: Any, *, batch_size: int) -> int:
        (event,) = events
        if locked.get(event.sequence):
            locked[event.sequence] -= 1
            raise OperationalError("database is locked")
        return real(interaction, (event,), batch_size=batch_size)

    monkeypatch.setattr(interactions, "store_event_stream", store)
    monkeypatch.setattr(common, "STREAM_WRITE_PAUSE", 0.001)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("succeeded", "")
    assert [sequence for sequence, _ in event_rows(interaction)] == list(range(5))
    assert locked == {1: 0, 3: 0}


def locking_at(
    monkeypatch: pytest.MonkeyPatch, lock: DatabaseLock, sequence: int, refusals: int | None = None
) -> None:
    """Lock the database as event ``sequence`` is about to be stored (the store refuses too,
    for PostgreSQL's ``COPY``, which the lock's execute wrapper does not see)."""
    real = event_store.store_event_stream

    def store(interaction: Interaction, events: Any, *, batch_size: int) -> int:
        (event,) = events
        if event.sequence == sequence and not lock.refused:
            lock.lock(refusals)
        lock.refuse()
        return real(interaction, (event,), batch_size=batch_size)

    monkeypatch.setattr(interactions, "store_event_stream", store)


@pytest.mark.parametrize(
    ("sequence", "status", "code"),
    [(2, "failed", "stream_interrupted"), (3, "succeeded", "")],
    ids=["mid-stream", "the-terminal-event"],
)
def test_a_database_locked_as_an_event_is_stored_settles_it_on_the_tasks_retry(
    fake_scout: FakeScout,
    signal_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    database_lock: DatabaseLock,
    sequence: int,
    status: str,
    code: str,
) -> None:
    """The lock outlasts the in-place wait and the outcome's own write: the stream is abandoned,
    and the task's retry stores its outcome without sending anything again. When the refused
    event was the terminal one, the outcome is still the stream's, with its events missing."""
    fake_scout.agent("a1", events=3)  # events 0-2, then the terminal event
    locking_at(monkeypatch, database_lock, sequence)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == (status, code)
    refused = "the database refused writes mid-stream (OperationalError: database is locked)"
    said = interaction.error_message if status == "failed" else interaction.events_error
    assert said.startswith(refused)
    assert interaction.events_missing == (status == "succeeded")
    assert [stored for stored, _ in event_rows(interaction)] == list(range(sequence))  # kept
    assert database_lock.refused == common.STREAM_WRITE_ATTEMPTS + 1
    if status == "succeeded":
        (recorded,) = fake_scout.interactions
        assert interaction.session_id == recorded.session_id  # carried by the refused event
    assert len(stream_requests(fake_scout)) == 1
    assert interaction.start_attempts == 1
    assert names(signal_log) == (FAILURE if status == "failed" else SUCCESS)
    assert start_interaction_task.apply(args=(str(interaction.pk),)).get() == "skipped"
    assert len(stream_requests(fake_scout)) == 1


def test_a_database_locked_at_the_streams_last_write_stores_its_end_on_the_retry(
    fake_scout: FakeScout,
    signal_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    database_lock: DatabaseLock,
) -> None:
    """Every event is stored; the lock comes as the stream's end is written."""
    fake_scout.agent("a1", events=3, reply="the answer")
    complete = interactions.complete_interaction
    locked = locking_before(database_lock, complete, lambda *_: not database_lock.refused)
    monkeypatch.setattr(interactions, "complete_interaction", locked)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("succeeded", "")
    assert database_lock.refused == 1
    assert event_rows(interaction)[-1] == (3, AGENT_STREAM_COMPLETED)
    assert interaction.event_count == 3 + 1
    assert (interaction.events_missing, interaction.events_error) == (False, "")
    assert interaction.events_fetched_at is not None
    (recorded,) = fake_scout.interactions
    assert interaction.session_id == recorded.session_id
    assert len(stream_requests(fake_scout)) == 1
    assert names(signal_log) == SUCCESS


def test_a_database_locked_mid_stream_on_the_last_attempt_still_ends_it(
    fake_scout: FakeScout,
    signal_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    database_lock: DatabaseLock,
) -> None:
    """No retry is left to store the outcome: giving up stores it, waiting out the lock."""
    fake_scout.agent("a1", events=4)
    # The in-place wait at event 2, the outcome's write, then one more refusal when giving up.
    locking_at(monkeypatch, database_lock, 2, refusals=common.STREAM_WRITE_ATTEMPTS + 2)
    with override_settings(SCOUT=fake_scout.scout_settings(TASK_MAX_RETRIES=0)):
        interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert (interaction.status, interaction.error_code) == ("failed", "stream_interrupted")
    assert database_lock.refused == common.STREAM_WRITE_ATTEMPTS + 2
    assert len(stream_requests(fake_scout)) == 1
    assert names(signal_log) == FAILURE


def test_a_stream_outcome_survives_the_trip_through_the_tasks_arguments() -> None:
    outcome = services.StreamOutcome(
        "failed", "tool_crashed", "boom", "2026-03-05T14:30:00+00:00", "s-1", ended=True
    )
    carried = json.loads(json.dumps(outcome.as_dict()))
    assert services.outcome_from_dict(carried) == outcome
    start = services.StartOutcome("accepted", session_id="s-1")
    assert services.outcome_from_dict(json.loads(json.dumps(start.as_dict()))) == start


# --- the stream's end, read by consume_stream ----------------------------------------------------


def test_done_without_a_terminal_event_succeeds(signal_log: list[Any]) -> None:
    interaction = streamed_row()
    events = [session_event(0, "message", {"text": "hi", "session_id": "sess-d"})]
    services.consume_stream(interaction, event_stream(events, done=True))
    interaction = fresh(interaction)
    assert (interaction.status, interaction.session_id) == ("succeeded", "sess-d")
    assert names(signal_log) == SUCCESS


def test_an_error_event_fails_with_its_text(signal_log: list[Any]) -> None:
    interaction = streamed_row()
    events = [session_event(0, "message", {"text": "hi"}), session_event(1, "error", "overloaded")]
    services.consume_stream(interaction, event_stream(events, done=True))
    interaction = fresh(interaction)
    assert (interaction.status, interaction.error_code, interaction.error_message) == (
        "failed",
        "scout_failed",
        "overloaded",
    )
    assert interaction.session_id is None  # no event named one
    assert names(signal_log) == FAILURE


def test_a_stream_with_no_event_at_all_is_incomplete(signal_log: list[Any]) -> None:
    interaction = streamed_row()
    services.consume_stream(interaction, event_stream([]))
    interaction = fresh(interaction)
    assert (interaction.status, interaction.error_code) == ("failed", "stream_incomplete")
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]


def test_reading_the_same_stream_again_changes_nothing(signal_log: list[Any]) -> None:
    interaction = streamed_row()
    events = [
        session_event(0, "message", {"text": "a"}),
        session_event(1, "message", {"text": "b"}),
        session_event(2, "interaction_completed", {"status": "succeeded", "session_id": "s-1"}),
    ]
    services.consume_stream(interaction, event_stream(events))
    stored = list(InteractionEvent.objects.filter(interaction=interaction).values())
    services.consume_stream(fresh(interaction), event_stream(events))
    assert list(InteractionEvent.objects.filter(interaction=interaction).values()) == stored
    assert len(stored) == 3
    assert fresh(interaction).event_count == 3
    assert names(signal_log) == SUCCESS


# --- a callback as well: the interaction ends once -----------------------------------------------


def callback_for(interaction: Interaction, session_id: str, status: str) -> CallbackDelivery:
    """Store a callback naming ``interaction``; Celery is eager, so it is processed at once."""
    payload = CallbackPayload.model_validate(
        {
            "callback_event_id": f"cb-{interaction.pk}",
            "session_id": session_id,
            "status": status,
            "completed_at": "2026-03-05T14:30:00Z",
            "events_url": "https://api.scoutos.test/x/events",
        }
    )
    delivery, _ = services.record_callback(payload, "{}", {}, target_interaction_id=interaction.pk)
    return CallbackDelivery.objects.get(pk=delivery.pk)


def test_a_callback_after_the_stream_ended_changes_nothing(
    fake_scout: FakeScout, signal_log: list[Any]
) -> None:
    fake_scout.agent("a1", events=2)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert interaction.session_id is not None
    delivery = callback_for(interaction, interaction.session_id, "failed")
    assert delivery.processing_error == "interaction was already succeeded"
    assert fresh(interaction).status == "succeeded"
    assert names(signal_log).count("interaction_succeeded") == 1
    assert "interaction_failed" not in names(signal_log)


def test_a_callback_during_the_stream_ends_it_once(signal_log: list[Any]) -> None:
    interaction = streamed_row()
    events = [
        session_event(0, "message", {"text": "a", "session_id": "s-cb"}),
        session_event(1, "interaction_completed", {"status": "succeeded"}),
    ]

    def arrive_midway() -> Generator[SessionEvent, None, None]:
        yield events[0]
        delivery = callback_for(interaction, "s-cb", "succeeded")
        assert (delivery.processed_at, delivery.processing_error) != (None, "")
        assert fresh(interaction).status == "succeeded"  # the callback ended it
        yield events[1]

    services.consume_stream(interaction, EventStream(arrive_midway()))
    interaction = fresh(interaction)
    assert interaction.status == "succeeded"
    assert interaction.event_count == 2
    assert not interaction.events_missing
    assert names(signal_log) == ["interaction_accepted", "callback_received", *SUCCESS[1:]]


def test_a_callback_matched_by_session_never_lands_on_a_streamed_interaction() -> None:
    interaction = streamed_row()
    services.accept_interaction(interaction.pk, "s-shared", "")
    payload = CallbackPayload.model_validate(
        {
            "callback_event_id": "cb-session",
            "session_id": "s-shared",
            "status": "succeeded",
            "completed_at": "2026-03-05T14:30:00Z",
            "events_url": "https://api.scoutos.test/x/events",
        }
    )
    delivery, _ = services.record_callback(payload, "{}", {})
    assert services.process_delivery(delivery.pk) == services.ProcessOutcome.UNMATCHED
    assert fresh(interaction).status == "accepted"


# --- retry_start, the async twin, the fake's pace ------------------------------------------------


@pytest.mark.parametrize("code", ["outcome_unknown", "stream_incomplete", "stream_interrupted"])
def test_retry_start_refuses_a_stream_scout_may_have_run(code: str) -> None:
    interaction = streamed_row(status="failed", error_code=code)
    with pytest.raises(ValueError, match="failed starts"):
        services.retry_start(interaction)


def test_retry_start_keeps_streaming(fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", events=1)
    refused = streamed_row(status="failed", error_code="validation_error")
    retried = fresh(services.retry_start(refused))
    assert (retried.stream, retried.status) == (True, "succeeded")


def test_async_twin_streams(fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", events=2)
    interaction = async_to_sync(astart_interaction)("a1", "hi", stream=True)
    interaction = fresh(interaction)
    assert (interaction.stream, interaction.status) == (True, "succeeded")


def test_events_are_stored_as_they_arrive_not_at_the_end(fake_scout: FakeScout) -> None:
    # The fake paces the stream (0.2 s between events): each row is written when its event
    # arrives, so the rows' creation times spread over the stream (lower bounds only).
    fake_scout.agent("a1", events=6, event_interval=0.2)
    interaction = fresh(start_interaction("a1", "hi", stream=True))
    assert interaction.status == "succeeded"
    created = list(
        InteractionEvent.objects.filter(interaction=interaction)
        .order_by("sequence")
        .values_list("created_at", flat=True)
    )
    assert len(created) == 7
    assert created[-1] - created[0] >= timedelta(seconds=0.5)
    assert interaction.completed_at is not None
    assert interaction.completed_at - created[0] >= timedelta(seconds=0.5)


def test_the_fakes_terminal_names_are_the_ones_the_service_ends_on() -> None:
    assert AGENT_STREAM_COMPLETED in interactions.STREAM_SUCCEEDED_EVENTS
    assert AGENT_STREAM_FAILED in interactions.STREAM_FAILED_EVENTS
