"""Costs grow with the work, not with the history: reconcile and prune, counted in queries.

Each test runs the same work against a small and a ten-times larger history of finished
interactions, runs, events and deliveries and asserts the number of queries is the same. On
PostgreSQL, every statement they run is also checked with ``EXPLAIN`` to be served by an index.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from django_scout import services
from django_scout.models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    WorkflowRun,
)
from tests.helpers import UNIT_SCOUT
from tests.history import (
    LARGE,
    SMALL,
    accepted_interaction,
    analyze,
    count_queries,
    flush,
    plan_of,
    running_run,
    seed_history,
    unindexed_scans,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _settings() -> Iterator[None]:
    with (
        override_settings(SCOUT=UNIT_SCOUT),
        # Reconcile enqueues; what the tasks then do is not reconcile's cost.
        mock_publish(),
    ):
        yield


def mock_publish() -> Any:
    from unittest import mock

    return mock.patch("django_scout.services.publishing.TaskPublisher.publish", return_value=True)


def seed_due_work(now: Any) -> None:
    """A fixed amount of work reconcile must act on: 2 of each kind (streams idle past
    ``STREAM_IDLE_TIMEOUT`` are a kind of their own)."""
    old = now - timedelta(days=2)
    for i in range(2):
        Interaction.objects.create(
            agent_id="agent", messages=[{"content": "x"}], next_attempt_at=old
        )  # never claimed
        accepted_interaction(old)  # overdue
        CallbackDelivery.objects.create(
            callback_event_id=f"due-{i}-{uuid.uuid4()}",
            session_id="sess-unmatched",
            status="succeeded",
            payload={},
            raw_body="{}",
            next_attempt_at=now - timedelta(minutes=1),
        )  # due again
        WorkflowRun.objects.create(workflow_id="wf", next_attempt_at=old)  # never claimed
        running_run(old)  # stuck
        idle = now - timedelta(hours=1)  # within the deadlines, past STREAM_IDLE_TIMEOUT
        # Their workers died mid-stream.
        accepted_interaction(idle, stream=True, stream_progress_at=idle)
        running_run(idle, stream=True, stream_progress_at=idle)


def measure(size: int, prepare: Callable[[], Any], work: Callable[[], Any]) -> int:
    seed_history(size)
    prepare()
    count, _ = count_queries(work)
    return count


def same_cost(prepare: Callable[[], Any], work: Callable[[], Any]) -> int:
    small = measure(SMALL, prepare, work)
    flush()
    large = measure(LARGE, prepare, work)
    assert small == large, f"{small} queries with {SMALL} rows of history, {large} with {LARGE}"
    return small


def test_reconcile_with_nothing_due_is_a_handful_of_queries_whatever_the_history() -> None:
    count = same_cost(lambda: None, services.reconcile)
    # starts due, deliveries abandoned and due, idle streams, overdue accepted and pending, runs
    # due, idle streamed runs, runs stuck running and pending: one indexed statement each
    assert count == 10, count


def test_reconcile_costs_follow_the_due_work_not_the_history() -> None:
    now = timezone.now()
    count = same_cost(lambda: seed_due_work(now), lambda: services.reconcile(now=now))
    # On PostgreSQL, one pg_notify after each commit that failed overdue rows (live progress):
    # for the idle and the overdue interactions, and for the idle and the overdue runs.
    notices = 4 if connection.vendor == "postgresql" else 0
    assert count <= 41 + notices, count


def test_reconcile_acts_on_every_kind_of_due_work() -> None:
    now = timezone.now()
    seed_history(SMALL)
    seed_due_work(now)
    report = services.reconcile(now=now)
    assert (len(report.requeued_starts), len(report.timed_out)) == (2, 2 + 2)
    assert (len(report.requeued_deliveries), len(report.requeued_runs)) == (2, 2)
    assert len(report.timed_out_runs) == 2 + 2
    for model in (Interaction, WorkflowRun):  # the history's finished streams stay as they were
        assert model.objects.filter(stream=True, error_code="stream_interrupted").count() == 2
    again = services.reconcile(now=now)  # everything was pushed back or ended
    assert again.as_dict() == services.ReconcileReport().as_dict()


def test_prune_with_nothing_to_delete_costs_the_same_whatever_the_history() -> None:
    # History finished 2 days ago; a 30-day prune has nothing to delete.
    count = same_cost(lambda: None, lambda: services.prune(30))
    assert count == 3, count


def test_prune_costs_follow_what_it_deletes() -> None:
    def recent_finished_interaction() -> None:
        old = timezone.now() - timedelta(days=40)
        interaction = Interaction.objects.create(
            agent_id="agent",
            messages=[{"content": "x"}],
            status="failed",
            completed_at=old,
            next_attempt_at=None,
        )
        InteractionEvent.objects.bulk_create(
            InteractionEvent(interaction=interaction, sequence=seq) for seq in range(5)
        )
        InteractionEvent.objects.filter(interaction=interaction).update(created_at=old)

    deleted: list[dict[str, int]] = []
    count = same_cost(recent_finished_interaction, lambda: deleted.append(services.prune(30)))
    assert deleted == [{"events": 5, "run_events": 0, "deliveries": 0}] * 2
    assert count == 4, count  # select + delete the events; deliveries and run events: none


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN checks run on PostgreSQL")
def test_a_backlog_of_due_deliveries_is_read_off_the_due_index_in_order() -> None:
    """With most deliveries due, each batch must still stop after its rows: an ``IS NULL``
    term does not fix ``processed_at`` for PostgreSQL's ordering, so the batches are ordered by
    both of ``scout_delivery_due``'s columns (else: every due row sorted, every batch)."""
    import json

    now = timezone.now()
    CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            callback_event_id=f"cb-backlog-{index}",
            session_id="sess",
            status="succeeded",
            payload={},
            raw_body="{}",
            next_attempt_at=now - timedelta(seconds=index),
        )
        for index in range(3000)
    )
    analyze()
    _, statements = count_queries(lambda: services.reconcile(now=now))
    reads = [
        sql
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        and 'FROM "django_scout_callbackdelivery"' in sql
        and "LIMIT" in sql
    ]
    assert reads
    for sql in reads:
        text = json.dumps(plan_of(sql))
        assert '"Sort"' not in text, (sql, text)
        assert "scout_delivery_due" in text, (sql, text)


