"""Signal receivers: write an interaction's outcome back onto its ticket."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from django_scout.models import Interaction, WorkflowRun
from django_scout.signals import interaction_completed, workflow_run_succeeded

from .models import Ticket


def _summary_text(interaction: Interaction) -> str:
    texts = []
    for event in interaction.events.order_by("sequence")[:50]:
        data = event.data
        if isinstance(data, dict):
            inner = data.get("data", data)
            text = inner.get("text") if isinstance(inner, dict) else None
            if isinstance(text, str):
                texts.append(text)
    return " ".join(texts)[:2000]


@receiver(interaction_completed, dispatch_uid="tickets.interaction_completed")
def on_interaction_completed(sender: Any, interaction: Interaction, **kwargs: Any) -> None:
    """Mark the ticket triaged (with Scout's output) or needing a human (with the error)."""
    ticket = interaction.subject
    if not isinstance(ticket, Ticket):
        return
    if interaction.status == "succeeded":
        Ticket.objects.filter(pk=ticket.pk).update(
            triage=Ticket.Triage.TRIAGED, scout_summary=_summary_text(interaction), scout_error=""
        )
    else:
        Ticket.objects.filter(pk=ticket.pk).update(
            triage=Ticket.Triage.NEEDS_HUMAN,
            scout_error=f"{interaction.error_code}: {interaction.error_message}",
        )


@receiver(workflow_run_succeeded, dispatch_uid="tickets.workflow_run_succeeded")
def on_routing_done(sender: Any, run: WorkflowRun, **kwargs: Any) -> None:
    """Store where the routing workflow sent the ticket."""
    ticket = run.subject
    if isinstance(ticket, Ticket) and isinstance(run.outputs, dict):
        routed_to = str(run.outputs.get("routed_to", ""))[:100]
        Ticket.objects.filter(pk=ticket.pk).update(routed_to=routed_to)
