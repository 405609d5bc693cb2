"""Admin for tickets, with an action that asks Scout to triage them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Ticket
from .services import ask_scout

if TYPE_CHECKING:
    TicketAdminBase = admin.ModelAdmin[Ticket]
else:  # ModelAdmin is not generic at run time
    TicketAdminBase = admin.ModelAdmin


@admin.register(Ticket)
class TicketAdmin(TicketAdminBase):
    """Tickets with their triage state and Scout's summary."""

    list_display = ("id", "subject", "customer_email", "triage", "created_at")
    list_filter = ("triage",)
    search_fields = ("subject", "customer_email")
    readonly_fields = ("triage", "scout_summary", "scout_error", "created_at")
    actions = ("ask_scout_action",)

    @admin.action(description="Ask Scout to triage the selected tickets")
    def ask_scout_action(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        """Start one interaction per selected ticket."""
        for ticket in queryset:
            ask_scout(ticket)
        self.message_user(
            request, f"Asked Scout about {queryset.count()} ticket(s).", messages.SUCCESS
        )
