"""Plain-data summaries of interactions for commands, the demo and logs."""

from __future__ import annotations

import json
from typing import Any

from .client.workflow_events import (
    BlockRunCompleted,
    BlockRunFailed,
    BlockRunStarted,
    BlockStateUpdated,
    WorkflowRunCompleted,
    WorkflowRunFailed,
    WorkflowRunStarted,
)
from .models import Interaction, WorkflowRun


def interaction_summary(interaction: Interaction) -> dict[str, Any]:
    """A JSON-friendly summary of ``interaction`` (status, session, counts, timing, error)."""
    return {
        "id": str(interaction.pk),
        "agent_id": interaction.agent_id,
        "status": interaction.status,
        "stream": interaction.stream,
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


def run_summary(run: WorkflowRun) -> dict[str, Any]:
    """A JSON-friendly summary of a workflow run (webhook tokens masked)."""
    return {
        "id": str(run.pk),
        "kind": run.kind,
        "target": run.target,
        "status": run.status,
        "environment": run.environment or None,
        "stream": run.stream,
        "scout_run_id": run.scout_run_id or None,
        "session_id": run.session_id or None,
        "outputs": run.outputs,
        "events": run.event_count,
        "duration_ms": run.duration_ms,
        "error_code": run.error_code or None,
        "error_message": run.error_message or None,
        "created_at": run.created_at.isoformat(),
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
    }


def _compact(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_run_event(name: str, stored: Any) -> str:
    """One human line for a stored workflow/app event (for live ``--stream`` output)."""
    data = stored.get("data") if isinstance(stored, dict) else stored
    data = data if isinstance(data, dict) else {"value": data}
    block = data.get("block_id") or data.get("block_type") or ""
    if name == WorkflowRunStarted.event_name:
        return f"> run started {data.get('workflow_run_id') or ''}".rstrip()
    if name == BlockRunStarted.event_name:
        return f"  - {block} started"
    if name == BlockStateUpdated.event_name:
        return f"  . {block}: {_compact(data.get('update_data'))}"
    if name == BlockRunCompleted.event_name:
        output = data.get("output") or data.get("block_output") or data.get("state")
        return f"  + {block} completed" + (f": {_compact(output)}" if output else "")
    if name == BlockRunFailed.event_name:
        return f"  x {block} failed: {data.get('message')}"
    if name == WorkflowRunCompleted.event_name:
        return f"= completed: {_compact(data.get('output'))}"
    if name == WorkflowRunFailed.event_name:
        return f"= failed: {data.get('message')}"
    if name in ("message", "start_message", "error"):  # app streams
        return f"  {name}: {_compact(stored)}"
    return f"  {name}: {_compact(stored)}"
