"""Callback processing published in batches, off the request's thread.

:class:`~django_scout.services.batching.BatchPublisher` collects the ids a process hands it
within a short window and publishes them as one message of ``process_callbacks_task``; that
task applies each delivery on its own. The stored delivery stays the outbox throughout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from django.utils import timezone

from django_scout import services, tasks
from django_scout.models import CallbackDelivery, DeliveryState
from django_scout.services import interactions
from django_scout.services.batching import BatchPublisher, batch_publisher
from django_scout.services.publishing import publisher
from tests import celery_app
from tests.helpers import UNIT_SCOUT, callback_payload, post_callback
from tests.mock_scout import MockScout

SCOUT = {**UNIT_SCOUT, "FETCH_EVENTS": False, "RECONCILE_GRACE": 60}


#: Stand-in tasks: what :class:`BatchPublisher` reads of one is its app's eager flag.
class StandInTask:
    app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=False))

    def __init__(self, name: str) -> None:
        self.name = name


LAZY_TASK = StandInTask("lazy")
OTHER_TASK = StandInTask("other")


class Recorder:
    """A ``publish`` that records each call (and may wait until released)."""

    def __init__(self, blocked: bool = False, result: bool = True) -> None:
        self.calls: list[tuple[Any, list[Any], float]] = []
        self.release = threading.Event()
        self.published = threading.Event()
        self.result = result
        if not blocked:
            self.release.set()

    def __call__(self, task: Any, args: Any) -> bool:
        self.release.wait(5)
        (items,) = args
        self.calls.append((task, list(items), time.monotonic()))
        self.published.set()
        return self.result

    def batches(self) -> list[tuple[str, list[Any]]]:
        return [(task.name, items) for task, items, _ in self.calls]


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# --- the batch publisher ----------------------------------------------------------------------


def test_ids_within_the_window_go_as_one_message_after_it() -> None:
    recorder = Recorder()
    batcher = BatchPublisher(publish=recorder, window=0.2)
    started = time.monotonic()
    for item in range(5):
        batcher.add(LAZY_TASK, item)
    assert recorder.calls == []  # nothing is published on the caller's thread
    wait_until(lambda: recorder.calls)
    assert recorder.batches() == [("lazy", [0, 1, 2, 3, 4])]
    assert recorder.calls[0][2] - started >= 0.2
    assert batcher.pending() == 0


def test_later_ids_start_a_new_window() -> None:
    recorder = Recorder()
    batcher = BatchPublisher(publish=recorder, window=0.02)
    batcher.add(LAZY_TASK, 1)
    wait_until(lambda: len(recorder.calls) == 1)
    batcher.add(LAZY_TASK, 2)
    batcher.add(OTHER_TASK, 3)
    wait_until(lambda: len(recorder.calls) == 3)
    assert recorder.batches() == [("lazy", [1]), ("lazy", [2]), ("other", [3])]


def test_a_full_batch_goes_at_once_and_batches_are_bounded() -> None:
    recorder = Recorder()
    batcher = BatchPublisher(publish=recorder, window=30, max_batch=3)
    for item in range(3):
        batcher.add(LAZY_TASK, item)
    wait_until(lambda: recorder.calls)  # long before the 30 s window ends
    assert recorder.batches() == [("lazy", [0, 1, 2])]
    for item in range(3, 11):
        batcher.add(LAZY_TASK, item)
    batcher.flush()  # what the thread did not take yet, cut in threes
    published = [items for _, items in recorder.batches()]
    assert sorted(item for items in published for item in items) == list(range(11))
    assert max(len(items) for items in published) == 3


def test_adding_never_waits_on_a_hung_broker() -> None:
    recorder = Recorder(blocked=True)
    batcher = BatchPublisher(publish=recorder, window=0.0)
    batcher.add(LAZY_TASK, 1)
    started = time.monotonic()
    for item in range(2, 50):
        batcher.add(LAZY_TASK, item)
    assert time.monotonic() - started < 0.5
    recorder.release.set()
    wait_until(lambda: sum(len(items) for _, items, _ in recorder.calls) == 49)


def test_flush_publishes_what_waits_and_waits_for_the_batch_in_flight() -> None:
    recorder = Recorder(blocked=True)
    batcher = BatchPublisher(publish=recorder, window=0.0)
    batcher.add(LAZY_TASK, 1)
    wait_until(lambda: batcher.pending() == 0)  # taken by the thread, held by the broker
    batcher_window = BatchPublisher(publish=recorder, window=30)
    batcher_window.add(LAZY_TASK, 2)
    threading.Timer(0.1, recorder.release.set).start()
    assert batcher_window.flush() == 1  # published now, not after 30 s
    batcher.flush()
    assert sorted(items[0] for _, items in recorder.batches()) == [1, 2]


def test_flush_runs_at_exit_and_a_failed_publish_is_not_counted() -> None:
    recorder = Recorder(result=False)
    batcher = BatchPublisher(publish=recorder, window=30)
    with mock.patch("atexit.register") as register:
        batcher.add(LAZY_TASK, 1)
        batcher.add(LAZY_TASK, 2)
    register.assert_called_once_with(batcher.flush)
    assert batcher.flush() == 0  # the broker refused: left to reconcile
    assert recorder.batches() == [("lazy", [1, 2])]


def test_a_publish_that_raises_does_not_stop_the_thread() -> None:
    calls: list[list[Any]] = []

    def publish(task: Any, args: Any) -> bool:
        calls.append(list(args[0]))
        if len(calls) == 1:
            raise RuntimeError("can't create new thread at interpreter shutdown")
        return True

    batcher = BatchPublisher(publish=publish, window=0.0)
    batcher.add(LAZY_TASK, 1)
    wait_until(lambda: len(calls) == 1)
    batcher.add(LAZY_TASK, 2)
    wait_until(lambda: len(calls) == 2)
    assert calls == [[1], [2]]


def test_a_forked_process_starts_its_own_thread_without_the_parents_ids() -> None:
    recorder = Recorder()
    batcher = BatchPublisher(publish=recorder, window=30)
    batcher.add(LAZY_TASK, "parent")
    batcher._pid = -2  # as in a child process: the parent's thread is not there
    started = threading.active_count()
    batcher.add(LAZY_TASK, "child")
    assert threading.active_count() == started + 1
    batcher.flush()
    assert recorder.batches() == [("lazy", ["child"])]


# --- the callback path ------------------------------------------------------------------------


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """This process publishes to a recorder instead of running tasks inline."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def record(task: Any, args: Any) -> bool:
        sent.append((task.name, tuple(args)))
        return True

    celery_app.app.conf.task_always_eager = False
    try:
        with override_settings(SCOUT=SCOUT), mock.patch.object(publisher, "publish", record):
            yield sent
            batch_publisher.flush()
    finally:
        celery_app.app.conf.task_always_eager = True


