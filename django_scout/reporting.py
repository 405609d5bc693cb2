"""Plain-data summaries of interactions for commands, the demo and logs."""

from __future__ import annotations

from typing import Any

from .models import Interaction


def interaction_summary(interaction: Interaction) -> dict[str, Any]:
    """A JSON-friendly summary of ``interaction`` (status, session, counts, timing, error)."""
    return {
        "id": str(interaction.pk),
        "agent_id": interaction.agent_id,
        "status": interaction.status,
        "session_id": interaction.session_id or None,
        "events": interaction.event_count,
        "events_missing": interaction.events_missing,
        "deliveries": sum(d.delivery_count for d in interaction.deliveries.all()),
        "error_code": interaction.error_code or None,
        "error_message": interaction.error_message or None,
        "created_at": interaction.created_at.isoformat(),
        "accepted_at": interaction.accepted_at.isoformat() if interaction.accepted_at else None,
        "completed_at": interaction.completed_at.isoformat() if interaction.completed_at else None,
        "duration_s": interaction.duration,
    }
