"""Workflow lifecycle events (the items of a workflow stream) and :func:`parse_workflow_event`.

Scout discriminates events by the JSON ``name`` field. Seven names are known; every other name
becomes an :class:`UnknownWorkflowEvent` holding the raw object, so nothing is dropped. An SSE
event named ``error`` becomes a :class:`WorkflowStreamError` carrying the server's text.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, ValidationError

from .models import WireModel

__all__ = [
    "KNOWN_WORKFLOW_EVENTS",
    "BlockRunCompleted",
    "BlockRunCompletedData",
    "BlockRunFailed",
    "BlockRunFailedData",
    "BlockRunStarted",
    "BlockRunStartedData",
    "BlockStateUpdated",
    "BlockStateUpdatedData",
    "UnknownWorkflowEvent",
    "WorkflowEvent",
    "WorkflowEventData",
    "WorkflowEventEnvelope",
    "WorkflowRunCompleted",
    "WorkflowRunCompletedData",
    "WorkflowRunFailed",
    "WorkflowRunFailedData",
    "WorkflowRunStarted",
    "WorkflowRunStartedData",
    "WorkflowStreamError",
    "parse_workflow_event",
]


# --------------------------------------------------------------------------- data payloads


class WorkflowEventData(WireModel):
    """Fields every event's ``data`` may carry."""

    workflow_id: str | None = None
    workflow_run_id: str | None = None
    session_id: str | None = None
    workflow_config: dict[str, Any] | None = None


class WorkflowRunStartedData(WorkflowEventData):
    """``data`` of ``workflow_run_started``; ``price`` is a number here (a string on the
    envelope)."""

    actor: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    price: float | None = None


class WorkflowRunCompletedData(WorkflowEventData):
    """``data`` of ``workflow_run_completed``; ``output`` is the workflow's result."""

    output: Any = None


class WorkflowRunFailedData(WorkflowEventData):
    """``data`` of ``workflow_run_failed``; ``message`` says why."""

    message: str | None = None


class _BlockData(WorkflowEventData):
    block_id: str | None = None
    block_type: str | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    state: dict[str, Any] | None = None


class BlockRunStartedData(_BlockData):
    """``data`` of ``block_run_started``."""


class BlockRunCompletedData(_BlockData):
    """``data`` of ``block_run_completed`` (``cost`` and ``price`` are numbers)."""

    cost: float | None = None
    price: float | None = None


class BlockRunFailedData(_BlockData):
    """``data`` of ``block_run_failed``: ``message`` (why) and the optional ``status_code``."""

    cost: float | None = None
    message: str | None = None
    status_code: int | None = None


class BlockStateUpdatedData(WorkflowEventData):
    """``data`` of ``block_state_updated``: ``update_type`` ``complete`` replaces the block's
    state with ``update_data``; ``partial`` is merged into it."""

    block_id: str | None = None
    block_type: str | None = None
    update_data: Any = None
    update_type: str | None = None


# --------------------------------------------------------------------------- envelopes


class WorkflowEventEnvelope(WireModel):
    """Fields every workflow event carries besides its ``data`` (one envelope, the same on all
    seven known events); all but ``name`` optional."""

    name: str
    organization_id: str | None = None
    id: str | None = None
    correlation_id: str | None = None
    environment: str | None = None
    timestamp: str | None = None
    price: str | None = None
    event_type: str | None = None
    version: str | None = None

    #: the JSON ``name`` this class parses
    event_name: ClassVar[str] = ""

    @property
    def raw(self) -> dict[str, Any]:
        """The event as a plain dict, unknown fields included."""
        return self.model_dump(mode="json", exclude_unset=True)


class WorkflowRunStarted(WorkflowEventEnvelope):
    """The run started."""

    event_name: ClassVar[str] = "workflow_run_started"
    name: Literal["workflow_run_started"] = "workflow_run_started"
    data: WorkflowRunStartedData | None = None


class WorkflowRunCompleted(WorkflowEventEnvelope):
    """The run finished; ``data.output`` is its result."""

    event_name: ClassVar[str] = "workflow_run_completed"
    name: Literal["workflow_run_completed"] = "workflow_run_completed"
    data: WorkflowRunCompletedData | None = None