def test_prune_deletes_all_it_should_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_scout.services import common

    monkeypatch.setattr(common, "DELETE_BATCH", 7)
    seed_history(SMALL, days_ago=40)
    result = services.prune(30)
    assert result == {"events": 3 * SMALL, "run_events": 2 * SMALL, "deliveries": SMALL}
    assert not InteractionEvent.objects.exists()
    assert Interaction.objects.count() == SMALL  # the host's record stays


# --- PostgreSQL: every statement is served by an index ------------------------------------


#: A whole partial index is the work due (pending rows only), never the history.
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN checks run on PostgreSQL")
def test_every_reconcile_and_prune_statement_uses_an_index() -> None:
    now = timezone.now()
    seed_history(SMALL, days_ago=40)
    seed_due_work(now)
    _, statements = count_queries(lambda: services.reconcile(now=now))
    _, pruning = count_queries(lambda: services.prune(30))
    analyze()
    checked: list[str] = []
    failures = {}
    for sql in statements + pruning:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            continue
        from django.db import transaction

        with transaction.atomic():
            problems = unindexed_scans(sql)
        checked.append(sql)
        if problems:
            failures[sql] = problems
    assert len(checked) >= 10
    # The idle-stream reads (interactions, runs): the rows found, then none left.
    assert sum('"stream_progress_at" <=' in sql for sql in checked) >= 4
    assert failures == {}, "\n".join(
        f"…{sql[sql.find(' FROM ') :][:600]} -> {found}" for sql, found in failures.items()
    )
