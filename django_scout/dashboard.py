"""The admin dashboard: recent volumes, failure rates, durations, stuck work and the last reconcile.

:func:`dashboard_data` computes every figure in a fixed number of indexed queries (eleven,
bounded by the 24-hour and 7-day windows or by ``LIMIT``, never by the whole history);
:func:`dashboard_view` renders it in the admin; :func:`dashboard_urls` gives the URL to mount on
an admin site::

    def get_urls(self):
        return [*dashboard_urls(self.admin_site), *super().get_urls()]

See ``docs/admin.md`` (Dashboard) for what each figure means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied
from django.db import connections, models, router
from django.db.models import Aggregate, Count, DurationField, F, Q, Value
from django.db.models.functions import Greatest, TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone

from .conf import scout_settings
from .formatting import format_duration
from .models import (
    CallbackDelivery,
    DeliveryState,
    Interaction,
    InteractionStatus,
    WorkflowRun,
    WorkflowRunKind,
    WorkflowRunStatus,
)
from .services.due import idle_cutoff
from .services.reconcile_record import ReconcileRecord, last_reconcile

__all__ = [
    "CHART_HOURS",
    "DURATION_SAMPLE_CAP",
    "DURATION_WINDOW",
    "STALE_RECONCILE",
    "STUCK_LIMIT",
    "VIEW_PERMISSION",
    "WINDOWS",
    "Chart",
    "ChartBar",
    "ChartSegment",
    "Dashboard",
    "DurationRow",
    "DurationTable",
    "HourBucket",
    "ReconcileStatus",
    "StuckItem",
    "StuckList",
    "WindowCounts",
    "WorkSummary",
    "can_view_dashboard",
    "dashboard_data",
    "dashboard_urls",
    "dashboard_view",
    "format_duration",
    "hourly_chart",
    "percentile",
]

#: The windows counted by status: label and length.
WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("last 24 h", timedelta(hours=24)),
    ("last 7 d", timedelta(days=7)),
)
#: Durations (p50/p95) are computed over the work created in this window.
DURATION_WINDOW = timedelta(days=7)
#: Off PostgreSQL, percentiles are computed in Python from at most this many latest rows per kind.
DURATION_SAMPLE_CAP = 20_000
#: How many of the oldest stuck items each list shows.
STUCK_LIMIT = 10
#: Hours in the per-hour charts (the last one is the current, partial hour).
CHART_HOURS = 24
#: A recorded reconcile older than this is flagged (beat runs it every minute).
STALE_RECONCILE = timedelta(minutes=15)
#: The permission the dashboard needs, besides being active staff.
VIEW_PERMISSION = "django_scout.view_interaction"

_FINISHED = ("succeeded", "failed")


# --- formatting ----------------------------------------------------------------------------


def _format_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``sorted_values`` (ascending, not empty).

    Linear interpolation between the closest ranks: what PostgreSQL's ``percentile_cont``
    returns, so both ways of computing the dashboard agree.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = fraction * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    low, high = sorted_values[lower], sorted_values[upper]
    return low + (high - low) * (position - lower)


# --- the figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowCounts:
    """How many rows were created (received, for deliveries) in one window, by status."""

    label: str
    since: datetime
    #: Every known status (zeros included, in the model's order), then any unexpected one.
    counts: dict[str, int]
    #: Statuses that count as a success / a failure for :attr:`failure_rate`.
    succeeded: tuple[str, ...] = ("succeeded",)
    failed: tuple[str, ...] = ("failed",)
    #: Admin changelist links per status (filtered by status and window), when known.
    links: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All rows in the window, whatever their status."""
        return sum(self.counts.values())

    @property
    def failure_rate(self) -> float | None:
        """failed / (succeeded + failed) in the window; ``None`` when nothing finished."""
        failed = sum(self.counts.get(status, 0) for status in self.failed)
        finished = failed + sum(self.counts.get(status, 0) for status in self.succeeded)
        return failed / finished if finished else None

    @property
    def failure_rate_display(self) -> str:
        """The failure rate as a percentage, or a dash."""
        return _format_rate(self.failure_rate)

    def cells(self) -> list[tuple[str, int, str]]:
        """``(status, count, changelist link)`` in column order, for the template."""
        return [(status, n, self.links.get(status, "")) for status, n in self.counts.items()]


