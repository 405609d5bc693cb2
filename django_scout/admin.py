"""Read-only admin for interactions, their events and callback deliveries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import CallbackDelivery, Interaction, InteractionEvent, Session

if TYPE_CHECKING:
    EventInlineBase = admin.TabularInline[InteractionEvent, Interaction]
    DeliveryInlineBase = admin.TabularInline[CallbackDelivery, Interaction]
    InteractionAdminBase = admin.ModelAdmin[Interaction]
    DeliveryAdminBase = admin.ModelAdmin[CallbackDelivery]
    SessionAdminBase = admin.ModelAdmin[Session]
else:  # the admin classes are not generic at run time
    EventInlineBase = DeliveryInlineBase = admin.TabularInline
    InteractionAdminBase = DeliveryAdminBase = SessionAdminBase = admin.ModelAdmin


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
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
class InteractionAdmin(ReadOnlyAdminMixin, InteractionAdminBase):
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

    @admin.display(description="duration")
    def duration_display(self, obj: Interaction) -> str:
        """Seconds from creation to completion."""
        seconds = obj.duration
        return "—" if seconds is None else f"{seconds:.1f}s"

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

    @admin.display(description="subject")
    def subject_display(self, obj: Interaction) -> str:
        """The host record this interaction belongs to."""
        subject = obj.subject
        return "—" if subject is None else f"{obj.subject_content_type}: {subject}"


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(ReadOnlyAdminMixin, DeliveryAdminBase):
    """Every distinct callback, how often it came and whether it was processed."""

    list_display = (
        "callback_event_id",
        "status",
        "session_id",
        "interaction",
        "delivery_count",
        "received_at",
        "processed_at",
    )
    list_filter = ("status", ("processed_at", admin.EmptyFieldListFilter), "received_at")
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
        "processed_at",
        "processing_attempts",
        "processing_error",
        "payload_display",
        "headers_display",
        "raw_body",
    )
    exclude = ("payload", "headers")

    @admin.display(description="payload")
    def payload_display(self, obj: CallbackDelivery) -> SafeString:
        """The validated payload."""
        return _pretty_json(obj.payload)

    @admin.display(description="headers (redacted)")
    def headers_display(self, obj: CallbackDelivery) -> SafeString:
        """The request headers, without credentials or the signature."""
        return _pretty_json(obj.headers)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, SessionAdminBase):
    """Scout sessions and the agents they belong to."""

    list_display = ("session_id", "agent_id", "created_at")
    search_fields = ("session_id", "agent_id")