def stored(count: int, session_id: str = "sess_batch") -> list[int]:
    now = timezone.now()
    CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            callback_event_id=f"evt_batch_{number}",
            session_id=session_id,
            status="succeeded",
            payload={
                "callback_event_id": f"evt_batch_{number}",
                "session_id": session_id,
                "status": "succeeded",
            },
            raw_body="{}",
            next_attempt_at=now + timedelta(minutes=1),
        )
        for number in range(count)
    )
    return list(CallbackDelivery.objects.order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_new_callbacks_are_published_together_and_repeats_not_at_all(
    recorded: list[tuple[str, tuple[Any, ...]]],
) -> None:
    client = Client()
    payloads = [callback_payload() for _ in range(3)]
    for payload in [*payloads, payloads[0]]:
        assert post_callback(client, payload).status_code == 200
    assert recorded == []  # the answers did not wait for the publish
    batch_publisher.flush()
    pks = list(CallbackDelivery.objects.order_by("pk").values_list("pk", flat=True))
    assert recorded == [("django_scout.process_callbacks", (pks,))]


@pytest.mark.django_db(transaction=True)
def test_a_lost_publish_leaves_the_deliveries_to_reconcile(mock_scout: MockScout) -> None:
    with override_settings(SCOUT=SCOUT):
        interaction = services.start_interaction("agent-1", "hello")
        interaction.refresh_from_db()
        assert interaction.status == "accepted"
        celery_app.app.conf.task_always_eager = False
        try:
            with mock.patch.object(publisher, "publish", return_value=False) as publish:
                response = post_callback(
                    Client(),
                    callback_payload(str(interaction.session_id)),
                    interaction_id=interaction.pk,
                )
                assert response.status_code == 200
                assert batch_publisher.flush() == 0
            assert publish.call_count == 1
        finally:
            celery_app.app.conf.task_always_eager = True
        delivery = CallbackDelivery.objects.get()
        assert delivery.state == DeliveryState.PENDING
        assert services.reconcile().requeued_deliveries == []  # not due yet
        report = services.reconcile(now=timezone.now() + timedelta(seconds=61))
        assert report.requeued_deliveries == [delivery.pk]
        delivery.refresh_from_db()
        interaction.refresh_from_db()
        assert (delivery.state, interaction.status) == (DeliveryState.PROCESSED, "succeeded")


# --- the batch task ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "error", [KeyError("poison"), OperationalError("database is locked")], ids=["error", "database"]
)
def test_the_batch_task_applies_each_delivery_on_its_own(
    mock_scout: MockScout, error: Exception
) -> None:
    with override_settings(SCOUT=SCOUT):
        pks = stored(3)
        failing = pks[1]
        real = interactions.process_delivery

        def process(delivery_id: int, **kwargs: Any) -> str:
            if delivery_id == failing:
                raise error
            return real(delivery_id, **kwargs)

        with (
            mock.patch.object(interactions, "process_delivery", side_effect=process),
            mock.patch.object(tasks.process_callback_task, "apply_async") as retry,
        ):
            outcomes = tasks.process_callbacks_task.apply(args=(pks,)).get()
    assert outcomes == {
        str(pks[0]): "unmatched",
        str(failing): "retrying",
        str(pks[2]): "unmatched",
    }
    # Only the failing one is retried, alone, as the single task's first retry.
    retry.assert_called_once()
    assert retry.call_args.kwargs["args"] == (failing,)
    assert retry.call_args.kwargs["retries"] == 1
    attempts = dict(CallbackDelivery.objects.values_list("pk", "processing_attempts"))
    assert attempts == {pks[0]: 1, failing: 0, pks[2]: 1}


