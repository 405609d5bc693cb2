"""Storing a callback: a bounded number of statements, whatever the history, and its guarantees.

``record_callback`` inserts a new delivery or counts a repeat in a single
``INSERT … ON CONFLICT … DO UPDATE … RETURNING`` on PostgreSQL and SQLite. Nothing of a new
delivery is read back (``callback_received`` receivers get the instance it has); a repeat reads
its stored row in a second query.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_scout import services, signals
from django_scout.models import CallbackDelivery
from django_scout.payloads import CallbackPayload
from django_scout.services import deliveries
from django_scout.services.publishing import publisher
from tests.helpers import UNIT_SCOUT, callback_payload, post_callback

pytestmark = pytest.mark.django_db(transaction=True)

#: Statements per callback on PostgreSQL and SQLite: the insert-or-count for a new delivery;
#: it and the read of the stored row for a repeat.
QUERIES_PER_CALLBACK = 1
QUERIES_PER_REPEAT = 2

needs_upsert = pytest.mark.skipif(
    not deliveries.supports_upsert(connection),
    reason="the database has no INSERT … ON CONFLICT … RETURNING",
)


@pytest.fixture(autouse=True)
def _scout_settings() -> Iterator[None]:
    with override_settings(SCOUT={**UNIT_SCOUT, "FETCH_EVENTS": False, "RECONCILE_GRACE": 90}):
        yield


@pytest.fixture
def published() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """What the callback path enqueues, recorded instead of run (or sent to a broker)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def record(task: Any, args: Any) -> bool:
        sent.append((task.name, tuple(args)))
        return True

    with mock.patch.object(publisher, "publish", side_effect=record):
        yield sent


@pytest.fixture
def no_recorder() -> Iterator[None]:
    """Without the test app's recorder of ``callback_received`` (it writes a row per signal)."""
    from tests.testapp import receivers

    uid = "testapp.callback_received"
    recorder = receivers._receivers[signals.__all__.index("callback_received")]
    signals.callback_received.disconnect(dispatch_uid=uid)
    try:
        yield
    finally:
        signals.callback_received.connect(recorder, weak=False, dispatch_uid=uid)


def record(
    payload: dict[str, Any] | None = None, target: uuid.UUID | None = None
) -> tuple[CallbackDelivery, bool]:
    body = payload or callback_payload()
    text = json.dumps(body)
    return services.record_callback(
        CallbackPayload.model_validate_json(text), text, {"User-Agent": "Scout/1.0"}, target
    )


def history(size: int) -> None:
    """``size`` stored deliveries, some processed, as a busy site accumulates them."""
    now = timezone.now()
    CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            callback_event_id=f"evt_old_{number}",
            session_id=f"sess_{number % 50}",
            status="succeeded",
            payload={"callback_event_id": f"evt_old_{number}"},
            raw_body="{}",
            processed_at=now if number % 2 else None,
            delivery_count=1 + number % 3,
        )
        for number in range(size)
    )


# --- queries per callback ------------------------------------------------------------------


@needs_upsert
@pytest.mark.usefixtures("published", "no_recorder")
@pytest.mark.parametrize("size", [10, 1000])
def test_callback_path_queries_do_not_grow_with_history(size: int) -> None:
    history(size)
    payload = callback_payload()
    client = Client()
    with CaptureQueriesContext(connection) as new:
        assert post_callback(client, payload).json()["duplicate"] is False
    with CaptureQueriesContext(connection) as repeat:
        assert post_callback(client, payload).json()["duplicate"] is True
    assert len(new.captured_queries) == QUERIES_PER_CALLBACK, new.captured_queries
    assert len(repeat.captured_queries) == QUERIES_PER_REPEAT, repeat.captured_queries
    assert new.captured_queries[0]["sql"].startswith("INSERT INTO")
    assert repeat.captured_queries[1]["sql"].startswith("SELECT")
    assert CallbackDelivery.objects.count() == size + 1


