"""Failure paths that must end: a broker outage, poison callbacks, strays, a lost answer, an
unexpected error in any task, a task the services cannot find.

Unit level: Scout is the in-process ``MockScout``; Celery runs eagerly except where a test
publishes to a broker that misbehaves. The same paths run against PostgreSQL, Redis and a
real worker in ``tests/integration/test_outages_e2e.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from django.utils import timezone

from django_scout import services
from django_scout.api import start_interaction
from django_scout.models import CallbackDelivery, DeliveryState, Interaction, WorkflowRun
from django_scout.services import housekeeping, interactions, registry
from django_scout.services.publishing import TaskPublisher
from django_scout.tasks import (
    fetch_events_task,
    process_callback_task,
    reconcile_task,
    start_interaction_task,
)
from tests import celery_app
from tests.helpers import UNIT_SCOUT, Committed, callback_payload, post_callback
from tests.mock_scout import MockScout

# Rolled back after each test; each call that commits in production (a request, a service
# call, a task) runs under ``committed()``, which runs its on_commit callbacks as it ends.
pytestmark = pytest.mark.django_db

BASE_SCOUT: dict[str, Any] = {
    **UNIT_SCOUT,
    "PUBLISH_TIMEOUT": 0.2,
    "PUBLISH_RETRY_AFTER": 30.0,
}


@pytest.fixture(autouse=True)
def _scout_settings() -> Iterator[None]:
    with override_settings(SCOUT=BASE_SCOUT):
        yield


def accepted(committed: Committed) -> Interaction:
    """An interaction Scout (the ``mock_scout`` fixture) accepted."""
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert interaction.status == "accepted"
    return interaction


def names(log: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in log]


# --- 1. the callback answer does not depend on the broker ----------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTask:
    """Stands in for a Celery task whose broker hangs, fails or works."""

    name = "fake"

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.calls = 0
        self.released = threading.Event()
        self.app = mock.Mock()
        self.app.conf.task_always_eager = False

    def apply_async(self, args: Any, retry: bool) -> None:
        self.calls += 1
        if self.behaviour == "slow":
            time.sleep(0.5)
        elif self.behaviour == "hang":
            self.released.wait(10)
        elif self.behaviour == "fail":
            raise OSError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def warm(publisher: TaskPublisher) -> TaskPublisher:
    """A publisher that has published once (its process has imported and connected)."""
    assert publisher.publish(FakeTask("ok"), ()) is True
    return publisher


def test_the_first_publish_of_a_process_has_time_to_connect() -> None:
    publisher = TaskPublisher(clock=FakeClock())
    slow = FakeTask("slow")  # 0.5 s: importing the broker client and connecting
    assert publisher.publish(slow, ()) is True
    assert not publisher.is_open
    assert publisher.publish(slow, ()) is False  # later, 0.5 s is a broker in trouble
    assert publisher.is_open


def test_a_hanging_broker_costs_one_bounded_wait_then_none() -> None:
    clock = FakeClock()
    publisher = warm(TaskPublisher(clock=clock))
    task = FakeTask("hang")
    try:
        started = time.monotonic()
        assert publisher.publish(task, ("a",)) is False
        assert time.monotonic() - started < 2  # PUBLISH_TIMEOUT is 0.2 s; the broker hangs 10 s
        assert publisher.is_open
        started = time.monotonic()
        for _ in range(50):
            assert publisher.publish(task, ("b",)) is False
        assert time.monotonic() - started < 0.5
        assert task.calls == 1  # the open breaker did not touch the broker again
    finally:
        task.released.set()


def test_breaker_probes_after_the_pause_and_closes_on_success() -> None:
    clock = FakeClock()
    publisher = warm(TaskPublisher(clock=clock))
    task = FakeTask("fail")
    assert publisher.publish(task, ()) is False
    assert publisher.publish(task, ()) is False
    assert task.calls == 1
    clock.now += 31  # PUBLISH_RETRY_AFTER passed: one probe, which fails again
    assert publisher.publish(task, ()) is False
    assert task.calls == 2
    clock.now += 31
    task.behaviour = "ok"
    assert publisher.publish(task, ()) is True
    assert not publisher.is_open
    assert publisher.publish(task, ()) is True
    assert task.calls == 4


def test_a_late_success_closes_the_breaker() -> None:
    publisher = warm(TaskPublisher(clock=FakeClock()))
    task = FakeTask("hang")
    assert publisher.publish(task, ()) is False
    assert publisher.is_open
    task.released.set()  # the slow publish completes after all
    deadline = time.monotonic() + 5
    while publisher.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not publisher.is_open


def test_when_every_thread_is_stuck_on_the_broker_publishing_fails_at_once() -> None:
    clock = FakeClock()
    publisher = TaskPublisher(clock=clock, threads=2)
    warm(publisher)
    task = FakeTask("hang")
    try:
        for _ in range(2):  # two probes, PUBLISH_RETRY_AFTER apart, both stuck
            assert publisher.publish(task, ()) is False
            clock.now += 31
        started = time.monotonic()
        assert publisher.publish(task, ()) is False
        # A wait would take at least PUBLISH_TIMEOUT (0.2 s here): no thread is left to wait on.
        assert time.monotonic() - started < 0.2
        assert task.calls == 2
        # The broker answers again: the stuck publishes complete and free their threads.
        task.behaviour = "ok"
        task.released.set()
        clock.now += 31
        deadline = time.monotonic() + 5
        while not publisher.publish(task, ()) and time.monotonic() < deadline:
            clock.now += 31
            time.sleep(0.01)
        assert not publisher.is_open
    finally:
        task.released.set()


@contextmanager
def hanging_broker() -> Iterator[None]:
    """Celery publishes for real (not eagerly) to a broker whose publish hangs."""
    from django_scout.services.batching import batch_publisher
    from django_scout.services.publishing import publisher

    released = threading.Event()
    eager = celery_app.app.conf.task_always_eager
    celery_app.app.conf.task_always_eager = False
    publisher.reset()
    warm(publisher)  # this process published before the broker hung
    try:
        with mock.patch(
            "celery.app.task.Task.apply_async", side_effect=lambda *a, **k: released.wait(10)
        ):
            yield
            # Still hanging: what waits to be published fails now, not later on the batcher's
            # thread once tasks run eagerly again (a task run there would block the next
            # test's ``result.get()`` and use another database connection).
            batch_publisher.flush()
    finally:
        released.set()
        celery_app.app.conf.task_always_eager = eager
        publisher.reset()


def test_callbacks_are_answered_promptly_while_the_broker_hangs(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    client = Client()
    durations = []
    with hanging_broker():
        for _ in range(5):
            payload = callback_payload(str(interaction.session_id))
            started = time.monotonic()
            with committed():  # the answer includes publishing what the commit set off
                response = post_callback(client, payload, interaction_id=interaction.pk)
            durations.append(time.monotonic() - started)
            assert response.status_code == 200
    # Without the bound each answer waited for the broker (here 10 s, or forever).
    assert max(durations) < 2, durations
    assert sum(durations) < 3, durations
    assert CallbackDelivery.objects.filter(state=DeliveryState.PENDING).count() == 5


# --- 2. no poison pill ---------------------------------------------------------------------


@pytest.mark.parametrize("completed_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_out_of_range_completed_at_is_refused_with_the_field_named(
    mock_scout: MockScout, completed_at: str, committed: Committed
) -> None:
    interaction = accepted(committed)
    payload = callback_payload(str(interaction.session_id), completed_at=completed_at)
    with committed():
        response = post_callback(Client(), payload, interaction_id=interaction.pk)
    assert response.status_code == 400
    assert "completed_at" in response.json()["detail"]
    assert not CallbackDelivery.objects.exists()


def stored_poison(interaction: Interaction) -> CallbackDelivery:
    """A delivery stored before the edge refused such payloads (or by any other path)."""
    return CallbackDelivery.objects.create(
        callback_event_id="cb-poison",
        target_interaction_id=interaction.pk,
        session_id=str(interaction.session_id),
        status="succeeded",
        payload={
            "callback_event_id": "cb-poison",
            "session_id": str(interaction.session_id),
            "status": "succeeded",
            "completed_at": "9999-12-31T23:59:59-14:00",
        },
        raw_body="{}",
    )


def test_a_poison_delivery_ends_failed_after_bounded_attempts(
    mock_scout: MockScout, signal_log: list[tuple[str, str]], committed: Committed
) -> None:
    interaction = accepted(committed)
    delivery = stored_poison(interaction)
    with committed():
        assert process_callback_task.apply(args=(delivery.pk,)).get() == "gave_up"
    delivery.refresh_from_db()
    interaction.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.processed_at is not None
    assert delivery.processing_attempts == BASE_SCOUT["TASK_MAX_RETRIES"] + 1
    assert "ValidationError" in delivery.processing_error
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")
    assert "cb-poison" in interaction.error_message
    assert names(signal_log).count("interaction_failed") == 1
    assert names(signal_log)[-1] == "interaction_completed"
    # Never picked up again.
    later = timezone.now() + timedelta(days=3)
    with committed():
        assert services.reconcile(now=later).requeued_deliveries == []


def test_any_unexpected_error_while_processing_ends_in_a_terminal_state(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    with (
        mock.patch.object(
            interactions,
            "complete_interaction",
            side_effect=OverflowError("date value out of range"),
        ),
        committed(),
    ):
        response = post_callback(
            Client(), callback_payload(str(interaction.session_id)), interaction_id=interaction.pk
        )
    assert response.status_code == 200
    delivery = CallbackDelivery.objects.get()
    interaction.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert "OverflowError: date value out of range" in delivery.processing_error
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")


def test_event_timestamps_out_of_range_are_dropped_not_fatal(mock_scout: MockScout) -> None:
    from django_scout.services.common import parse_timestamp

    assert parse_timestamp("9999-12-31T23:59:59-14:00") is None
    assert parse_timestamp("0001-01-01T00:00:00+14:00") is None
    assert parse_timestamp("2026-01-01T00:00:00Z") is not None


UTC = dt_timezone.utc
PLUS_14 = dt_timezone(timedelta(hours=14))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),  # naive: UTC
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        # The range's ends, each side, whatever the offset.
        ("0001-01-02T00:00:00Z", datetime(1, 1, 2, tzinfo=UTC)),
        ("0001-01-02T13:59:59+14:00", None),
        ("0001-12-31T23:59:59+14:00", datetime(1, 12, 31, 9, 59, 59, tzinfo=UTC)),
        ("9999-12-30T00:00:00Z", datetime(9999, 12, 30, tzinfo=UTC)),
        ("9999-12-30T00:00:01Z", None),
        ("9998-12-31T23:59:59-14:00", datetime(9999, 1, 1, 13, 59, 59, tzinfo=UTC)),
        ("not a date", None),
        ("2025-02-30T00:00:00Z", None),
        ("", None),
        (None, None),
        (12, None),
        (datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2026, 1, 1, 14, tzinfo=PLUS_14), datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(1, 1, 1, 23, tzinfo=UTC), None),
        (datetime(9999, 12, 30, 14, tzinfo=PLUS_14), datetime(9999, 12, 30, tzinfo=UTC)),
        (datetime(9999, 12, 31, tzinfo=PLUS_14), None),
    ],
)
def test_event_timestamps_are_read_as_aware_instants_in_range(
    value: object, expected: datetime | None
) -> None:
    from django_scout.services.common import parse_timestamp

    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed is None or parsed.utcoffset() is not None


def test_callback_deadline_applies_even_with_a_pending_delivery(
    mock_scout: MockScout, signal_log: list[tuple[str, str]], committed: Committed
) -> None:
    interaction = accepted(committed)
    with mock.patch("django_scout.tasks.process_callbacks_task.apply_async"), committed():
        post_callback(
            Client(), callback_payload(str(interaction.session_id)), interaction_id=interaction.pk
        )
    assert CallbackDelivery.objects.get().state == DeliveryState.PENDING
    later = timezone.now() + timedelta(seconds=BASE_SCOUT.get("CALLBACK_DEADLINE", 86400) + 60)
    with committed():
        report = services.reconcile(now=later)
    interaction.refresh_from_db()
    assert report.timed_out == [str(interaction.pk)]
    assert (interaction.status, interaction.error_code) == ("failed", "callback_timeout")


# --- 3. strays end -------------------------------------------------------------------------


def stray(committed: Committed, session_id: str = "sess_nobody_started") -> CallbackDelivery:
    """A callback no interaction claims, tried once (as its commit sets off) and kept."""
    with committed():
        response = post_callback(Client(), callback_payload(session_id))
    assert response.status_code == 200
    delivery = CallbackDelivery.objects.get(session_id=session_id)
    assert delivery.state == DeliveryState.PENDING
    assert "no interaction" in delivery.processing_error
    return delivery


def test_strays_are_requeued_with_growing_pauses_not_on_every_run(
    mock_scout: MockScout, committed: Committed
) -> None:
    """A day of reconcile runs, one a minute. Of each stretch with nothing due, only its last
    minute is run: a run's answer depends on the stored rows and ``now`` alone, the rows change
    only when something is requeued, so the minutes skipped would answer as that one does."""
    delivery = stray(committed)
    start = timezone.now()
    requeues = []
    ran = 0
    minute = 1
    while minute < 24 * 60:
        with committed():
            report = services.reconcile(now=start + timedelta(minutes=minute))
        ran += 1
        if report.requeued_deliveries:
            requeues.append(minute)
        delivery.refresh_from_db()
        assert delivery.next_attempt_at is not None
        due = math.ceil((delivery.next_attempt_at - start).total_seconds() / 60)
        minute = max(minute + 1, due - 1)
    assert ran >= 2 * len(requeues) - 1  # a run with nothing due before every requeue but the first
    # Doubling pauses up to an hour: 1, 2, 4, ... 64 minutes, then hourly.
    assert 20 <= len(requeues) <= 35, requeues
    gaps = [b - a for a, b in itertools.pairwise(requeues)]
    assert gaps == sorted(gaps)
    assert max(gaps) <= 61
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING


def test_strays_are_abandoned_after_the_deadline_then_pruned(
    mock_scout: MockScout, committed: Committed
) -> None:
    delivery = stray(committed)
    after_deadline = timezone.now() + timedelta(days=1, minutes=1)
    with committed():
        report = services.reconcile(now=after_deadline)
    assert report.abandoned_deliveries == 1
    assert report.requeued_deliveries == []
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.ABANDONED
    assert delivery.processing_error.startswith("abandoned: not processed within CALLBACK_DEADLINE")
    assert "no interaction" in delivery.processing_error
    with committed():
        again = services.reconcile(now=after_deadline + timedelta(days=1))
    assert (again.abandoned_deliveries, again.requeued_deliveries) == (0, [])
    assert services.prune(30, now=after_deadline + timedelta(days=31))["deliveries"] == 1
    assert not CallbackDelivery.objects.exists()


def test_an_early_callback_is_still_applied_when_its_interaction_is_accepted(
    mock_scout: MockScout, committed: Committed
) -> None:
    early = stray(committed, "sess_1")  # the session MockScout will answer the next start with
    with committed():
        services.reconcile(now=timezone.now() + timedelta(minutes=5))  # pushed back meanwhile
    with committed():
        interaction = start_interaction("agent-1", "hello")
    early.refresh_from_db()
    interaction.refresh_from_db()
    assert early.state == DeliveryState.PROCESSED
    assert interaction.status == "succeeded"


def test_admin_filters_deliveries_by_state(mock_scout: MockScout, committed: Committed) -> None:
    from django.contrib.auth.models import User

    stray(committed)
    with committed():
        services.reconcile(now=timezone.now() + timedelta(days=2))
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    url = "/admin/django_scout/callbackdelivery/"
    abandoned = client.get(url, {"state__exact": "abandoned"}).content.decode()
    pending = client.get(url, {"state__exact": "pending"}).content.decode()
    assert "sess_nobody_started" in abandoned
    assert "sess_nobody_started" not in pending


# --- 4. Scout's first answer is never lost -------------------------------------------------


def flaky_once(real: Any) -> Any:
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(*args, **kwargs)

    return flaky


def test_an_answer_that_could_not_be_stored_is_stored_by_the_retry(
    mock_scout: MockScout, signal_log: list[tuple[str, str]], committed: Committed
) -> None:
    with (
        mock.patch.object(
            interactions,
            "accept_interaction",
            side_effect=flaky_once(interactions.accept_interaction),
        ),
        committed(),
    ):
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert len(mock_scout.start_requests()) == 1  # never sent twice
    assert (interaction.status, interaction.session_id) == ("accepted", "sess_1")
    assert interaction.events_url.endswith("/sess_1/events")
    assert names(signal_log) == ["interaction_accepted"]


def test_a_refusal_that_could_not_be_stored_is_stored_by_the_retry(
    mock_scout: MockScout, committed: Committed
) -> None:
    mock_scout.start_faults = [404]
    with (
        mock.patch.object(
            interactions, "fail_start", side_effect=flaky_once(interactions.fail_start)
        ),
        committed(),
    ):
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert len(mock_scout.start_requests()) == 1
    assert (interaction.status, interaction.error_code) == ("failed", "not_found")


# --- 5. an unexpected error in any task ends its row -----------------------------------------
# Callbacks: the poison tests above and tests/test_callback_batching.py. Runs:
# tests/test_workflows.py::test_an_unexpected_error_in_a_run_ends_it_failed.


@pytest.mark.parametrize(
    ("faults", "target", "error", "sent"),
    [
        (0, "callback_url_for", RuntimeError("boom"), 0),
        (3, "accept_interaction", RuntimeError("boom"), 4),
        (
            0,
            "accept_interaction",
            [OperationalError("database is locked"), RuntimeError("boom")],
            1,
        ),
    ],
    ids=["before-sending", "on-the-last-retry", "storing-the-answer-on-its-retry"],
)
def test_an_unexpected_error_in_a_start_ends_the_interaction_failed(
    mock_scout: MockScout,
    signal_log: list[tuple[str, str]],
    faults: int,
    target: str,
    error: Any,
    sent: int,
    committed: Committed,
) -> None:
    assert faults <= BASE_SCOUT["TASK_MAX_RETRIES"]
    mock_scout.start_faults = [503] * faults
    with mock.patch.object(interactions, target, side_effect=error), committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    assert (interaction.status, interaction.error_code) == ("failed", "processing_error")
    assert "RuntimeError: boom" in interaction.error_message
    assert interaction.completed_at is not None
    assert len(mock_scout.start_requests()) == sent
    assert names(signal_log) == ["interaction_failed", "interaction_completed"]
    # Never sent again.
    with committed():
        assert start_interaction_task.apply(args=(str(interaction.pk),)).get() == "skipped"
    assert len(mock_scout.start_requests()) == sent


def test_an_unexpected_error_in_an_event_fetch_leaves_the_interaction_as_it_ended(
    mock_scout: MockScout, committed: Committed
) -> None:
    interaction = accepted(committed)
    with committed():
        post_callback(
            Client(), callback_payload(str(interaction.session_id)), interaction_id=interaction.pk
        )
    interaction.refresh_from_db()
    ended = (interaction.status, interaction.event_count, interaction.events_fetched_at)
    assert ended[:2] == ("succeeded", mock_scout.events)
    with (
        mock.patch.object(interactions, "store_events", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError, match="boom"),
        committed(),
    ):
        fetch_events_task.apply(args=(str(interaction.pk),)).get()
    interaction.refresh_from_db()
    # The fetch owns no state: the interaction keeps what it ended with.
    assert (interaction.status, interaction.event_count, interaction.events_fetched_at) == ended
    assert (interaction.events_missing, interaction.events_error) == (False, "")


@pytest.mark.parametrize("failing", ["reconcile_interactions", "reconcile_runs"])
def test_an_error_in_one_half_of_reconcile_still_ends_the_others_rows(
    mock_scout: MockScout, failing: str, committed: Committed
) -> None:
    interaction = accepted(committed)
    long_ago = timezone.now() - timedelta(days=3)
    Interaction.objects.filter(pk=interaction.pk).update(accepted_at=long_ago)
    run = WorkflowRun.objects.create(workflow_id="wf", status="running", started_at=long_ago)
    with (
        mock.patch.object(housekeeping, failing, side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError, match="boom"),
        committed(),
    ):
        reconcile_task.apply().get()
    interaction.refresh_from_db()
    run.refresh_from_db()
    if failing == "reconcile_interactions":
        assert (interaction.status, run.status, run.error_code) == (
            "accepted",
            "failed",
            "run_timeout",
        )
    else:
        assert (run.status, interaction.status, interaction.error_code) == (
            "running",
            "failed",
            "callback_timeout",
        )


# --- 6. tasks are objects, never names ------------------------------------------------------


def test_each_slot_of_the_registry_holds_the_task_of_its_name() -> None:
    registered = registry.scout_tasks()
    names_by_slot = {
        field.name: getattr(registered, field.name).name for field in dataclasses.fields(registered)
    }
    assert names_by_slot == {slot: f"django_scout.{slot}" for slot in names_by_slot}
    assert set(names_by_slot) == {
        "start_interaction",
        "process_callback",
        "process_callbacks",
        "run_workflow",
        "fetch_events",
    }
    # Leaving one out fails where the tasks module registers them, as it is imported.
    with pytest.raises(TypeError, match="fetch_events"):
        registry.ScoutTasks(  # type: ignore[call-arg]
            start_interaction=start_interaction_task,
            process_callback=process_callback_task,
            process_callbacks=process_callback_task,
            run_workflow=start_interaction_task,
        )


def test_without_registered_tasks_a_start_fails_at_the_call_and_saves_nothing(
    mock_scout: MockScout, monkeypatch: pytest.MonkeyPatch, committed: Committed
) -> None:
    monkeypatch.setattr(registry, "_registered", None)
    with committed(), pytest.raises(RuntimeError, match="registered no tasks"):
        start_interaction("agent-1", "hello")
    assert not Interaction.objects.exists()
    assert mock_scout.start_requests() == []
