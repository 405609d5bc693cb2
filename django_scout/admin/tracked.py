"""What the interaction and workflow-run pages share: status, timing, subject, error panels and
the event timeline."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Interaction, WorkflowRun
from .display import (
    EMPTY,
    admin_link,
    admin_url,
    badge,
    format_duration,
    format_time,
    pretty_json,
    short_text,
    time_column,
)

__all__ = ["TIMELINE_EVENTS", "TrackedWorkAdminMixin", "error_panel", "events_timeline"]

#: Events shown on an interaction's or run's page; the rest are one click away.
TIMELINE_EVENTS = 50

#: Characters of one event's data shown in the timeline (the event's own page shows it whole).
TIMELINE_DATA_CHARS = 1500


def error_panel(title: str, message: str, *, tone: str = "error") -> SafeString:
    """A panel in the admin's error (or warning) colours with a title and the message."""
    return format_html(
        '<div class="scout-panel scout-panel--{}" role="{}"><h3>{}</h3><p>{}</p></div>',
        tone,
        "alert" if tone == "error" else "note",
        title or "error",
        message or EMPTY,
    )


def events_timeline(events: QuerySet[Any], *, total: int, all_url: str) -> SafeString:
    """The first :data:`TIMELINE_EVENTS` of ``events`` as a table, and a link to all of them.

    Each row links to the event's own page, which shows its data whole.
    """
    shown = list(events.order_by("sequence")[:TIMELINE_EVENTS])
    if not shown:
        return format_html("<p>{}</p>", "No events stored.")
    rows = format_html_join(
        "",
        '<tr><td class="scout-timeline__seq"><a href="{}">#{}</a></td>'
        '<td class="scout-timeline__time">{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                admin_url(event) or "#",
                event.sequence,
                format_time(event.timestamp or event.created_at, milliseconds=True),
                event.name or EMPTY,
                pretty_json(event.data, limit=TIMELINE_DATA_CHARS),
            )
            for event in shown
        ),
    )
    count = max(total, len(shown))
    more = format_html(
        '<p class="scout-more">Showing the first {} of {} events — '
        '<a href="{}">all events →</a></p>',
        len(shown),
        count,
        all_url,
    )
    return format_html(
        '<table class="scout-timeline"><thead><tr><th>#</th><th>time</th><th>name</th>'
        "<th>data</th></tr></thead><tbody>{}</tbody></table>{}",
        rows,
        more,
    )


class TrackedWorkAdminMixin:
    """Columns shared by interactions and workflow runs."""

    created_display = time_column("created_at", "created", ordering="created_at")

    @admin.display(description="id", ordering="pk")
    def short_id(self, obj: Interaction | WorkflowRun) -> SafeString | str:
        """The first characters of the id (whole in the tooltip), so lists fit the screen."""
        return short_text(str(obj.pk), 9)

    completed_display = time_column("completed_at", "completed")

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Interaction | WorkflowRun) -> SafeString:
        """The status as a badge (colour and text)."""
        return badge(obj.status)

    @admin.display(description="duration")
    def duration_display(self, obj: Interaction | WorkflowRun) -> str:
        """From creation to completion, rounded the same way everywhere."""
        return format_duration(obj.duration)

    @admin.display(description="subject")
    def subject_display(self, obj: Interaction | WorkflowRun) -> SafeString | str:
        """The host record this work belongs to, linked when it is in the admin."""
        subject = obj.subject
        if subject is None:
            return EMPTY
        return admin_link(subject, f"{obj.subject_content_type}: {subject}")