@needs_upsert
@pytest.mark.usefixtures("published", "no_recorder")
def test_a_receiver_gets_the_stored_instance_without_a_read() -> None:
    received: list[CallbackDelivery] = []

    def receiver(sender: Any, delivery: CallbackDelivery, **kwargs: Any) -> None:
        received.append(delivery)

    signals.callback_received.connect(receiver, weak=False)
    try:
        with CaptureQueriesContext(connection) as queries:
            delivery, created = record()
    finally:
        signals.callback_received.disconnect(receiver)
    assert created
    assert len(queries.captured_queries) == QUERIES_PER_CALLBACK
    assert received == [delivery]
    assert received[0] is delivery
    stored = CallbackDelivery.objects.get()
    assert (delivery.pk, delivery.delivery_count, delivery.raw_body) == (
        stored.pk,
        1,
        stored.raw_body,
    )


# --- what is stored ------------------------------------------------------------------------


def test_new_delivery_is_stored_once_with_its_due_time(
    published: list[tuple[str, tuple[Any, ...]]],
) -> None:
    target = uuid.uuid4()
    payload = callback_payload("sess_store")
    before = timezone.now()
    delivery, created = record(payload, target)
    after = timezone.now()
    assert created
    assert not delivery._state.adding
    stored = CallbackDelivery.objects.get()
    assert stored.pk == delivery.pk
    assert stored.callback_event_id == payload["callback_event_id"]
    assert stored.target_interaction_id == target
    assert (stored.session_id, stored.status) == ("sess_store", "succeeded")
    assert stored.state == "pending"
    assert stored.payload == payload
    assert stored.raw_body == json.dumps(payload)
    assert stored.headers == {"User-Agent": "Scout/1.0"}
    assert stored.delivery_count == 1
    assert stored.processed_at is None
    assert stored.last_received_at is not None
    assert before <= stored.received_at <= after
    assert stored.next_attempt_at == stored.last_received_at + timedelta(seconds=90)
    assert published == [("django_scout.process_callbacks", ([delivery.pk],))]


def test_repeat_counts_and_returns_the_stored_row(
    published: list[tuple[str, tuple[Any, ...]]],
) -> None:
    payload = callback_payload()
    first, _ = record(payload)
    earlier = timezone.now() - timedelta(minutes=5)
    CallbackDelivery.objects.update(last_received_at=earlier)
    again = {**payload, "note": "a repeat may differ"}
    delivery, created = record(again, uuid.uuid4())
    assert not created
    assert delivery.pk == first.pk
    assert delivery.delivery_count == 2
    # The stored delivery, not the repeat's body.
    assert delivery.raw_body == json.dumps(payload)
    assert delivery.payload == payload
    assert delivery.target_interaction_id is None
    assert delivery.received_at == first.received_at
    assert delivery.last_received_at is not None
    assert delivery.last_received_at > earlier
    stored = CallbackDelivery.objects.get()
    assert (stored.delivery_count, stored.last_received_at) == (2, delivery.last_received_at)
    assert stored.next_attempt_at == first.next_attempt_at
    assert published == [("django_scout.process_callbacks", ([first.pk],))]  # once


@needs_upsert
@pytest.mark.usefixtures("published")
def test_a_count_of_zero_still_reads_as_a_repeat() -> None:
    payload = callback_payload()
    record(payload)
    CallbackDelivery.objects.update(delivery_count=0)
    delivery, created = record(payload)
    assert not created
    assert delivery.delivery_count == 2


def test_callback_received_once_per_distinct_delivery_after_commit(
    published: list[tuple[str, tuple[Any, ...]]],
) -> None:
    seen: list[tuple[int, bool]] = []

    def receiver(sender: Any, delivery: CallbackDelivery, **kwargs: Any) -> None:
        seen.append((delivery.pk, CallbackDelivery.objects.filter(pk=delivery.pk).exists()))

    payload = callback_payload()
    signals.callback_received.connect(receiver, weak=False)
    try:
        with transaction.atomic():
            delivery, _ = record(payload)
            record(payload)
            assert seen == []  # not before the commit
        record(payload)
    finally:
        signals.callback_received.disconnect(receiver)
    assert seen == [(delivery.pk, True)]
    assert CallbackDelivery.objects.get().delivery_count == 3
    assert len(published) == 1


# --- transactions and failures -------------------------------------------------------------


