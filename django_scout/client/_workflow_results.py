"""Normalize Scout's workflow-run answers into one :class:`WorkflowRunResult`.

Scout describes a run's result in three ways (docs shape, SDK shape, lifecycle events); these
pure functions map each of them to the same fields and status vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ScoutProtocolError
from .models import WorkflowRunResult
from .workflow_events import (
    BlockRunCompleted,
    BlockRunFailed,
    BlockRunStarted,
    BlockStateUpdated,
    WorkflowEvent,
    WorkflowEventEnvelope,
    WorkflowRunCompleted,
    WorkflowRunFailed,
    WorkflowRunStarted,
    WorkflowStreamError,
    parse_workflow_event,
)

__all__ = [
    "event_raw",
    "normalize_status",
    "normalize_workflow_result",
    "summarize_workflow_events",
]


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


_SUCCEEDED = frozenset({"success", "succeeded", "completed", "complete", "workflow_run_completed"})
_FAILED = frozenset({"failed", "failure", "error", "errored", "workflow_run_failed"})
_RUNNING = frozenset({"running", "started", "in_progress", "workflow_run_started"})


def normalize_status(value: Any) -> str:
    """Map Scout's many spellings to ``succeeded``/``failed``/``running``; ``unknown`` when
    absent; any other string is returned as is."""
    if value is None or value == "":
        return "unknown"
    text = str(value)
    lowered = text.lower()
    if lowered in _SUCCEEDED:
        return "succeeded"
    if lowered in _FAILED:
        return "failed"
    if lowered in _RUNNING:
        return "running"
    return text


def _as_errors(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _duration(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _from_run_response(body: dict[str, Any]) -> WorkflowRunResult:
    run = body["run"]
    state = run.get("state")
    output_block = body.get("output_block_id")
    outputs = state
    if isinstance(state, dict) and isinstance(output_block, str) and output_block in state:
        outputs = state[output_block]
    return WorkflowRunResult(
        run_id=_str_or_none(run.get("workflow_run_id") or body.get("run_id")),
        status=normalize_status(run.get("stop_reason") or run.get("status")),
        outputs=outputs,
        duration_ms=_duration(body.get("duration_ms", run.get("duration_ms"))),
        session_id=_str_or_none(run.get("session_id")),
        errors=_as_errors(run.get("errors")),
        workflow_id=_str_or_none(body.get("workflow_id")),
        raw=body,
    )


def _from_docs_shape(body: dict[str, Any]) -> WorkflowRunResult:
    return WorkflowRunResult(
        run_id=_str_or_none(body.get("run_id") or body.get("workflow_run_id")),
        status=normalize_status(body.get("status")),
        outputs=body.get("outputs", body.get("output")),
        duration_ms=_duration(body.get("duration_ms")),
        session_id=_str_or_none(body.get("session_id")),
        errors=_as_errors(body.get("errors")),
        workflow_id=_str_or_none(body.get("workflow_id")),
        raw=body,
    )


_BLOCK_EVENTS = (BlockRunStarted, BlockRunCompleted, BlockRunFailed, BlockStateUpdated)


def event_raw(event: WorkflowEvent) -> Any:
    """The event as a plain JSON-able value (an SSE error as ``{"event": "error", "data"}``)."""
    if isinstance(event, WorkflowStreamError):
        return {"event": "error", "data": event.message}
    return event.raw


def summarize_workflow_events(events: Iterable[WorkflowEvent], raw: Any) -> WorkflowRunResult:
    """Fold events into one result; the last run event decides the status.

    ``workflow_run_started`` (or any block event) means ``running``, ``workflow_run_completed``
    ``succeeded`` (``outputs`` = ``data.output``), ``workflow_run_failed`` or an SSE ``error``
    ``failed`` (its message added to ``errors``).
    """
    found: dict[str, Any] = {"status": "unknown", "errors": []}
    for event in events:
        data = getattr(event, "data", None)
        if isinstance(event, WorkflowEventEnvelope) and data is not None:
            for key, field in (
                ("run_id", "workflow_run_id"),
                ("session_id", "session_id"),
                ("workflow_id", "workflow_id"),
            ):
                value = getattr(data, field, None)
                if value:
                    found[key] = value
        if isinstance(event, WorkflowRunStarted):
            found["status"] = "running"
        elif isinstance(event, WorkflowRunCompleted):
            found["status"] = "succeeded"
            found["outputs"] = data.output if data is not None else None
        elif isinstance(event, WorkflowRunFailed):
            found["status"] = "failed"
            message = data.message if data is not None else None
            found["errors"].append(message or "workflow run failed")
        elif isinstance(event, WorkflowStreamError):
            found["status"] = "failed"
            found["errors"].append(event.message)
        elif isinstance(event, _BLOCK_EVENTS) and found["status"] == "unknown":
            found["status"] = "running"
    return WorkflowRunResult(raw=raw, **found)


def normalize_workflow_result(body: Any) -> WorkflowRunResult:
    """One :class:`WorkflowRunResult` from any documented answer of a workflow execution.

    * SDK shape ``{run: {stop_reason, state, errors, session_id, workflow_run_id},
      workflow_id, output_block_id}``: ``outputs`` is ``run.state[output_block_id]`` when
      present, else the whole state;
    * docs shape ``{run_id, status, outputs, duration_ms}``;
    * one workflow event ``{name, data, ...}`` (``run_with_config``).
    """
    if not isinstance(body, dict):
        raise ScoutProtocolError(
            f"a workflow run answer must be a JSON object, got {type(body).__name__}", body=body
        )
    if isinstance(body.get("run"), dict):
        return _from_run_response(body)
    if isinstance(body.get("name"), str) and "status" not in body:
        return summarize_workflow_events([parse_workflow_event(body)], raw=body)
    return _from_docs_shape(body)
