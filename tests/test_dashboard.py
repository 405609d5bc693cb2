"""The admin dashboard: every figure against values computed here independently, the page, its
permissions, the app-index link, and a query count that does not grow with the history."""

from __future__ import annotations

import logging
import re
import statistics
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_scout import dashboard, services
from django_scout.dashboard import (
    DURATION_WINDOW,
    STUCK_LIMIT,
    HourBucket,
    dashboard_data,
    dashboard_view,
    format_duration,
    hourly_chart,
    percentile,
)
from django_scout.models import CallbackDelivery, Interaction, WorkflowRun
from django_scout.services.common import ReconcileReport
from django_scout.services.reconcile_record import (
    LAST_RECONCILE_KEY,
    last_reconcile,
    record_reconcile,
)

pytestmark = pytest.mark.django_db

DASHBOARD_URL = "/admin/django_scout/interaction/dashboard/"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def interaction(
    status: str,
    created: datetime,
    *,
    agent: str = "agent-a",
    completed: datetime | None = None,
    accepted: datetime | None = None,
) -> Interaction:
    """An interaction with these timestamps (``created_at`` is auto_now_add: set afterwards)."""
    row = Interaction.objects.create(agent_id=agent, status=status, next_attempt_at=None)
    Interaction.objects.filter(pk=row.pk).update(
        created_at=created, completed_at=completed, accepted_at=accepted
    )
    return row


def run(
    status: str,
    created: datetime,
    *,
    workflow: str = "wf-a",
    kind: str = "workflow",
    completed: datetime | None = None,
    started: datetime | None = None,
) -> WorkflowRun:
    """A workflow run with these timestamps."""
    row = WorkflowRun.objects.create(
        workflow_id=workflow, kind=kind, status=status, next_attempt_at=None
    )
    WorkflowRun.objects.filter(pk=row.pk).update(
        created_at=created, completed_at=completed, started_at=started
    )
    return row


def delivery(state: str, received: datetime) -> CallbackDelivery:
    """A callback delivery in ``state`` received at ``received``."""
    row = CallbackDelivery.objects.create(
        callback_event_id=str(uuid.uuid4()),
        session_id="sess",
        status="succeeded",
        payload={},
        raw_body="{}",
        state=state,
        next_attempt_at=None,
    )
    CallbackDelivery.objects.filter(pk=row.pk).update(received_at=received)
    return row


def page(client: Client) -> str:
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 200
    return " ".join(unescape(response.content.decode()).split())  # whitespace as one space


# --- counts and failure rates --------------------------------------------------------------

AGES_AND_STATUSES = [
    (timedelta(hours=1), "succeeded"),
    (timedelta(hours=2), "succeeded"),
    (timedelta(hours=3), "failed"),
    (timedelta(hours=23), "pending"),
    (timedelta(hours=25), "succeeded"),
    (timedelta(days=3), "failed"),
    (timedelta(days=3), "failed"),
    (timedelta(days=6, hours=23), "accepted"),
    (timedelta(days=8), "failed"),
    (timedelta(days=30), "succeeded"),
]


def expected_counts(pairs: list[tuple[timedelta, str]], window: timedelta) -> Counter[str]:
    return Counter(status for age, status in pairs if age < window)


def test_counts_by_status_for_24_hours_and_7_days() -> None:
    now = timezone.now()
    for age, status in AGES_AND_STATUSES:
        interaction(status, now - age)
        run("running" if status == "accepted" else status, now - age)
    data = dashboard_data(now)
    for work, open_status in ((data.interactions, "accepted"), (data.runs, "running")):
        day, week = work.windows
        assert (day.label, week.label) == ("last 24 h", "last 7 d")
        for window, length in ((day, timedelta(hours=24)), (week, timedelta(days=7))):
            expected = expected_counts(AGES_AND_STATUSES, length)
            if open_status == "running":
                expected = Counter(
                    {("running" if s == "accepted" else s): n for s, n in expected.items()}
                )
            assert {s: n for s, n in window.counts.items() if n} == dict(expected)
            assert window.total == sum(expected.values())
            assert window.failure_rate == pytest.approx(
                expected["failed"] / (expected["failed"] + expected["succeeded"])
            )
    # Every status is a column, zeros included, in the model's order.
    assert list(data.interactions.windows[0].counts) == [
        "pending",
        "accepted",
        "succeeded",
        "failed",
    ]
    assert data.interactions.windows[0].failure_rate_display == "33.3 %"  # 1 / (2 + 1)
    assert data.interactions.windows[1].failure_rate_display == "50.0 %"  # 3 / (3 + 3)