@dataclass(frozen=True)
class DurationRow:
    """Duration percentiles of one agent's (or workflow's) finished work."""

    name: str
    kind: str
    finished: int
    #: Seconds from creation to completion.
    p50: float
    p95: float
    link: str = ""

    @property
    def p50_display(self) -> str:
        """The median, formatted."""
        return format_duration(self.p50)

    @property
    def p95_display(self) -> str:
        """The 95th percentile, formatted."""
        return format_duration(self.p95)


@dataclass(frozen=True)
class DurationTable:
    """Percentiles per agent or per workflow over :data:`DURATION_WINDOW`."""

    rows: list[DurationRow]
    #: True on PostgreSQL: ``percentile_cont`` over every finished row of the window.
    in_sql: bool
    #: Rows read to compute in Python (off PostgreSQL).
    sampled: int = 0
    #: True when more rows finished than :data:`DURATION_SAMPLE_CAP`: only the latest were used.
    capped: bool = False


@dataclass(frozen=True)
class StuckItem:
    """One unfinished interaction or run, and how long it has waited in its status."""

    pk: str
    name: str
    status: str
    #: When it entered its status (created, accepted or started).
    since: datetime
    age: timedelta
    #: Past the deadline after which reconcile fails it (reconcile has not run since?): the
    #: status's deadline, or for a streamed row ``STREAM_IDLE_TIMEOUT`` since its last event.
    overdue: bool
    url: str

    @property
    def age_display(self) -> str:
        """The age, formatted."""
        return format_duration(self.age.total_seconds())


@dataclass(frozen=True)
class StuckList:
    """The oldest items in one unfinished status (at most :data:`STUCK_LIMIT`)."""

    status: str
    #: What ``since`` means for this status: ``created``, ``accepted`` or ``started``.
    since_label: str
    items: list[StuckItem]
    #: More items wait in this status than are listed.
    more: bool
    changelist_url: str
    deadline: timedelta | None


@dataclass(frozen=True)
class HourBucket:
    """Work created in one hour, by what became of it."""

    start: datetime
    succeeded: int = 0
    failed: int = 0
    #: Still pending, accepted or running.
    open: int = 0

    @property
    def total(self) -> int:
        """Everything created in the hour."""
        return self.succeeded + self.failed + self.open


@dataclass(frozen=True)
class WorkSummary:
    """The figures for interactions, or for workflow runs."""

    title: str
    windows: list[WindowCounts]
    hourly: list[HourBucket]
    durations: DurationTable
    stuck: list[StuckList]


