"""Admin pages for sessions, interactions, their events and Scout's callback deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from .. import services
from ..dashboard import dashboard_urls
from ..models import (
    CallbackDelivery,
    DeliveryState,
    Interaction,
    InteractionEvent,
    Session,
)
from ..services.registry import scout_tasks
from ..services.scrubbing import scrub_text
from .base import ReadOnlyAdminMixin, ScaledListMixin, choices_filter, input_filter
from .display import (
    EMPTY,
    admin_link,
    badge,
    format_duration,
    format_time,
    json_column,
    link_list,
    time_column,
)
from .search import ExactSearchMixin
from .tracked import TrackedWorkAdminMixin, error_panel, events_timeline

if TYPE_CHECKING:
    DeliveryInlineBase = admin.TabularInline[CallbackDelivery, Interaction]
    InteractionAdminBase = admin.ModelAdmin[Interaction]
    DeliveryAdminBase = admin.ModelAdmin[CallbackDelivery]
    SessionAdminBase = admin.ModelAdmin[Session]
    EventAdminBase = admin.ModelAdmin[InteractionEvent]
else:  # the admin classes are not generic at run time
    DeliveryInlineBase = admin.TabularInline
    InteractionAdminBase = DeliveryAdminBase = SessionAdminBase = EventAdminBase = admin.ModelAdmin

#: Interactions listed on a session's page before the link to all of them.
SESSION_INTERACTIONS = 20


def _changelist(model: str, **params: Any) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{reverse(f'admin:django_scout_{model}_changelist')}?{query}"


class CallbackDeliveryInline(ReadOnlyAdminMixin, DeliveryInlineBase):
    """The callbacks Scout delivered for an interaction (a handful: one per distinct callback)."""

    model = CallbackDelivery
    fk_name = "interaction"
    fields = (
        "delivery_link",
        "status_display",
        "state_display",
        "delivery_count",
        "received_display",
        "processed_display",
        "processing_error",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    received_display = time_column("received_at", "received")
    processed_display = time_column("processed_at", "processed")

    @admin.display(description="callback")
    def delivery_link(self, obj: CallbackDelivery) -> SafeString | str:
        """The delivery's page."""
        return admin_link(obj, obj.callback_event_id)

    @admin.display(description="Scout status")
    def status_display(self, obj: CallbackDelivery) -> SafeString:
        """What Scout reported."""
        return badge(obj.status)

    @admin.display(description="processing")
    def state_display(self, obj: CallbackDelivery) -> SafeString:
        """How far processing got."""
        return badge(obj.state)


