"""The ticket page: a ticket, its triage, and Scout's progress on it, live.

Only staff see it (the admin's login): the live relay's default ``LIVE_PERMISSION`` lets staff
watch, and ``{% scout_live %}`` shows others the status alone.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from django_scout.models import Interaction, WorkflowRun

from .models import Ticket


@staff_member_required
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The ticket with its latest triage interaction and routing run, followed live."""
    ticket = get_object_or_404(Ticket, pk=pk)
    linked = {
        "subject_content_type": ContentType.objects.get_for_model(Ticket),
        "subject_object_id": str(ticket.pk),
    }
    context = {
        "ticket": ticket,
        "interaction": Interaction.objects.filter(**linked).order_by("-created_at").first(),
        "run": WorkflowRun.objects.filter(**linked).order_by("-created_at").first(),
    }
    return render(request, "tickets/ticket_detail.html", context)