def test_failure_rate_is_empty_when_nothing_finished() -> None:
    interaction("pending", timezone.now() - timedelta(minutes=5))
    day, _ = dashboard_data().interactions.windows
    assert day.failure_rate is None
    assert day.failure_rate_display == "—"


def test_delivery_counts_by_state_and_failure_rate() -> None:
    now = timezone.now()
    states = [
        (timedelta(hours=1), "processed"),
        (timedelta(hours=2), "processed"),
        (timedelta(hours=3), "abandoned"),
        (timedelta(hours=4), "pending"),
        (timedelta(days=2), "failed"),
        (timedelta(days=9), "failed"),
    ]
    for age, state in states:
        delivery(state, now - age)
    day, week = dashboard_data(now).deliveries
    for window, length in ((day, timedelta(hours=24)), (week, timedelta(days=7))):
        expected = expected_counts(states, length)
        assert {s: n for s, n in window.counts.items() if n} == dict(expected)
        failed = expected["failed"] + expected["abandoned"]
        assert window.failure_rate == pytest.approx(failed / (failed + expected["processed"]))


# --- durations -----------------------------------------------------------------------------


def expected_percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 by the standard library (inclusive method = percentile_cont)."""
    values = [max(0.0, s) for s in seconds]
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]


AGENT_DURATIONS = {
    "agent-a": [float(s) for s in range(1, 21)],
    "agent-b": [0.5, 0.85, 120.0, 125.0, -5.0],  # -5: Scout's clock behind ours, read as 0
}


def seed_durations(now: datetime) -> None:
    for agent, durations in AGENT_DURATIONS.items():
        for i, seconds in enumerate(durations):
            created = now - timedelta(hours=1 + i)
            status = "failed" if i % 4 == 0 else "succeeded"
            interaction(
                status, created, agent=agent, completed=created + timedelta(seconds=seconds)
            )
            run(
                status,
                created,
                workflow=agent.replace("agent", "wf"),
                completed=created + timedelta(seconds=seconds),
            )
    # Not counted: unfinished, finished before the window, or finished without a completion time.
    interaction("accepted", now - timedelta(hours=1), agent="agent-a")
    old = now - DURATION_WINDOW - timedelta(hours=1)
    interaction("succeeded", old, agent="agent-a", completed=old + timedelta(hours=5))
    run("succeeded", old, workflow="wf-a", completed=old + timedelta(hours=5))
    interaction("failed", now - timedelta(hours=2), agent="agent-c", completed=None)


@pytest.mark.parametrize("in_sql", [True, False], ids=["database", "python"])
def test_p50_and_p95_per_agent_and_per_workflow(
    in_sql: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if in_sql and connection.vendor != "postgresql":
        pytest.skip("percentile_cont runs on PostgreSQL")
    monkeypatch.setattr(dashboard, "_percentiles_in_sql", lambda model: in_sql)
    now = timezone.now()
    seed_durations(now)
    data = dashboard_data(now)
    for table, prefix in ((data.interactions.durations, "agent"), (data.runs.durations, "wf")):
        assert table.in_sql is in_sql
        assert not table.capped
        got = {row.name: (row.finished, row.p50, row.p95) for row in table.rows}
        expected = {
            agent.replace("agent", prefix): (len(seconds), *expected_percentiles(seconds))
            for agent, seconds in AGENT_DURATIONS.items()
        }
        assert got.keys() == expected.keys()
        for name, values in expected.items():
            assert got[name] == pytest.approx(values), name
    assert [row.kind for row in data.runs.durations.rows] == ["workflow", "workflow"]


def test_python_percentiles_use_the_latest_rows_and_say_when_capped(
    monkeypatch: pytest.MonkeyPatch, admin_client: Client
) -> None:
    monkeypatch.setattr(dashboard, "_percentiles_in_sql", lambda model: False)
    monkeypatch.setattr(dashboard, "DURATION_SAMPLE_CAP", 3)
    now = timezone.now()
    for hours_ago, seconds in ((1, 1.0), (2, 2.0), (3, 3.0), (4, 100.0), (5, 100.0)):
        created = now - timedelta(hours=hours_ago)
        interaction("succeeded", created, completed=created + timedelta(seconds=seconds))
    table = dashboard_data(now).interactions.durations
    assert (table.sampled, table.capped) == (3, True)
    ((row),) = table.rows
    assert (row.finished, row.p50, row.p95) == pytest.approx((3, 2.0, 2.9))
    assert "Capped: more than 3 finished in the window" in page(admin_client)


def test_percentile_interpolates_like_percentile_cont() -> None:
    samples = [[4.0], [1.0, 2.0], [3.0, 1.0, 10.0, 7.5, 2.25], [float(x * x) for x in range(37)]]
    for values in samples:
        ordered = sorted(values)
        for n in (2, 4, 20, 100):
            if len(ordered) < 2:
                assert percentile(ordered, 0.5) == ordered[0]
                continue
            cuts = statistics.quantiles(ordered, n=n, method="inclusive")
            for i, cut in enumerate(cuts, start=1):
                assert percentile(ordered, i / n) == pytest.approx(cut)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 ms"),
        (-3.0, "0 ms"),
        (0.85, "850 ms"),
        (0.9996, "1.0 s"),
        (1.94, "1.9 s"),
        (59.96, "1 min 00 s"),
        (125.0, "2 min 05 s"),
        (3599.6, "1 h 00 min"),
        (3725.0, "1 h 02 min"),
        (47 * 3600.0, "47 h 00 min"),
        (2 * 86400 + 4 * 3600.0, "2 d 04 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- stuck work ----------------------------------------------------------------------------


def test_oldest_stuck_items_oldest_first_with_age_and_links() -> None:
    now = timezone.now()
    pending = {hours: interaction("pending", now - timedelta(hours=hours)) for hours in (5, 2, 9)}
    accepted = {
        hours: interaction(
            "accepted", now - timedelta(hours=40), accepted=now - timedelta(hours=hours)
        )
        for hours in (1, 30)  # 30 h is past the default CALLBACK_DEADLINE (24 h)
    }
    interaction("succeeded", now - timedelta(days=20), completed=now - timedelta(days=20))
    waiting = {hours: run("pending", now - timedelta(hours=hours)) for hours in (3, 4)}
    running = {
        hours: run("running", now - timedelta(hours=50), started=now - timedelta(hours=hours))
        for hours in (2, 26)
    }
    data = dashboard_data(now)

    def check(group: Any, rows: dict[int, Any], model: str, overdue: set[int]) -> None:
        hours = sorted(rows, reverse=True)  # oldest first
        assert [item.pk for item in group.items] == [str(rows[h].pk) for h in hours]
        assert [item.age for item in group.items] == [timedelta(hours=h) for h in hours]
        assert [item.overdue for item in group.items] == [h in overdue for h in hours]
        assert [item.url for item in group.items] == [
            reverse(f"admin:django_scout_{model}_change", args=[rows[h].pk]) for h in hours
        ]
        assert not group.more

    pending_group, accepted_group = data.interactions.stuck
    assert (pending_group.status, accepted_group.status) == ("pending", "accepted")
    check(pending_group, pending, "interaction", set())
    check(accepted_group, accepted, "interaction", {30})
    assert accepted_group.since_label == "accepted"
    waiting_group, running_group = data.runs.stuck
    check(waiting_group, waiting, "workflowrun", set())
    check(running_group, running, "workflowrun", {26})
    assert running_group.since_label == "started"


def test_a_streamed_row_is_past_its_deadline_once_idle_for_the_stream_timeout() -> None:
    """Reconcile fails an open streamed row ``STREAM_IDLE_TIMEOUT`` (900 s) after its last
    event, long before ``CALLBACK_DEADLINE``/``RUN_DEADLINE``: the dashboard marks it then."""
    now = timezone.now()
    rows = {}
    for minutes in (5, 20):  # one within the idle timeout, one past it
        progress = now - timedelta(minutes=minutes)
        accepted = interaction("accepted", now - timedelta(hours=1), accepted=now)
        running = run("running", now - timedelta(hours=1), started=now)
        for model, row in ((Interaction, accepted), (WorkflowRun, running)):
            model.objects.filter(pk=row.pk).update(stream=True, stream_progress_at=progress)
        rows[minutes] = (accepted, running)
    # Not streamed: the idle timeout does not apply.
    interaction("accepted", now - timedelta(hours=1), accepted=now - timedelta(minutes=30))
    data = dashboard_data(now)
    (_, accepted_group), (_, running_group) = data.interactions.stuck, data.runs.stuck
    for group, index in ((accepted_group, 0), (running_group, 1)):
        overdue = {item.pk for item in group.items if item.overdue}
        assert overdue == {str(rows[20][index].pk)}


def test_stuck_lists_stop_at_the_limit_and_link_to_the_rest() -> None:
    now = timezone.now()
    rows = [run("pending", now - timedelta(minutes=m)) for m in range(1, STUCK_LIMIT + 3)]
    group = dashboard_data(now).runs.stuck[0]
    assert len(group.items) == STUCK_LIMIT
    assert group.items[0].pk == str(rows[-1].pk)
    assert group.more
    assert group.changelist_url == (
        reverse("admin:django_scout_workflowrun_changelist") + "?status__exact=pending"
    )


def test_stuck_items_are_linked_on_the_page(admin_client: Client) -> None:
    now = timezone.now()
    stuck = interaction("accepted", now - timedelta(hours=3), accepted=now - timedelta(hours=2))
    html = page(admin_client)
    link = reverse("admin:django_scout_interaction_change", args=[stuck.pk])
    assert f'<a href="{link}">{stuck.pk}</a>' in html
    assert "2 h 00 min" in html


# --- the chart -----------------------------------------------------------------------------


def test_hourly_buckets_count_by_creation_hour_and_status_now() -> None:
    now = timezone.now()
    created = [
        (now - timedelta(minutes=1), "succeeded"),
        (now - timedelta(minutes=2), "failed"),
        (now - timedelta(hours=5, minutes=30), "pending"),
        (now - timedelta(hours=5, minutes=31), "accepted"),
        (now - timedelta(hours=22), "succeeded"),
        (now - timedelta(hours=25), "failed"),  # before the first bar
    ]
    for moment, status in created:
        interaction(status, moment)
    buckets = dashboard_data(now).interactions.hourly
    assert len(buckets) == 24
    hour = timedelta(hours=1)
    current_hour = now.replace(minute=0, second=0, microsecond=0)  # now is UTC
    assert buckets[-1].start == current_hour
    assert [b.start for b in buckets] == [current_hour - (23 - i) * hour for i in range(24)]
    expected: dict[int, Counter[str]] = {}
    for moment, status in created:
        index = 23 - (current_hour - moment.replace(minute=0, second=0, microsecond=0)) // hour
        if index >= 0:
            column = "open" if status in ("pending", "accepted") else status
            expected.setdefault(index, Counter())[column] += 1
    got = {
        i: Counter({"succeeded": b.succeeded, "failed": b.failed, "open": b.open})
        for i, b in enumerate(buckets)
        if b.total
    }
    assert {i: +c for i, c in got.items()} == expected


def test_chart_geometry_stacks_and_scales_to_the_busiest_hour() -> None:
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    buckets = [
        HourBucket(start, succeeded=3, failed=1, open=0),
        HourBucket(start + timedelta(hours=1)),
        HourBucket(start + timedelta(hours=2), succeeded=1, failed=0, open=1),
    ]
    chart = hourly_chart("Things per hour", "things", buckets)
    assert chart.max_value == 4
    full = chart.baseline - chart.plot_top
    first, empty, third = chart.bars
    assert [(s.css_class, s.count) for s in first.segments] == [("succeeded", 3), ("failed", 1)]
    assert sum(s.height for s in first.segments) == pytest.approx(full)
    assert first.segments[0].y + first.segments[0].height == pytest.approx(chart.baseline)
    assert first.segments[1].y + first.segments[1].height == pytest.approx(first.segments[0].y)
    assert empty.segments == []
    assert empty.total == 0
    assert sum(s.height for s in third.segments) == pytest.approx(full / 2)
    assert third.x > empty.x > first.x
    assert "6 things created in the last 3 hours: 4 succeeded, 1 failed" in chart.description
    assert "3 succeeded, 1 failed, 0 in progress" in first.title


def test_page_draws_an_accessible_svg_chart_with_text_values(admin_client: Client) -> None:
    now = timezone.now()
    # Both in the current hour's bar, even just after the hour turned.
    created = max(now.replace(minute=0, second=0, microsecond=0), now - timedelta(minutes=1))
    interaction("succeeded", created, completed=now)
    interaction("failed", created, completed=now)
    html = page(admin_client)
    svg = re.search(r'<svg xmlns[^>]* role="img".*?</svg>', html)
    assert svg is not None
    assert 'role="img"' in svg.group(0)
    assert 'aria-labelledby="scout-interactions-chart-title scout-interactions-chart-desc"' in (
        svg.group(0)
    )
    assert '<title id="scout-interactions-chart-title">Interactions created per hour' in html
    assert ": 1 succeeded, 1 failed, 0 in progress</title>" in svg.group(0)
    assert 'class="scout-bar-succeeded"' in svg.group(0)
    assert 'class="scout-bar-failed"' in svg.group(0)
    assert "<script" not in html.split('id="content"', 1)[1]


# --- the last reconcile --------------------------------------------------------------------


def test_reconcile_records_itself_and_the_page_shows_it(admin_client: Client) -> None:
    before = timezone.now()
    services.reconcile()
    record = last_reconcile()
    assert record is not None
    assert before <= record.at <= timezone.now()
    assert (record.requeued, record.timed_out, record.abandoned) == (0, 0, 0)
    html = page(admin_client)
    assert re.search(r"Last reconcile: <strong>\d+ ms ago</strong>", html)
    assert "0 requeued, 0 timed out, 0 callbacks abandoned" in html
    # The test settings use the default LocMemCache: the page says how little that shows.
    assert "Recorded in this process's cache (LocMemCache) only" in html


def test_the_record_counts_what_reconcile_did() -> None:
    report = ReconcileReport(
        requeued_starts=["a", "b"],
        requeued_deliveries=[7],
        requeued_runs=["r"],
        abandoned_deliveries=4,
        timed_out=["x"],
        timed_out_runs=["y", "z"],
    )
    record_reconcile(report)
    record = last_reconcile()
    assert record is not None
    assert (record.requeued, record.timed_out, record.abandoned) == (4, 3, 4)


def test_no_reconcile_in_a_per_process_cache_says_so(admin_client: Client) -> None:
    html = page(admin_client)
    assert "not recorded in this process's cache" in html
    assert "configure a shared cache" in html


def test_with_a_shared_cache_the_record_is_shown_plainly(
    admin_client: Client, tmp_path: Path
) -> None:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    with override_settings(CACHES=caches):  # the cache handler is rebuilt on the change
        html = page(admin_client)
        assert "none recorded</strong> in the cache (FileBasedCache)" in html
        record_reconcile(ReconcileReport(timed_out=["x"]))
        html = page(admin_client)
        assert "0 requeued, 1 timed out" in html
        assert "this process's cache" not in html


def test_an_old_reconcile_is_flagged_stale(admin_client: Client) -> None:
    at = timezone.now() - timedelta(hours=2)
    cache.set(
        LAST_RECONCILE_KEY, {"at": at.isoformat(), "requeued": 1, "timed_out": 0, "abandoned": 0}
    )
    status = dashboard_data().last_reconcile
    assert status.stale
    html = page(admin_client)
    assert "<strong>2 h 00 min ago</strong>" in html
    assert "stale: more than 15 min ago" in html


def test_reconcile_survives_a_broken_cache(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "set", broken)
    monkeypatch.setattr(cache, "get", broken)
    with caplog.at_level(logging.WARNING, logger="django_scout"):
        report = services.reconcile()
        assert last_reconcile() is None
    assert report.as_dict() == ReconcileReport().as_dict()
    assert "could not record the reconcile" in caplog.text


@pytest.mark.parametrize(
    "junk",
    ["junk", {"at": "yesterday", "requeued": 0, "timed_out": 0, "abandoned": 0}, {"at": None}],
)
def test_junk_in_the_cache_reads_as_no_record(junk: Any) -> None:
    cache.set(LAST_RECONCILE_KEY, junk)
    assert last_reconcile() is None


# --- access and the app index --------------------------------------------------------------


def test_the_url_is_named_in_the_admin_namespace() -> None:
    assert reverse("admin:django_scout_dashboard") == DASHBOARD_URL


def test_anonymous_users_are_sent_to_the_admin_login() -> None:
    response = Client().get(DASHBOARD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_view_interaction_permission_get_403() -> None:
    assert staff_client("view_workflowrun").get(DASHBOARD_URL).status_code == 403


def test_the_view_itself_refuses_non_staff_users() -> None:
    request = RequestFactory().get(DASHBOARD_URL)
    request.user = User.objects.create_user("plain")
    request.user.user_permissions.add(Permission.objects.get(codename="view_interaction"))
    with pytest.raises(PermissionDenied):
        dashboard_view(request)


def test_sections_follow_the_view_permissions() -> None:
    html = page(staff_client("view_interaction"))
    assert "Interactions" in html
    assert "Workflow runs" not in html
    assert "Callback deliveries" not in html
    everything = page(staff_client("view_interaction", "view_workflowrun", "view_callbackdelivery"))
    assert "Workflow runs" in everything
    assert "Callback deliveries" in everything


def test_page_sits_in_the_admin_with_breadcrumbs(admin_client: Client) -> None:
    html = page(admin_client)
    assert "<title>Scout dashboard |" in html
    breadcrumbs = html.split('class="breadcrumbs"', 1)[1].split("</div>", 1)[0]
    assert reverse("admin:index") in breadcrumbs
    assert reverse("admin:app_list", kwargs={"app_label": "django_scout"}) in breadcrumbs
    assert "Scout dashboard" in breadcrumbs
    assert 'id="user-tools"' in html  # each_context: the admin's header and user links


def test_every_link_on_the_dashboard_opens(admin_client: Client) -> None:
    now = timezone.now()
    seed_durations(now)
    interaction("pending", now - timedelta(hours=1))
    run("running", now - timedelta(hours=1), started=now - timedelta(minutes=30))
    delivery("abandoned", now - timedelta(hours=1))
    links = set(re.findall(r'href="(/admin/django_scout/[^"]*)"', page(admin_client)))
    assert len(links) > 15
    for link in sorted(links):
        response = admin_client.get(link)
        assert response.status_code == 200, link
        assert "?e=1" not in response.get("Location", ""), link


def test_the_app_index_links_to_the_dashboard(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:app_list", kwargs={"app_label": "django_scout"}))
    html = response.content.decode()
    link = f'<a href="{DASHBOARD_URL}" class="button">Dashboard</a>'
    assert link in html
    assert html.index(link) < html.index('id="content-main"')  # above the model list
    other = staff_client("view_workflowrun")
    response = other.get(reverse("admin:app_list", kwargs={"app_label": "django_scout"}))
    assert response.status_code == 200
    assert DASHBOARD_URL not in response.content.decode()


# --- cost ----------------------------------------------------------------------------------

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(work: Any) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        work()
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def seed_old_history(size: int) -> None:
    """``size`` finished interactions, runs and deliveries, all older than the widest window."""
    old = timezone.now() - timedelta(days=10)
    interactions = Interaction.objects.bulk_create(
        Interaction(agent_id=f"agent-{i % 7}", status="succeeded", next_attempt_at=None)
        for i in range(size)
    )
    runs = WorkflowRun.objects.bulk_create(
        WorkflowRun(workflow_id=f"wf-{i % 5}", status="failed", next_attempt_at=None)
        for i in range(size)
    )
    deliveries = CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            callback_event_id=str(uuid.uuid4()),
            session_id="sess",
            status="succeeded",
            payload={},
            raw_body="{}",
            state="processed",
            next_attempt_at=None,
        )
        for _ in range(size)
    )
    finished = {"created_at": old, "completed_at": old + timedelta(seconds=3)}
    Interaction.objects.filter(pk__in=[r.pk for r in interactions]).update(**finished)
    WorkflowRun.objects.filter(pk__in=[r.pk for r in runs]).update(**finished)
    CallbackDelivery.objects.filter(pk__in=[r.pk for r in deliveries]).update(received_at=old)


def test_query_count_does_not_grow_with_the_history(admin_client: Client) -> None:
    now = timezone.now()
    seed_durations(now)  # a fixed amount of recent work
    interaction("pending", now - timedelta(hours=1))
    run("running", now - timedelta(hours=1), started=now - timedelta(minutes=30))
    delivery("pending", now - timedelta(minutes=5))
    counts, seeded = [], 0
    for size in (20, 300):
        seed_old_history(size - seeded)
        seeded = size
        assert Interaction.objects.filter(created_at__lt=now - timedelta(days=7)).count() >= size
        data_queries = statements(dashboard_data)
        page_queries = statements(lambda: page(admin_client))
        counts.append((len(data_queries), len(page_queries)))
    assert counts[0] == counts[1], counts
    data_count, page_count = counts[0]
    assert data_count == 11, data_count
    assert page_count <= 15, page_count


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN checks run on PostgreSQL")
def test_every_dashboard_statement_uses_an_index() -> None:
    from tests.history import analyze, unindexed_scans

    now = timezone.now()
    seed_old_history(50)
    seed_durations(now)
    analyze()
    checked, failures = 0, {}
    for sql in statements(dashboard_data):
        with transaction.atomic():
            problems = unindexed_scans(sql)
        checked += 1
        if problems:
            failures[sql] = problems
    assert checked == 11
    assert failures == {}
