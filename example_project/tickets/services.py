"""What the example app does with Scout: ask an agent to triage a ticket."""

from __future__ import annotations

from django.db import transaction

from django_scout.api import run_workflow, start_interaction
from django_scout.models import Interaction, WorkflowRun

from .models import Ticket

TRIAGE_AGENT_ID = "support-triage"
ROUTING_WORKFLOW_ID = "support-routing"


def ask_scout(
    ticket: Ticket, agent_id: str = TRIAGE_AGENT_ID, *, stream: bool = False
) -> Interaction:
    """Start a triage interaction with the ticket as its subject (streamed, with ``stream``)."""
    with transaction.atomic():
        interaction = start_interaction(
            agent_id,
            f"Triage this ticket.\nSubject: {ticket.subject}\n\n{ticket.body}",
            metadata={"ticket_id": ticket.pk, "customer_email": ticket.customer_email},
            tags=["support", "triage"],
            subject=ticket,
            stream=stream,
        )
        Ticket.objects.filter(pk=ticket.pk).update(triage=Ticket.Triage.WAITING)
    return interaction


def route_ticket(
    ticket: Ticket, workflow_id: str = ROUTING_WORKFLOW_ID, *, stream: bool = False
) -> WorkflowRun:
    """Run the routing workflow for a ticket; a receiver stores where it was routed."""
    return run_workflow(
        workflow_id,
        {"ticket_id": ticket.pk, "subject": ticket.subject, "body": ticket.body},
        environment="production",
        stream=stream,
        subject=ticket,
    )
