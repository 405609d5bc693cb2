"""What the example app does with Scout: ask an agent to triage a ticket."""

from __future__ import annotations

from django.db import transaction

from django_scout.api import start_interaction
from django_scout.models import Interaction

from .models import Ticket

TRIAGE_AGENT_ID = "support-triage"


def ask_scout(ticket: Ticket, agent_id: str = TRIAGE_AGENT_ID) -> Interaction:
    """Start a triage interaction with the ticket as its subject."""
    with transaction.atomic():
        interaction = start_interaction(
            agent_id,
            f"Triage this ticket.\nSubject: {ticket.subject}\n\n{ticket.body}",
            metadata={"ticket_id": ticket.pk, "customer_email": ticket.customer_email},
            tags=["support", "triage"],
            subject=ticket,
        )
        Ticket.objects.filter(pk=ticket.pk).update(triage=Ticket.Triage.WAITING)
    return interaction