@needs_upsert
@pytest.mark.usefixtures("published")
def test_a_repeat_inside_a_transaction_needs_no_savepoint_and_breaks_nothing() -> None:
    payload = callback_payload()
    record(payload)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            delivery, created = record(payload)
        assert not created
        # The transaction goes on: nothing failed, nothing needs rolling back.
        assert not transaction.get_rollback()
        assert CallbackDelivery.objects.get().delivery_count == 2
    statements = [query["sql"].split()[0].upper() for query in queries.captured_queries]
    assert statements == ["INSERT", "SELECT"]  # no SAVEPOINT
    assert delivery.delivery_count == 2


@needs_upsert
@pytest.mark.usefixtures("published")
def test_a_database_error_inside_a_transaction_marks_it_for_rollback() -> None:
    broken = mock.patch.object(deliveries, "_statement", return_value="INSERT INTO nowhere")
    with broken, transaction.atomic():
        with pytest.raises(DatabaseError):
            record()
        assert transaction.get_rollback()
    assert not CallbackDelivery.objects.exists()


@needs_upsert
@pytest.mark.usefixtures("published")
def test_the_endpoint_answers_503_when_the_statement_fails() -> None:
    with mock.patch.object(deliveries, "_statement", return_value="INSERT INTO nowhere"):
        response = post_callback(Client(), callback_payload())
    assert response.status_code == 503
    assert not CallbackDelivery.objects.exists()


@needs_upsert
@pytest.mark.usefixtures("published")
def test_duplicate_inside_atomic_requests_keeps_the_request_transaction() -> None:
    settings_dict = connections["default"].settings_dict
    settings_dict["ATOMIC_REQUESTS"] = True
    try:
        payload = callback_payload()
        client = Client()
        first = post_callback(client, payload)
        with CaptureQueriesContext(connection) as queries:
            second = post_callback(client, payload)
    finally:
        settings_dict["ATOMIC_REQUESTS"] = False
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["delivery_count"] == 2
    assert not any("SAVEPOINT" in query["sql"].upper() for query in queries.captured_queries)
    assert CallbackDelivery.objects.get().delivery_count == 2


def test_without_the_statement_the_orm_stores_the_same(
    published: list[tuple[str, tuple[Any, ...]]],
) -> None:
    payload = callback_payload()
    with mock.patch.object(deliveries, "supports_upsert", return_value=False):
        first, created = record(payload)
        again, created_again = record(payload)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert again.delivery_count == 2
    assert published == [("django_scout.process_callbacks", ([first.pk],))]


@needs_upsert
@pytest.mark.usefixtures("published")
def test_concurrent_duplicates_store_one_row_and_count_every_delivery() -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
        pytest.skip("an in-memory SQLite database locks whole tables between threads")
    payload = callback_payload()
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(5)
            outcomes.append(record(payload)[1])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(outcomes) == [False] * (workers - 1) + [True]
    stored = CallbackDelivery.objects.get()
    assert stored.delivery_count == workers


# --- the view ------------------------------------------------------------------------------


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*"])
def test_the_answer_is_json_whatever_accept_says(accept: str) -> None:
    payload = callback_payload()
    response = post_callback(Client(), payload, extra_headers={"Accept": accept})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "callback_event_id": payload["callback_event_id"],
        "duplicate": False,
        "delivery_count": 1,
    }


@pytest.mark.parametrize("accept", ["text/html", "application/xml"])
def test_errors_are_json_whatever_accept_says(accept: str) -> None:
    response = post_callback(
        Client(), callback_payload(), secret="forged", extra_headers={"Accept": accept}
    )
    assert response.status_code == 401
    assert "mismatch" in response.json()["detail"]


@needs_upsert
@pytest.mark.usefixtures("published")
def test_a_repeat_whose_row_is_gone_before_it_is_read_answers_with_what_it_knows() -> None:
    payload = callback_payload()
    first, _ = record(payload)
    # As if prune deleted the row between the count and the read.
    with mock.patch("django.db.models.query.QuerySet.first", return_value=None):
        delivery, created = record(payload)
    assert not created
    assert (delivery.pk, delivery.callback_event_id, delivery.delivery_count) == (
        first.pk,
        payload["callback_event_id"],
        2,
    )
