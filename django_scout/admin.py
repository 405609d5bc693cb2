"""Read-only admin for interactions, their events and callback deliveries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from . import services
from .dashboard import dashboard_urls
from .models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    Session,
    WorkflowRun,
    WorkflowRunEvent,
)
from .services.scrubbing import scrub_json, scrub_text

if TYPE_CHECKING:
    EventInlineBase = admin.TabularInline[InteractionEvent, Interaction]
    DeliveryInlineBase = admin.TabularInline[CallbackDelivery, Interaction]
    RunEventInlineBase = admin.TabularInline[WorkflowRunEvent, WorkflowRun]
    InteractionAdminBase = admin.ModelAdmin[Interaction]
    DeliveryAdminBase = admin.ModelAdmin[CallbackDelivery]
    SessionAdminBase = admin.ModelAdmin[Session]
    RunAdminBase = admin.ModelAdmin[WorkflowRun]
else:  # the admin classes are not generic at run time
    EventInlineBase = DeliveryInlineBase = RunEventInlineBase = admin.TabularInline
    InteractionAdminBase = DeliveryAdminBase = SessionAdminBase = RunAdminBase = admin.ModelAdmin


def _pretty_json(value: Any) -> SafeString:
    """``value`` as indented JSON, scrubbed: what Scout sent is stored verbatim, not shown so."""
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(scrub_json(value), indent=2, sort_keys=True, ensure_ascii=False),
    )


class ReadOnlyAdminMixin:
    """No add, change or delete from the admin: the rows are Scout's record."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are created by django-scout only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows change only through django-scout's services."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting is ``scout_prune``'s job."""
        return False


class TrackedWorkAdminMixin:
    """Columns shared by interactions and workflow runs: duration and the host subject."""

    @admin.display(description="duration")
    def duration_display(self, obj: Interaction | WorkflowRun) -> str:
        """Seconds from creation to completion."""
        seconds = obj.duration
        return "—" if seconds is None else f"{seconds:.1f}s"

    @admin.display(description="subject")
    def subject_display(self, obj: Interaction | WorkflowRun) -> str:
        """The host record this work belongs to."""
        subject = obj.subject
        return "—" if subject is None else f"{obj.subject_content_type}: {subject}"


class InteractionEventInline(ReadOnlyAdminMixin, EventInlineBase):
    """An interaction's events, in order."""

    model = InteractionEvent
    fields = ("sequence", "name", "timestamp", "data_display")
    readonly_fields = fields
    ordering = ("sequence",)
    extra = 0
    max_num = 0
    show_change_link = False
    classes = ("collapse",)

    @admin.display(description="data")
    def data_display(self, obj: InteractionEvent) -> SafeString:
        """The event's data as indented JSON."""
        return _pretty_json(obj.data)