@admin.register(Interaction)
class InteractionAdmin(
    ReadOnlyAdminMixin,
    ScaledListMixin,
    ExactSearchMixin,
    TrackedWorkAdminMixin,
    InteractionAdminBase,
):
    """Interactions: status, agent, session, timing, the event timeline and Scout's callbacks."""

    variables_display = json_column("variables", "variables")
    metadata_display = json_column("metadata", "metadata")
    messages_display = json_column("messages", "messages")
    change_list_template = "admin/django_scout/interaction/change_list.html"
    list_display = (
        "short_id",
        "status_display",
        "agent_id",
        "session_display",
        "created_display",
        "duration_display",
        "event_count",
        "error_code",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        "stream",
        "events_missing",
        ("created_at", admin.DateFieldListFilter),
        input_filter("agent id", "agent_id", "agent"),
        input_filter("session id", "session_id", "session"),
        input_filter("error code", "error_code"),
    )
    search_help_text = (
        "An interaction id, agent id, session id, error code or callback event id (exact)."
    )
    list_select_related = ("session",)
    inlines = (CallbackDeliveryInline,)
    actions = ("fetch_events_selected", "retry_start_selected")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "status_display",
                    "error_display",
                    "agent_id",
                    "session_display",
                    "subject_display",
                )
            },
        ),
        (
            "Request",
            {
                "fields": (
                    "messages_display",
                    "metadata_display",
                    "variables_display",
                    "tags",
                    "stream",
                )
            },
        ),
        ("Events", {"fields": ("event_count", "events_url_display", "events_display")}),
        (
            "Timing",
            {
                "fields": (
                    "created_display",
                    "accepted_display",
                    "completed_display",
                    "events_fetched_display",
                    "stream_progress_display",
                    "duration_display",
                    "start_attempts",
                    "requested_session_id",
                )
            },
        ),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    exact_search_fields = ("agent_id", "session_id", "error_code")
    exact_search_uuid_fields = ("pk",)
    exact_search_related = (
        lambda term: CallbackDelivery.objects.filter(callback_event_id=term).values_list(
            "interaction_id", flat=True
        ),
    )
    accepted_display = time_column("accepted_at", "accepted")
    events_fetched_display = time_column("events_fetched_at", "events fetched")
    stream_progress_display = time_column("stream_progress_at", "last stream progress")

    def get_urls(self) -> list[URLPattern]:
        """Adds ``reconcile/`` (POST: run the repair job now) and the dashboard (``dashboard/``)."""
        reconcile_view = require_POST(self.admin_site.admin_view(self.reconcile_view))
        return [
            path("reconcile/", reconcile_view, name="django_scout_reconcile"),
            *dashboard_urls(self.admin_site),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Tell the template whether to show the Reconcile button."""
        context = {**(extra_context or {}), "can_reconcile": self._can_reconcile(request)}
        return super().changelist_view(request, context)

    def _can_reconcile(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("django_scout.change_interaction"))

    def reconcile_view(self, request: HttpRequest) -> HttpResponse:
        """Run :func:`django_scout.services.reconcile` once and say what it did."""
        if not self._can_reconcile(request):
            raise PermissionDenied("reconciling needs the 'change interaction' permission")
        report = services.reconcile()
        self.message_user(
            request,
            "Reconciled: "
            f"{len(report.requeued_starts)} start(s) and {len(report.requeued_runs)} run(s) "
            f"enqueued again, {len(report.requeued_deliveries)} callback(s) enqueued again, "
            f"{report.abandoned_deliveries} abandoned, {len(report.timed_out)} interaction(s) "
            f"and {len(report.timed_out_runs)} run(s) timed out.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:django_scout_interaction_changelist"))

    @admin.action(description="Fetch the selected interactions' events again")
    def fetch_events_selected(self, request: HttpRequest, queryset: QuerySet[Interaction]) -> None:
        """Enqueue an (idempotent) event fetch for each selected interaction with an events URL."""
        if not request.user.has_perm("django_scout.change_interaction"):
            raise PermissionDenied("fetching events needs the 'change interaction' permission")
        ids = [str(pk) for pk in queryset.exclude(events_url="").values_list("pk", flat=True)]
        fetch_events = scout_tasks().fetch_events
        for interaction_id in ids:
            services.enqueue_after_commit(fetch_events, interaction_id)
        skipped = queryset.count() - len(ids)
        note = f" ({skipped} without an events URL skipped)" if skipped else ""
        self.message_user(request, f"Fetching events for {len(ids)} interaction(s){note}.")

    @admin.action(description="Retry the selected failed starts (as new interactions)")
    def retry_start_selected(self, request: HttpRequest, queryset: QuerySet[Interaction]) -> None:
        """Start a new interaction for each selected one whose start Scout refused."""
        if not request.user.has_perm("django_scout.add_interaction"):
            raise PermissionDenied("retrying a start needs the 'add interaction' permission")
        started, skipped = [], 0
        for interaction in queryset:
            try:
                started.append(services.retry_start(interaction))
            except ValueError:
                skipped += 1
        note = f"; {skipped} skipped (only failed starts are retried)" if skipped else ""
        level = messages.SUCCESS if started else messages.WARNING
        self.message_user(request, f"Started {len(started)} interaction(s) again{note}.", level)

    @admin.display(description="events URL")
    def events_url_display(self, obj: Interaction) -> str:
        """Where Scout serves the events (not a link: it needs the API key)."""
        return obj.events_url or EMPTY

    @admin.display(description="session")
    def session_display(self, obj: Interaction) -> SafeString | str:
        """The Scout session, linked."""
        return admin_link(obj.session)

    @admin.display(description="error")
    def error_display(self, obj: Interaction) -> SafeString | str:
        """Why it failed, and whether its events are missing."""
        panels = []
        if obj.status == "failed" or obj.error_code:
            panels.append(error_panel(obj.error_code, obj.error_message))
        if obj.events_missing:
            panels.append(
                error_panel(
                    "events missing",
                    obj.events_error or "the event stream could not be fetched",
                    tone="warning",
                )
            )
        return format_html("{}", SafeString("".join(panels))) if panels else EMPTY

    @admin.display(description="events")
    def events_display(self, obj: Interaction) -> SafeString:
        """The first events, in order, with a link to all of them."""
        return events_timeline(
            obj.events.all(),
            total=obj.event_count,
            all_url=_changelist("interactionevent", interaction=obj.pk),
        )


@admin.register(InteractionEvent)
class InteractionEventAdmin(ReadOnlyAdminMixin, ScaledListMixin, EventAdminBase):
    """Every stored event; open from an interaction's page to see only its events."""

    # By the column, not the relation: ``"interaction"`` would sort by the parent's own ordering
    # through a join (a full sort of the table); this reads the (parent, sequence) index.
    ordering = ("interaction_id", "sequence")
    data_display = json_column("data", "data")
    list_display = ("sequence", "interaction_display", "name", "timestamp_display", "data_preview")
    list_display_links = ("sequence",)
    list_filter = (input_filter("interaction id", "interaction_id", "interaction"),)
    list_select_related = ("interaction",)
    readonly_fields = (
        "interaction_display",
        "sequence",
        "name",
        "event_id",
        "timestamp_display",
        "stored_display",
        "data_display",
    )
    fields = readonly_fields
    timestamp_display = time_column("timestamp", "time", milliseconds=True)
    stored_display = time_column("created_at", "stored", milliseconds=True)

    @admin.display(description="interaction")
    def interaction_display(self, obj: InteractionEvent) -> SafeString | str:
        """The interaction, linked."""
        return admin_link(obj.interaction, str(obj.interaction_id))

    @admin.display(description="data")
    def data_preview(self, obj: InteractionEvent) -> str:
        """The start of the event's data."""
        return _preview(obj.data)


def _preview(value: Any, length: int = 120) -> str:
    import json

    from ..services.scrubbing import scrub_json

    text = json.dumps(scrub_json(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= length else text[: length - 1] + "…"


class DeliveryStateFilter(admin.ChoicesFieldListFilter):
    """The ``state`` filter, with the ``processed_at`` term that puts the rows it lists on an
    index: ``processed_at`` is empty exactly while a delivery is pending, and each of the
    delivery indexes on ``state`` holds only one side (``scout_delivery_due`` the pending
    deliveries, ``scout_delivery_outcome`` the others)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        """The deliveries in the chosen state(s), through the index that holds them."""
        filtered = super().queryset(request, queryset)
        chosen: Any = self.used_parameters.get(self.lookup_kwarg)  # a list since Django 5.0
        if filtered is None or not chosen:
            return filtered
        states = {chosen} if isinstance(chosen, str) else set(chosen)
        if states == {DeliveryState.PENDING.value}:
            return filtered.filter(processed_at__isnull=True)
        if DeliveryState.PENDING.value not in states:
            return filtered.filter(processed_at__isnull=False)
        return filtered


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(
    ReadOnlyAdminMixin, ScaledListMixin, ExactSearchMixin, DeliveryAdminBase
):
    """Every distinct callback, how often it came and how far its processing got."""

    headers_display = json_column("headers", "headers (redacted)")
    payload_display = json_column("payload", "payload")
    list_display = (
        "callback_event_id",
        "status_display",
        "session_id",
        "interaction_display",
        "state_display",
        "delivery_count",
        "received_display",
        "processed_display",
    )
    list_filter = (
        ("state", DeliveryStateFilter),
        choices_filter(
            "Scout status", "status", (("succeeded", "succeeded"), ("failed", "failed"))
        ),
        ("received_at", admin.DateFieldListFilter),
        input_filter("interaction id", "interaction_id", "interaction"),
        input_filter("session id", "session_id", "session"),
    )
    search_help_text = "A callback event id, session id or interaction id (exact)."
    exact_search_fields = ("callback_event_id", "session_id")
    exact_search_uuid_fields = ("interaction_id", "target_interaction_id")
    list_select_related = ("interaction",)
    actions = ("reprocess_selected",)
    readonly_fields = (
        "callback_event_id",
        "status_display",
        "state_display",
        "error_display",
        "session_id",
        "interaction_display",
        "target_interaction_id",
        "delivery_count",
        "received_display",
        "last_received_display",
        "processed_display",
        "next_attempt_display",
        "processing_attempts",
        "payload_display",
        "headers_display",
        "raw_body_display",
    )
    exclude = ("payload", "headers", "raw_body")

    received_display = time_column("received_at", "received", ordering="received_at")
    last_received_display = time_column("last_received_at", "last received")
    processed_display = time_column("processed_at", "processed")

    @admin.action(description="Process the selected failed or abandoned callbacks again")
    def reprocess_selected(
        self, request: HttpRequest, queryset: QuerySet[CallbackDelivery]
    ) -> None:
        """Put each failed or abandoned delivery back to pending and enqueue it."""
        if not request.user.has_perm("django_scout.change_callbackdelivery"):
            raise PermissionDenied("reprocessing needs the 'change callback delivery' permission")
        ids = list(queryset.values_list("pk", flat=True))
        done = sum(services.reprocess_delivery(pk) for pk in ids)
        skipped = len(ids) - done
        note = f"; {skipped} skipped (only failed or abandoned ones)" if skipped else ""
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(request, f"Processing {done} callback(s) again{note}.", level)

    @admin.display(description="Scout status")
    def status_display(self, obj: CallbackDelivery) -> SafeString:
        """What Scout reported."""
        return badge(obj.status)

    @admin.display(description="processing", ordering="state")
    def state_display(self, obj: CallbackDelivery) -> SafeString:
        """How far processing got."""
        return badge(obj.state)

    @admin.display(description="processing error")
    def error_display(self, obj: CallbackDelivery) -> SafeString | str:
        """Why processing failed or is still waiting."""
        if not obj.processing_error:
            return EMPTY
        tone = (
            "error" if obj.state in (DeliveryState.FAILED, DeliveryState.ABANDONED) else "warning"
        )
        return error_panel(obj.state, obj.processing_error, tone=tone)

    @admin.display(description="interaction")
    def interaction_display(self, obj: CallbackDelivery) -> SafeString | str:
        """The interaction it was applied to, linked."""
        return admin_link(obj.interaction, str(obj.interaction_id)) if obj.interaction else EMPTY

    @admin.display(description="next attempt")
    def next_attempt_display(self, obj: CallbackDelivery) -> str:
        """When reconcile enqueues it again, while pending."""
        return format_time(obj.next_attempt_at) if obj.processed_at is None else EMPTY

    @admin.display(description="raw body")
    def raw_body_display(self, obj: CallbackDelivery) -> str:
        """The body as Scout sent it, scrubbed of credentials."""
        return scrub_text(obj.raw_body)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, ScaledListMixin, ExactSearchMixin, SessionAdminBase):
    """Scout sessions, their agent and their interactions."""

    list_display = ("session_id", "agent_id", "created_display")
    list_filter = (input_filter("agent id", "agent_id", "agent"),)
    search_help_text = "A session id or agent id (exact)."
    exact_search_fields = ("session_id", "agent_id")
    readonly_fields = ("session_id", "agent_id", "created_display", "interactions_display")
    fields = readonly_fields

    created_display = time_column("created_at", "created", ordering="created_at")

    @admin.display(description="interactions")
    def interactions_display(self, obj: Session) -> SafeString | str:
        """The session's interactions, newest first, with a link to all of them."""
        interactions = list(obj.interactions.order_by("-created_at")[: SESSION_INTERACTIONS + 1])
        if not interactions:
            return EMPTY
        shown = interactions[:SESSION_INTERACTIONS]
        items = link_list(
            [
                (
                    reverse("admin:django_scout_interaction_change", args=[i.pk]),
                    f"{format_time(i.created_at)} {i.status} ({format_duration(i.duration)})",
                )
                for i in shown
            ]
        )
        more = format_html(
            ' — <a href="{}">all interactions of this session</a>',
            _changelist("interaction", session=obj.session_id),
        )
        return format_html("{}{}", items, more)