@dataclass(frozen=True)
class ReconcileStatus:
    """The last reconcile as recorded in the cache, and how far to trust the cache."""

    record: ReconcileRecord | None
    age: timedelta | None
    #: ``LocMemCache``, ``DummyCache`` or the cache backend's class name.
    cache_backend: str
    #: The default cache is not shared between processes (or stores nothing).
    per_process: bool
    stale: bool

    @property
    def age_display(self) -> str:
        """How long ago, formatted."""
        return "" if self.age is None else format_duration(self.age.total_seconds())


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, as of :attr:`now`."""

    now: datetime
    interactions: WorkSummary
    runs: WorkSummary
    deliveries: list[WindowCounts]
    last_reconcile: ReconcileStatus


# --- queries -------------------------------------------------------------------------------


class _PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        # A float literal in the SQL: never user input.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def _admin_url(site_name: str, name: str, *args: Any, query: dict[str, str] | None = None) -> str:
    """An admin URL, or ``""`` when the site does not serve it."""
    try:
        url = reverse(f"{site_name}:{name}", args=args)
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(query)}" if query else url


def _window_counts(
    model: type[models.Model],
    *,
    date_field: str,
    status_field: str,
    statuses: Iterable[str],
    now: datetime,
    changelist: str,
    site_name: str,
    succeeded: tuple[str, ...] = ("succeeded",),
    failed: tuple[str, ...] = ("failed",),
) -> list[WindowCounts]:
    """Counts by status for every window of :data:`WINDOWS`: one ``GROUP BY`` over the widest."""
    starts = [(label, now - length) for label, length in WINDOWS]
    widest = min(since for _, since in starts)
    aggregates = {
        f"window_{i}": Count("pk", filter=Q(**{f"{date_field}__gte": since}))
        for i, (_, since) in enumerate(starts)
    }
    rows = list(
        model._default_manager.filter(**{f"{date_field}__gte": widest})
        .values(status_field)
        .annotate(**aggregates)
        .order_by()
    )
    windows = []
    for i, (label, since) in enumerate(starts):
        counts = dict.fromkeys(statuses, 0)
        for row in rows:
            counts[row[status_field]] = counts.get(row[status_field], 0) + row[f"window_{i}"]
        links = {
            status: _admin_url(
                site_name,
                changelist,
                query={f"{status_field}__exact": status, f"{date_field}__gte": since.isoformat()},
            )
            for status in counts
        }
        windows.append(WindowCounts(label, since, counts, succeeded, failed, links))
    return windows


def _percentiles_in_sql(model: type[models.Model]) -> bool:
    return connections[router.db_for_read(model)].vendor == "postgresql"


@dataclass(frozen=True)
class _WorkKind:
    """What differs between interactions and workflow runs on the dashboard."""

    model: type[models.Model]
    title: str
    statuses: tuple[str, ...]
    #: The unfinished status after ``pending``, the field saying since when, and its label.
    started_status: str
    started_field: str
    started_label: str
    #: The setting after which reconcile fails work stuck in ``started_status``.
    deadline_setting: str
    #: Durations are grouped by these fields; ``name_of`` makes a group's (name, kind) labels.
    group: tuple[str, ...]
    name_of: Callable[[tuple[Any, ...]], tuple[str, str]]
    #: What names an item in the stuck lists.
    name_field: str

    @property
    def changelist(self) -> str:
        """The URL name of the model's admin list."""
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_changelist"


def _durations(
    model: type[models.Model],
    group: tuple[str, ...],
    name_of: Callable[[tuple[Any, ...]], tuple[str, str]],
    link_of: Callable[[tuple[Any, ...]], str],
    now: datetime,
) -> DurationTable:
    """p50/p95 of ``completed_at - created_at`` per ``group`` over the finished work of the window.

    One query: ``percentile_cont`` grouped in SQL on PostgreSQL; elsewhere the latest
    :data:`DURATION_SAMPLE_CAP` finished rows, read in ``created_at`` order.
    """
    finished = model._default_manager.filter(
        status__in=_FINISHED, created_at__gte=now - DURATION_WINDOW, completed_at__isnull=False
    )

    def row(key: tuple[Any, ...], count: int, p50: float, p95: float) -> DurationRow:
        name, kind = name_of(key)
        return DurationRow(name, kind, count, p50, p95, link_of(key))

    if _percentiles_in_sql(model):
        # Clamped at zero like ``Interaction.duration``: completed_at is Scout's clock.
        elapsed = Greatest(
            F("completed_at") - F("created_at"),
            Value(timedelta(0), output_field=DurationField()),
            output_field=DurationField(),
        )
        rows = (
            finished.values(*group)
            .annotate(
                finished=Count("pk"),
                p50=_PercentileCont(elapsed, 0.5, output_field=DurationField()),
                p95=_PercentileCont(elapsed, 0.95, output_field=DurationField()),
            )
            .order_by(*group)
        )
        return DurationTable(
            [
                row(
                    tuple(r[f] for f in group),
                    r["finished"],
                    r["p50"].total_seconds(),
                    r["p95"].total_seconds(),
                )
                for r in rows
            ],
            in_sql=True,
        )
    sample = list(
        finished.order_by("-created_at").values_list(*group, "created_at", "completed_at")[
            : DURATION_SAMPLE_CAP + 1
        ]
    )
    capped = len(sample) > DURATION_SAMPLE_CAP
    del sample[DURATION_SAMPLE_CAP:]
    seconds: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for *key, created_at, completed_at in sample:
        seconds[tuple(key)].append(max(0.0, (completed_at - created_at).total_seconds()))
    rows_in_python = []
    for key in sorted(seconds):
        values = sorted(seconds[key])
        rows_in_python.append(
            row(key, len(values), percentile(values, 0.5), percentile(values, 0.95))
        )
    return DurationTable(rows_in_python, in_sql=False, sampled=len(sample), capped=capped)


