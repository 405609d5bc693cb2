"""The admin stays fast at any size: lists, filters, searches and detail pages run the same
number of queries with ten times the history, pages stay small however many events a run has,
and (on PostgreSQL) every statement they run is served by an index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from django_scout.admin.base import ScaledListMixin
from django_scout.models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    Session,
    WorkflowRun,
    WorkflowRunEvent,
)
from tests.history import (
    LARGE,
    SMALL,
    analyze,
    count_queries,
    flush,
    seed_history,
    unindexed_scans,
)

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/admin/django_scout"


def pages(interaction: Interaction, run: WorkflowRun) -> list[tuple[str, dict[str, str]]]:
    """Every admin page an operator opens, with a filter and a search on each list."""
    delivery = CallbackDelivery.objects.filter(interaction=interaction).first()
    event = InteractionEvent.objects.filter(interaction=interaction).first()
    run_event = WorkflowRunEvent.objects.filter(run=run).first()
    assert delivery
    assert event
    assert run_event
    return [
        (f"{BASE}/interaction/", {}),
        (f"{BASE}/interaction/", {"status__exact": "failed"}),
        (f"{BASE}/interaction/", {"agent": "agent"}),
        (f"{BASE}/interaction/", {"error_code": "scout_failed"}),
        (f"{BASE}/interaction/", {"events_missing__exact": "1"}),
        (
            f"{BASE}/interaction/",
            {"created_at__gte": str(timezone.localtime().replace(hour=0, minute=0))},
        ),
        (f"{BASE}/interaction/", {"q": str(interaction.pk)}),
        (f"{BASE}/interaction/", {"q": delivery.callback_event_id}),
        (f"{BASE}/interaction/{interaction.pk}/change/", {}),
        (f"{BASE}/interactionevent/", {}),
        (f"{BASE}/interactionevent/", {"interaction": str(interaction.pk)}),
        (f"{BASE}/interactionevent/{event.pk}/change/", {}),
        (f"{BASE}/callbackdelivery/", {}),
        (f"{BASE}/callbackdelivery/", {"state__exact": "abandoned"}),
        (f"{BASE}/callbackdelivery/", {"state__exact": "processed"}),
        (f"{BASE}/callbackdelivery/", {"state__exact": "pending"}),
        (f"{BASE}/callbackdelivery/", {"interaction": str(interaction.pk)}),
        (f"{BASE}/callbackdelivery/", {"q": delivery.callback_event_id}),
        (f"{BASE}/callbackdelivery/{delivery.pk}/change/", {}),
        (f"{BASE}/session/", {}),
        (f"{BASE}/session/", {"q": "sess-history-x"}),
        (f"{BASE}/session/{interaction.session_id}/change/", {}),
        (f"{BASE}/workflowrun/", {}),
        (f"{BASE}/workflowrun/", {"status__exact": "failed", "environment": "production"}),
        (f"{BASE}/workflowrun/", {"workflow": "wf"}),
        (f"{BASE}/workflowrun/", {"q": str(run.pk)}),
        (f"{BASE}/workflowrun/{run.pk}/change/", {}),
        (f"{BASE}/workflowrunevent/", {"run": str(run.pk)}),
        (f"{BASE}/workflowrunevent/{run_event.pk}/change/", {}),
    ]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def subject_interaction(events: int) -> tuple[Interaction, WorkflowRun]:
    """The interaction and run whose pages are opened, with ``events`` events each."""
    session = Session.objects.create(session_id=f"sess-subject-{events}", agent_id="agent")
    interaction = Interaction.objects.create(
        agent_id="agent",
        session=session,
        status="failed",
        error_code="scout_failed",
        error_message="boom",
        messages=[{"content": "x"}],
        completed_at=timezone.now(),
        event_count=events,
    )
    InteractionEvent.objects.bulk_create(
        InteractionEvent(interaction=interaction, sequence=i, name="message", data={"t": "x" * 200})
        for i in range(events)
    )
    CallbackDelivery.objects.create(
        callback_event_id=f"cb-subject-{events}",
        interaction=interaction,
        session_id=session.session_id,
        status="failed",
        payload={},
        raw_body="{}",
    )
    run = WorkflowRun.objects.create(
        workflow_id="wf", status="failed", error_code="workflow_failed", event_count=events
    )
    WorkflowRunEvent.objects.bulk_create(
        WorkflowRunEvent(run=run, sequence=i, name="block", data={"t": "y" * 200})
        for i in range(events)
    )
    return interaction, run


def measured_get(client: Client, url: str, params: dict[str, str]) -> tuple[int, list[str], Any]:
    """``client.get`` with its statements counted: ``(count, statements, response)``."""
    responses: list[Any] = []
    count, statements = count_queries(lambda: responses.append(client.get(url, params)))
    return count, statements, responses[0]


def open_all(client: Client, interaction: Interaction, run: WorkflowRun) -> list[tuple[int, int]]:
    """``(queries, bytes)`` of each page."""
    results = []
    for url, params in pages(interaction, run):
        client.get(url, params)  # warm the per-process caches (content types, permissions)
        with transaction.atomic():
            count, _, response = measured_get(client, url, params)
        assert response.status_code == 200, (url, params)
        results.append((count, len(response.content)))
    return results


def test_every_admin_page_costs_the_same_with_ten_times_the_history(staff: Client) -> None:
    seed_history(SMALL)
    small = open_all(staff, *subject_interaction(20))
    flush()
    seed_history(LARGE)
    large = open_all(staff, *subject_interaction(20))
    labels = [f"{url}?{params}" for url, params in pages(*subject_interaction(1))]
    differing = {
        label: (a[0], b[0])
        for label, a, b in zip(labels, small, large, strict=True)
        if a[0] != b[0]
    }
    assert differing == {}


def test_a_huge_run_keeps_its_pages_small(staff: Client) -> None:
    few = open_all(staff, *subject_interaction(20))
    many = open_all(staff, *subject_interaction(2000))
    assert [q for q, _ in few] == [q for q, _ in many]
    assert max(size for _, size in many) < 1_000_000


def test_the_change_page_shows_a_capped_timeline_with_a_link_to_all_events(staff: Client) -> None:
    interaction, _ = subject_interaction(120)
    html = staff.get(f"{BASE}/interaction/{interaction.pk}/change/").content.decode()
    assert "Showing the first 50 of 120 events" in html
    assert f"{BASE}/interactionevent/?interaction={interaction.pk}" in html
    listing = staff.get(f"{BASE}/interactionevent/", {"interaction": str(interaction.pk)})
    assert listing.status_code == 200
    assert "120 interaction events" in listing.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN checks run on PostgreSQL")
def test_every_admin_statement_uses_an_index(staff: Client) -> None:
    # More rows than a page, so every list is paged (LIMITed) as in production.
    seed_history(2 * ScaledListMixin.list_per_page, days_ago=3)
    Session.objects.bulk_create(
        Session(session_id=f"sess-page-{i}", agent_id="agent")
        for i in range(2 * ScaledListMixin.list_per_page)
    )
    interaction, run = subject_interaction(60)
    analyze()
    failures: dict[str, list[str]] = {}
    for url, params in pages(interaction, run):
        _, statements, _ = measured_get(staff, url, params)
        for sql in statements:
            if "django_scout_" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                continue
            with transaction.atomic():
                problems = unindexed_scans(sql)
            if problems:
                where = sql[sql.find(" FROM ") :][:400]
                failures[f"{url}?{params}: …{where}"] = problems
    assert failures == {}, "\n".join(f"{sql} -> {found}" for sql, found in failures.items())


def test_times_read_to_the_second_and_durations_are_rounded_one_way(staff: Client) -> None:
    created = timezone.now().replace(microsecond=0) - timedelta(seconds=90)
    interaction, _ = subject_interaction(2)
    Interaction.objects.filter(pk=interaction.pk).update(
        created_at=created, completed_at=created + timedelta(seconds=1.0699)
    )
    listing = staff.get(f"{BASE}/interaction/").content.decode()
    detail = staff.get(f"{BASE}/interaction/{interaction.pk}/change/").content.decode()
    stamp = timezone.localtime(created).strftime("%Y-%m-%d %H:%M:%S")
    for html in (listing, detail):
        assert stamp in html
        assert "1.1 s" in html
    assert 'class="scout-badge scout-badge--bad">failed<' in listing