class WorkflowRunFailed(WorkflowEventEnvelope):
    """The run failed; ``data.message`` says why."""

    event_name: ClassVar[str] = "workflow_run_failed"
    name: Literal["workflow_run_failed"] = "workflow_run_failed"
    data: WorkflowRunFailedData | None = None


class BlockRunStarted(WorkflowEventEnvelope):
    """A block started."""

    event_name: ClassVar[str] = "block_run_started"
    name: Literal["block_run_started"] = "block_run_started"
    data: BlockRunStartedData | None = None


class BlockRunCompleted(WorkflowEventEnvelope):
    """A block finished."""

    event_name: ClassVar[str] = "block_run_completed"
    name: Literal["block_run_completed"] = "block_run_completed"
    data: BlockRunCompletedData | None = None


class BlockRunFailed(WorkflowEventEnvelope):
    """A block failed."""

    event_name: ClassVar[str] = "block_run_failed"
    name: Literal["block_run_failed"] = "block_run_failed"
    data: BlockRunFailedData | None = None


class BlockStateUpdated(WorkflowEventEnvelope):
    """A block's state changed (where streamed LLM output appears)."""

    event_name: ClassVar[str] = "block_state_updated"
    name: Literal["block_state_updated"] = "block_state_updated"
    data: BlockStateUpdatedData | None = None


class UnknownWorkflowEvent(BaseModel):
    """An event this client has no model for, or a known one that did not validate.

    ``raw`` is the decoded JSON exactly as received; ``problem`` says why it was not typed.
    """

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    raw: Any = None
    problem: str | None = None


class WorkflowStreamError(BaseModel):
    """The server sent an SSE event named ``error`` in a workflow stream.

    ``message`` is the event's data text; ``data`` is that text decoded when it is JSON. The
    stream goes on after it (Scout may still send a ``workflow_run_failed``).
    """

    model_config = ConfigDict(frozen=True)

    name: Literal["error"] = "error"
    message: str = ""
    data: Any = None


#: One of the seven documented events.
KnownWorkflowEvent: TypeAlias = (
    WorkflowRunStarted
    | WorkflowRunCompleted
    | WorkflowRunFailed
    | BlockRunStarted
    | BlockRunCompleted
    | BlockRunFailed
    | BlockStateUpdated
)
#: Anything a workflow stream yields.
WorkflowEvent: TypeAlias = KnownWorkflowEvent | UnknownWorkflowEvent | WorkflowStreamError

_MODELS: tuple[type[WorkflowEventEnvelope], ...] = (
    WorkflowRunStarted,
    WorkflowRunCompleted,
    WorkflowRunFailed,
    BlockRunStarted,
    BlockRunCompleted,
    BlockRunFailed,
    BlockStateUpdated,
)
_MODEL_BY_NAME: dict[str, type[WorkflowEventEnvelope]] = {m.event_name: m for m in _MODELS}

#: The seven event names Scout documents.
KNOWN_WORKFLOW_EVENTS: frozenset[str] = frozenset(_MODEL_BY_NAME)


def parse_workflow_event(obj: Any) -> WorkflowEvent:
    """Turn one decoded event object into its typed model, dispatching on ``obj["name"]``.

    Never raises and never drops: an unknown name, a non-object, or a known name whose fields
    do not validate gives an :class:`UnknownWorkflowEvent` keeping ``obj``.
    """
    if not isinstance(obj, dict):
        return UnknownWorkflowEvent(raw=obj, problem=f"not a JSON object: {type(obj).__name__}")
    name = obj.get("name")
    model = _MODEL_BY_NAME.get(name) if isinstance(name, str) else None
    if model is None:
        shown = name if isinstance(name, str) else None
        return UnknownWorkflowEvent(name=shown, raw=obj, problem="unknown event name")
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as exc:
        problem = f"does not match {model.__name__}: {exc.error_count()} invalid field(s)"
        return UnknownWorkflowEvent(name=name, raw=obj, problem=problem)