@pytest.mark.django_db(transaction=True)
def test_a_retry_that_cannot_be_published_is_left_to_reconcile(mock_scout: MockScout) -> None:
    with override_settings(SCOUT=SCOUT):
        (pk,) = stored(1)
        with (
            mock.patch.object(interactions, "process_delivery", side_effect=KeyError("poison")),
            mock.patch.object(
                tasks.process_callback_task, "apply_async", side_effect=OSError("broker down")
            ),
        ):
            outcomes = tasks.process_callbacks_task.apply(args=([pk],)).get()
    assert outcomes == {str(pk): "left_to_reconcile"}
    delivery = CallbackDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.next_attempt_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_failing_delivery_in_a_batch_still_ends_after_bounded_attempts(
    mock_scout: MockScout,
) -> None:
    with override_settings(SCOUT=SCOUT):
        pks = stored(2)
        real = interactions.process_delivery

        def process(delivery_id: int, **kwargs: Any) -> str:
            result = real(delivery_id, **kwargs)  # counts the attempt
            if delivery_id == pks[0]:
                raise KeyError("poison")
            return result

        with mock.patch.object(interactions, "process_delivery", side_effect=process):
            outcomes = tasks.process_callbacks_task.apply(args=(pks,)).get()
    # Eager: the retry ran inline, as the single task, until it gave up.
    assert outcomes == {str(pks[0]): "retrying", str(pks[1]): "unmatched"}
    failed = CallbackDelivery.objects.get(pk=pks[0])
    assert failed.state == DeliveryState.FAILED
    assert failed.processing_attempts == SCOUT["TASK_MAX_RETRIES"] + 1


@pytest.mark.django_db(transaction=True)
def test_a_message_of_the_single_delivery_task_still_runs(mock_scout: MockScout) -> None:
    """Messages an older version queued name the single task: it stays registered."""
    with override_settings(SCOUT=SCOUT):
        (pk,) = stored(1)
        single = celery_app.app.tasks["django_scout.process_callback"]
        assert single.apply(args=(pk,)).get() == "unmatched"
    assert celery_app.app.tasks["django_scout.process_callbacks"].name == (
        tasks.process_callbacks_task.name
    )