def _stuck(
    kind: _WorkKind,
    *,
    status: str,
    since_field: str,
    since_label: str,
    deadline: timedelta | None,
    now: datetime,
    site_name: str,
) -> StuckList:
    """The oldest rows in ``status`` by ``since_field``: served by the ``(status, since)`` index."""
    meta = kind.model._meta
    rows = list(
        kind.model._default_manager.filter(status=status)
        .order_by(since_field)
        .values("pk", kind.name_field, "created_at", since_field, "stream_progress_at")[
            : STUCK_LIMIT + 1
        ]
    )
    idle_since = idle_cutoff(now)
    items = []
    for row in rows[:STUCK_LIMIT]:
        since = row[since_field] or row["created_at"]
        age = now - since
        progress = row["stream_progress_at"]  # set on streamed rows only
        idle = progress is not None and progress <= idle_since
        items.append(
            StuckItem(
                pk=str(row["pk"]),
                name=row[kind.name_field] or "—",
                status=status,
                since=since,
                age=age,
                overdue=idle or (deadline is not None and age >= deadline),
                url=_admin_url(site_name, f"{meta.app_label}_{meta.model_name}_change", row["pk"]),
            )
        )
    changelist = _admin_url(site_name, kind.changelist, query={"status__exact": status})
    return StuckList(status, since_label, items, len(rows) > STUCK_LIMIT, changelist, deadline)


def _hour_floor(moment: datetime) -> datetime:
    if timezone.is_aware(moment):
        moment = moment.astimezone(dt_timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0)