class CallbackDeliveryInline(ReadOnlyAdminMixin, DeliveryInlineBase):
    """The callbacks Scout delivered for an interaction."""

    model = CallbackDelivery
    fk_name = "interaction"
    fields = (
        "callback_event_id",
        "status",
        "state",
        "delivery_count",
        "received_at",
        "processed_at",
        "processing_error",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyAdminMixin, TrackedWorkAdminMixin, InteractionAdminBase):
    """Interactions with status, agent, session, timing, events and deliveries."""

    list_display = (
        "id",
        "status",
        "agent_id",
        "session",
        "created_at",
        "duration_display",
        "event_count",
        "error_code",
    )
    list_filter = ("status", "agent_id", "events_missing", "created_at")
    search_fields = (
        "agent_id",
        "session__session_id",
        "deliveries__callback_event_id",
    )
    date_hierarchy = "created_at"
    list_select_related = ("session",)
    inlines = (CallbackDeliveryInline, InteractionEventInline)
    actions = ("fetch_events_selected",)
    readonly_fields = (
        "id",
        "status",
        "agent_id",
        "session",
        "requested_session_id",
        "messages_display",
        "metadata_display",
        "variables_display",
        "tags",
        "events_url",
        "error_code",
        "error_message",
        "start_attempts",
        "event_count",
        "events_missing",
        "events_error",
        "subject_display",
        "created_at",
        "accepted_at",
        "completed_at",
        "events_fetched_at",
        "duration_display",
    )
    fieldsets = (
        (None, {"fields": ("id", "status", "agent_id", "session", "subject_display")}),
        (
            "Request",
            {"fields": ("messages_display", "metadata_display", "variables_display", "tags")},
        ),
        (
            "Outcome",
            {
                "fields": (
                    "error_code",
                    "error_message",
                    "events_url",
                    "event_count",
                    "events_missing",
                    "events_error",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "accepted_at",
                    "completed_at",
                    "events_fetched_at",
                    "duration_display",
                    "start_attempts",
                    "requested_session_id",
                )
            },
        ),
    )

    def get_urls(self) -> list[URLPattern]:
        """Adds the Scout dashboard (``dashboard/``, named ``django_scout_dashboard``)."""
        return [*dashboard_urls(self.admin_site), *super().get_urls()]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Interaction], search_term: str
    ) -> tuple[QuerySet[Interaction], bool]:
        """Search by agent, session or callback id, and by the interaction's own UUID."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            interaction_id = UUID(search_term.strip())
        except ValueError:
            return results, may_have_duplicates
        return results | queryset.filter(pk=interaction_id), may_have_duplicates

    @admin.action(description="Fetch the selected interactions' events again")
    def fetch_events_selected(self, request: HttpRequest, queryset: QuerySet[Interaction]) -> None:
        """Enqueue an (idempotent) event fetch for each selected interaction with an events URL."""
        if not request.user.has_perm("django_scout.change_interaction"):
            raise PermissionDenied("fetching events needs the 'change interaction' permission")
        ids = [str(pk) for pk in queryset.exclude(events_url="").values_list("pk", flat=True)]
        for interaction_id in ids:
            services.enqueue_after_commit("fetch_events_task", interaction_id)
        skipped = queryset.count() - len(ids)
        note = f" ({skipped} without an events URL skipped)" if skipped else ""
        self.message_user(request, f"Fetching events for {len(ids)} interaction(s){note}.")

    @admin.display(description="messages")
    def messages_display(self, obj: Interaction) -> SafeString:
        """The messages sent to Scout."""
        return _pretty_json(obj.messages)

    @admin.display(description="metadata")
    def metadata_display(self, obj: Interaction) -> SafeString:
        """The metadata sent to Scout."""
        return _pretty_json(obj.metadata)

    @admin.display(description="variables")
    def variables_display(self, obj: Interaction) -> SafeString:
        """The variables sent to Scout."""
        return _pretty_json(obj.variables)


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(ReadOnlyAdminMixin, DeliveryAdminBase):
    """Every distinct callback, how often it came and whether it was processed."""

    list_display = (
        "callback_event_id",
        "status",
        "session_id",
        "interaction",
        "state",
        "delivery_count",
        "received_at",
        "processed_at",
    )
    list_filter = ("state", "status", "received_at")
    search_fields = ("callback_event_id", "session_id")
    readonly_fields = (
        "callback_event_id",
        "status",
        "session_id",
        "interaction",
        "target_interaction_id",
        "delivery_count",
        "received_at",
        "last_received_at",
        "state",
        "processed_at",
        "next_attempt_at",
        "processing_attempts",
        "processing_error",
        "payload_display",
        "headers_display",
        "raw_body_display",
    )
    exclude = ("payload", "headers", "raw_body")

    @admin.display(description="payload")
    def payload_display(self, obj: CallbackDelivery) -> SafeString:
        """The validated payload."""
        return _pretty_json(obj.payload)

    @admin.display(description="headers (redacted)")
    def headers_display(self, obj: CallbackDelivery) -> SafeString:
        """The request headers; only the harmless ones were stored with their values."""
        return _pretty_json(obj.headers)

    @admin.display(description="raw body")
    def raw_body_display(self, obj: CallbackDelivery) -> str:
        """The body as Scout sent it, scrubbed of credentials."""
        return scrub_text(obj.raw_body)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, SessionAdminBase):
    """Scout sessions and the agents they belong to."""

    list_display = ("session_id", "agent_id", "created_at")
    search_fields = ("session_id", "agent_id")


class WorkflowRunEventInline(ReadOnlyAdminMixin, RunEventInlineBase):
    """A run's streamed events, in the order they arrived."""

    model = WorkflowRunEvent
    fields = ("sequence", "name", "timestamp", "data_display")
    readonly_fields = fields
    ordering = ("sequence",)
    extra = 0
    max_num = 0

    @admin.display(description="data")
    def data_display(self, obj: WorkflowRunEvent) -> SafeString:
        """The event as indented JSON."""
        return _pretty_json(obj.data)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdminMixin, TrackedWorkAdminMixin, RunAdminBase):
    """Workflow runs, webhook triggers and app executions; re-run from the list or the page."""

    change_form_template = "admin/django_scout/workflowrun/change_form.html"
    list_display = (
        "id",
        "kind",
        "target_display",
        "status",
        "environment",
        "stream",
        "created_at",
        "duration_display",
        "event_count",
        "error_code",
    )
    list_filter = ("status", "kind", "environment", "stream", "created_at")
    search_fields = ("workflow_id", "scout_run_id", "session_id")
    date_hierarchy = "created_at"
    inlines = (WorkflowRunEventInline,)
    actions = ("rerun_selected",)
    readonly_fields = (
        "id",
        "kind",
        "target_display",
        "status",
        "environment",
        "revision_id",
        "session_id",
        "stream",
        "inputs_display",
        "workflow_key",
        "workflow_config_display",
        "scout_run_id",
        "outputs_display",
        "duration_ms",
        "error_code",
        "error_message",
        "event_count",
        "start_attempts",
        "rerun_of",
        "subject_display",
        "created_at",
        "started_at",
        "completed_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "kind", "target_display", "status", "subject_display")}),
        (
            "Request",
            {
                "fields": (
                    "environment",
                    "revision_id",
                    "session_id",
                    "stream",
                    "inputs_display",
                    "workflow_key",
                    "workflow_config_display",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "scout_run_id",
                    "outputs_display",
                    "duration_ms",
                    "error_code",
                    "error_message",
                    "event_count",
                )
            },
        ),
        (
            "Timing",
            {"fields": ("created_at", "started_at", "completed_at", "start_attempts", "rerun_of")},
        ),
    )

    def get_urls(self) -> list[URLPattern]:
        """Adds ``<id>/rerun/`` (POST) for the change page's Re-run button."""
        rerun_view = require_POST(self.admin_site.admin_view(self.rerun_view))
        return [
            path("<uuid:run_id>/rerun/", rerun_view, name="django_scout_workflowrun_rerun"),
            *super().get_urls(),
        ]

    def _check_rerun_permission(self, request: HttpRequest) -> None:
        if not request.user.has_perm("django_scout.add_workflowrun"):
            raise PermissionDenied("re-running needs the 'add workflow run' permission")

    def rerun_view(self, request: HttpRequest, run_id: str) -> HttpResponse:
        """Start a new run with this run's parameters and open it."""
        self._check_rerun_permission(request)
        run = get_object_or_404(WorkflowRun, pk=run_id)
        new_run = services.rerun(run)
        self.message_user(request, f"Started {new_run.target} again.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:django_scout_workflowrun_change", args=[new_run.pk])
        )

    @admin.action(description="Re-run the selected runs")
    def rerun_selected(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        """Start each selected run again."""
        self._check_rerun_permission(request)
        started = [services.rerun(run) for run in queryset]
        self.message_user(request, f"Started {len(started)} run(s) again.", messages.SUCCESS)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Tell the template whether to show the Re-run button."""
        context["can_rerun"] = request.user.has_perm("django_scout.add_workflowrun")
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description="target")
    def target_display(self, obj: WorkflowRun) -> str:
        """Workflow or app id, or the webhook URL with its token masked."""
        return obj.target

    @admin.display(description="inputs")
    def inputs_display(self, obj: WorkflowRun) -> SafeString:
        """The inputs (a webhook trigger's body is under ``webhook_body``)."""
        return _pretty_json(obj.inputs)

    @admin.display(description="workflow config")
    def workflow_config_display(self, obj: WorkflowRun) -> SafeString:
        """The inline workflow config, for config runs."""
        return _pretty_json(obj.workflow_config)

    @admin.display(description="outputs")
    def outputs_display(self, obj: WorkflowRun) -> SafeString:
        """What the run produced."""
        return _pretty_json(obj.outputs)
