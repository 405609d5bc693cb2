"""Admin pages for workflow runs (workflows, inline configs, webhook triggers, apps) and their
streamed events; re-run from the list or the page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from .. import services
from ..models import WorkflowRun, WorkflowRunEvent
from .base import ReadOnlyAdminMixin, ScaledListMixin, choices_filter, input_filter
from .display import (
    EMPTY,
    admin_link,
    format_duration,
    format_time,
    json_column,
    link_list,
    short_text,
    time_column,
)
from .search import ExactSearchMixin
from .tracked import TrackedWorkAdminMixin, error_panel, events_timeline

if TYPE_CHECKING:
    RunAdminBase = admin.ModelAdmin[WorkflowRun]
    RunEventAdminBase = admin.ModelAdmin[WorkflowRunEvent]
else:  # the admin classes are not generic at run time
    RunAdminBase = RunEventAdminBase = admin.ModelAdmin

#: Re-runs listed on a run's page.
RERUNS_SHOWN = 20


@admin.register(WorkflowRun)
class WorkflowRunAdmin(
    ReadOnlyAdminMixin, ScaledListMixin, ExactSearchMixin, TrackedWorkAdminMixin, RunAdminBase
):
    """Workflow runs, webhook triggers and app executions; re-run from the list or the page."""

    outputs_display = json_column("outputs", "outputs")
    workflow_config_display = json_column("workflow_config", "workflow config")
    inputs_display = json_column("inputs", "inputs")
    change_form_template = "admin/django_scout/workflowrun/change_form.html"
    list_display = (
        "short_id",
        "kind",
        "target_short",
        "status_display",
        "environment",
        "stream_display",
        "created_display",
        "duration_display",
        "event_count",
        "error_code",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        "kind",
        choices_filter(
            "environment",
            "environment",
            tuple((name, name) for name in services.ENVIRONMENTS),
        ),
        "stream",
        ("created_at", admin.DateFieldListFilter),
        input_filter("workflow or app id", "workflow_id", "workflow"),
        input_filter("error code", "error_code"),
    )
    search_help_text = (
        "A run id, workflow or app id, Scout run id, session id or error code (exact)."
    )
    actions = ("rerun_selected",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "kind",
                    "target_display",
                    "status_display",
                    "error_display",
                    "subject_display",
                )
            },
        ),
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
        ("Outcome", {"fields": ("scout_run_id", "outputs_display", "run_duration_display")}),
        ("Events", {"fields": ("event_count", "events_display")}),
        (
            "Timing",
            {
                "fields": (
                    "created_display",
                    "started_display",
                    "completed_display",
                    "stream_progress_display",
                    "duration_display",
                    "start_attempts",
                    "rerun_of_display",
                    "reruns_display",
                )
            },
        ),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    exact_search_fields = ("workflow_id", "scout_run_id", "session_id", "error_code")
    exact_search_uuid_fields = ("pk",)
    started_display = time_column("started_at", "started")
    stream_progress_display = time_column("stream_progress_at", "last stream progress")

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

    @admin.display(description="target")
    def target_short(self, obj: WorkflowRun) -> SafeString | str:
        """The target, cut to fit a list (whole in the tooltip)."""
        return short_text(obj.target, 40)

    @admin.display(description="stream", ordering="stream")
    def stream_display(self, obj: WorkflowRun) -> str:
        """Whether events were streamed (a word, not a red cross)."""
        return "streamed" if obj.stream else EMPTY

    @admin.display(description="error")
    def error_display(self, obj: WorkflowRun) -> SafeString | str:
        """Why it failed."""
        if obj.status == "failed" or obj.error_code:
            return error_panel(obj.error_code, obj.error_message)
        return EMPTY

    @admin.display(description="Scout's duration")
    def run_duration_display(self, obj: WorkflowRun) -> str:
        """The run's duration as Scout (or the stream) reported it."""
        return EMPTY if obj.duration_ms is None else format_duration(obj.duration_ms / 1000)

    @admin.display(description="events")
    def events_display(self, obj: WorkflowRun) -> SafeString:
        """The first events, in order, with a link to all of them."""
        url = reverse("admin:django_scout_workflowrunevent_changelist") + f"?run={obj.pk}"
        return events_timeline(obj.events.all(), total=obj.event_count, all_url=url)

    @admin.display(description="re-run of")
    def rerun_of_display(self, obj: WorkflowRun) -> SafeString | str:
        """The run this one repeats."""
        return admin_link(obj.rerun_of, str(obj.rerun_of_id)) if obj.rerun_of_id else EMPTY

    @admin.display(description="re-runs")
    def reruns_display(self, obj: WorkflowRun) -> SafeString | str:
        """Runs started again from this one."""
        reruns = obj.reruns.order_by("-created_at")[:RERUNS_SHOWN]
        items = [
            (
                reverse("admin:django_scout_workflowrun_change", args=[run.pk]),
                f"{format_time(run.created_at)} {run.status}",
            )
            for run in reruns
        ]
        return link_list(items) if items else EMPTY


@admin.register(WorkflowRunEvent)
class WorkflowRunEventAdmin(ReadOnlyAdminMixin, ScaledListMixin, RunEventAdminBase):
    """Every streamed run event; open from a run's page to see only its events."""

    # By the column, not the relation: ``"run"`` would sort by the parent's own ordering
    # through a join (a full sort of the table); this reads the (parent, sequence) index.
    ordering = ("run_id", "sequence")
    data_display = json_column("data", "data")
    list_display = ("sequence", "run_display", "name", "timestamp_display")
    list_select_related = ("run",)
    list_display_links = ("sequence",)
    list_filter = (input_filter("run id", "run_id", "run"),)
    readonly_fields = ("run_display", "sequence", "name", "timestamp_display", "data_display")
    fields = readonly_fields
    timestamp_display = time_column("timestamp", "time", milliseconds=True)

    @admin.display(description="run")
    def run_display(self, obj: WorkflowRunEvent) -> SafeString | str:
        """The run, linked."""
        return admin_link(obj.run, str(obj.run_id))