def _hourly(
    model: type[models.Model], open_statuses: Iterable[str], now: datetime
) -> list[HourBucket]:
    """Rows created per (UTC) hour over the last :data:`CHART_HOURS` hours, by status now."""
    first = _hour_floor(now) - timedelta(hours=CHART_HOURS - 1)
    rows = (
        model._default_manager.filter(created_at__gte=first)
        .annotate(hour=TruncHour("created_at", tzinfo=dt_timezone.utc))
        .values("hour", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    tally: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    open_set = set(open_statuses)
    for row in rows:
        hour = _hour_floor(row["hour"])
        column = "open" if row["status"] in open_set else row["status"]
        tally[hour][column] += row["n"]
    buckets = []
    for i in range(CHART_HOURS):
        start = first + timedelta(hours=i)
        counts = tally.get(start, {})
        buckets.append(
            HourBucket(
                start,
                succeeded=counts.get("succeeded", 0),
                failed=counts.get("failed", 0),
                open=counts.get("open", 0),
            )
        )
    return buckets


def _reconcile_status(now: datetime) -> ReconcileStatus:
    default = caches["default"]
    record = last_reconcile()
    age = None if record is None else max(timedelta(0), now - record.at)
    return ReconcileStatus(
        record=record,
        age=age,
        cache_backend=type(default).__name__,
        # A LocMemCache is one process's memory; a DummyCache keeps nothing at all.
        per_process=isinstance(default, (LocMemCache, DummyCache)),
        stale=age is not None and age > STALE_RECONCILE,
    )


def _run_name(key: tuple[Any, ...]) -> tuple[str, str]:
    kind, workflow_id = key
    try:
        kind_label = str(WorkflowRunKind(kind).label)
    except ValueError:
        kind_label = kind
    return workflow_id or "(inline config)", kind_label


_INTERACTIONS = _WorkKind(
    model=Interaction,
    title="Interactions",
    statuses=tuple(status.value for status in InteractionStatus),
    started_status="accepted",
    started_field="accepted_at",
    started_label="accepted",
    deadline_setting="CALLBACK_DEADLINE",
    group=("agent_id",),
    name_of=lambda key: (key[0], ""),
    name_field="agent_id",
)
_RUNS = _WorkKind(
    model=WorkflowRun,
    title="Workflow runs",
    statuses=tuple(status.value for status in WorkflowRunStatus),
    started_status="running",
    started_field="started_at",
    started_label="started",
    deadline_setting="RUN_DEADLINE",
    group=("kind", "workflow_id"),
    name_of=_run_name,
    name_field="workflow_id",
)


def _summary(kind: _WorkKind, now: datetime, site_name: str) -> WorkSummary:
    """Counts, hourly buckets, durations and stuck lists of one kind of work: seven queries."""
    deadline = timedelta(seconds=getattr(scout_settings(), kind.deadline_setting))

    def group_link(key: tuple[Any, ...]) -> str:
        query = {f"{name}__exact": value for name, value in zip(kind.group, key, strict=True)}
        return _admin_url(site_name, kind.changelist, query=query)

    return WorkSummary(
        title=kind.title,
        windows=_window_counts(
            kind.model,
            date_field="created_at",
            status_field="status",
            statuses=kind.statuses,
            now=now,
            changelist=kind.changelist,
            site_name=site_name,
        ),
        hourly=_hourly(kind.model, ("pending", kind.started_status), now),
        durations=_durations(kind.model, kind.group, kind.name_of, group_link, now),
        stuck=[
            _stuck(
                kind,
                status="pending",
                since_field="created_at",
                since_label="created",
                deadline=None,
                now=now,
                site_name=site_name,
            ),
            _stuck(
                kind,
                status=kind.started_status,
                since_field=kind.started_field,
                since_label=kind.started_label,
                deadline=deadline,
                now=now,
                site_name=site_name,
            ),
        ],
    )


def dashboard_data(now: datetime | None = None, *, site_name: str = "admin") -> Dashboard:
    """Every figure of the dashboard as of ``now``, in eleven queries whatever the history.

    Links point into the admin site named ``site_name`` (empty when it does not serve them).
    """
    now = now or timezone.now()
    deliveries = _window_counts(
        CallbackDelivery,
        date_field="received_at",
        status_field="state",
        statuses=[state.value for state in DeliveryState],
        now=now,
        changelist="django_scout_callbackdelivery_changelist",
        site_name=site_name,
        succeeded=(DeliveryState.PROCESSED.value,),
        failed=(DeliveryState.FAILED.value, DeliveryState.ABANDONED.value),
    )
    return Dashboard(
        now,
        _summary(_INTERACTIONS, now, site_name),
        _summary(_RUNS, now, site_name),
        deliveries,
        _reconcile_status(now),
    )


# --- the chart -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartSegment:
    """One coloured part of a bar."""

    css_class: str
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class ChartBar:
    """One hour's stacked bar."""

    x: float
    width: float
    #: The bar's middle, where its total is written.
    center: float
    title: str
    total: int
    #: Where the total's label sits (above the bar).
    top: float
    segments: list[ChartSegment]
    #: The hour's label under the axis, on every sixth bar only.
    tick: str


@dataclass(frozen=True)
class Chart:
    """Geometry of an inline SVG bar chart (user units of its ``viewBox``)."""

    title: str
    description: str
    width: float
    height: float
    baseline: float
    plot_top: float
    left: float
    max_value: int
    bars: list[ChartBar]
    buckets: list[HourBucket]


_BAR, _GAP, _LEFT, _TOP, _PLOT, _BOTTOM = 14.0, 4.0, 30.0, 14.0, 90.0, 18.0


def _hour_label(moment: datetime) -> str:
    return (timezone.localtime(moment) if timezone.is_aware(moment) else moment).strftime("%H:%M")


def hourly_chart(title: str, noun: str, buckets: Sequence[HourBucket]) -> Chart:
    """A stacked bar per hour (succeeded, failed, still open), sized to the busiest hour."""
    highest = max((bucket.total for bucket in buckets), default=0)
    scale = _PLOT / max(1, highest)
    baseline = _TOP + _PLOT
    bars = []
    for i, bucket in enumerate(buckets):
        x = _LEFT + i * (_BAR + _GAP)
        y = baseline
        segments = []
        for css_class, count in (
            ("succeeded", bucket.succeeded),
            ("failed", bucket.failed),
            ("open", bucket.open),
        ):
            if count:
                height = count * scale
                y -= height
                segments.append(ChartSegment(css_class, round(y, 2), round(height, 2), count))
        start, end = _hour_label(bucket.start), _hour_label(bucket.start + timedelta(hours=1))
        bars.append(
            ChartBar(
                x=x,
                width=_BAR,
                center=x + _BAR / 2,
                title=(
                    f"{start} to {end}: {bucket.succeeded} succeeded, {bucket.failed} failed, "
                    f"{bucket.open} in progress"
                ),
                total=bucket.total,
                top=round(y - 2, 2),
                segments=segments,
                tick=start if i % 6 == 0 else "",
            )
        )
    total = sum(bucket.total for bucket in buckets)
    description = (
        f"{total} {noun} created in the last {len(buckets)} hours: "
        f"{sum(b.succeeded for b in buckets)} succeeded, {sum(b.failed for b in buckets)} "
        f"failed, {sum(b.open for b in buckets)} still in progress; busiest hour: {highest}."
    )
    return Chart(
        title=title,
        description=description,
        width=_LEFT + len(buckets) * (_BAR + _GAP),
        height=baseline + _BOTTOM,
        baseline=baseline,
        plot_top=_TOP,
        left=_LEFT,
        max_value=highest,
        bars=bars,
        buckets=list(buckets),
    )


# --- the view ------------------------------------------------------------------------------


def can_view_dashboard(user: Any) -> bool:
    """Active staff with :data:`VIEW_PERMISSION` (superusers have every permission)."""
    return bool(
        getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and user.has_perm(VIEW_PERMISSION)
    )


def dashboard_view(request: HttpRequest, admin_site: AdminSite | None = None) -> HttpResponse:
    """The dashboard page, inside ``admin_site`` (the default site unless given); 403 without
    :func:`can_view_dashboard`.
    """
    site = admin_site or admin.site
    if not can_view_dashboard(request.user):
        raise PermissionDenied("the Scout dashboard needs the 'view interaction' permission")
    request.current_app = site.name
    data = dashboard_data(site_name=site.name)
    context = {
        **site.each_context(request),
        "title": "Scout dashboard",
        "app_label": "django_scout",
        "app_name": apps.get_app_config("django_scout").verbose_name,
        "dashboard": data,
        "show_runs": request.user.has_perm("django_scout.view_workflowrun"),
        "show_deliveries": request.user.has_perm("django_scout.view_callbackdelivery"),
        "interaction_chart": hourly_chart(
            "Interactions created per hour", "interactions", data.interactions.hourly
        ),
        "run_chart": hourly_chart("Workflow runs created per hour", "runs", data.runs.hourly),
        "windows": [label for label, _ in WINDOWS],
        "sample_cap": DURATION_SAMPLE_CAP,
        "stale_after": f"{STALE_RECONCILE.total_seconds() / 60:.0f} min",
    }
    return TemplateResponse(request, "admin/django_scout/dashboard.html", context)


def dashboard_urls(admin_site: AdminSite) -> list[URLPattern]:
    """``dashboard/`` (named ``django_scout_dashboard``) for ``admin_site``, behind its login.

    Mount it in a ``ModelAdmin.get_urls`` of ``admin_site`` so it sits in its namespace.
    """

    def view(request: HttpRequest) -> HttpResponse:
        return dashboard_view(request, admin_site)

    view.__doc__ = dashboard_view.__doc__
    return [path("dashboard/", admin_site.admin_view(view), name="django_scout_dashboard")]
