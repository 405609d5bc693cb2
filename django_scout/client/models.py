"""Pydantic models of what Scout sends back, and the results the client returns.

Wire models (``Agent``, ``AgentRevision``, ...) allow extra fields, make nearly everything
optional and type enumerations as plain strings, because Scout's responses are documented loosely
and change. Result models (``WorkflowRunResult``, ``AppExecution``, ...) are built by the client
and keep the body they came from in ``raw``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActiveAgent",
    "ActorIdentity",
    "Agent",
    "AgentReply",
    "AgentRevision",
    "AgentStreamEvent",
    "AppExecution",
    "AppStreamEvent",
    "AsyncInteractionAccepted",
    "WebhookTriggerResult",
    "WireModel",
    "WorkflowRunResult",
]


class WireModel(BaseModel):
    """Base of models parsed from Scout's JSON: unknown fields are kept, numbers become strings."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class _Result(BaseModel):
    """Base of result objects built by the client (immutable)."""

    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------- agents


class ActorIdentity(WireModel):
    """Who created or can see something: ``type`` is ``organization``/``user``/``agent``/``system``
    or any other string."""

    type: str | None = None
    id: str | None = None


class Agent(WireModel):
    """An agent as ``GET /agents`` and ``GET /agents/{id}/active`` describe it."""

    id: str | None = None
    doc_type: str | None = None
    name: str | None = None
    description: str | None = None
    parent: str | None = None
    active_revision: str | None = None
    created_by: ActorIdentity | None = None
    updated_by: ActorIdentity | None = None
    visibility: ActorIdentity | None = None
    created_at: str | None = Field(default=None, description="ISO 8601 timestamp, as sent")
    updated_at: str | None = Field(default=None, description="ISO 8601 timestamp, as sent")
    is_seed: bool | None = None
    profile_icon_fill: str | None = None
    profile_asset_url: str | None = None
    from_persona: str | None = None


class AgentRevision(WireModel):
    """One revision of an agent's configuration (model, system prompt, tools...)."""

    id: str | None = None
    doc_type: str | None = None
    parent: str | None = None
    organization_id: str | None = None
    model_provider: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    response_style: str | None = None
    max_tokens: int | None = None
    max_turns: int | None = None
    tool_config: dict[str, Any] | None = None
    conversation_starters: list[str] | None = None
    dynamic_fallbacks: list[dict[str, Any]] | None = None
    created_by: ActorIdentity | None = None
    updated_by: ActorIdentity | None = None
    created_at: str | None = None
    updated_at: str | None = None
    is_seed: bool | None = None


class ActiveAgent(WireModel):
    """``GET /agents/{agent_id}/active``: the agent and its active revision."""

    agent: Agent | None = None
    revision: AgentRevision | None = None


class AsyncInteractionAccepted(_Result):
    """Scout accepted an async interaction; the result will be POSTed to the callback URL.

    ``events_url`` is opaque: store it and pass it to ``client.sessions.events()`` as is.
    """

    session_id: str
    events_url: str
    status_code: int = 202
    raw: dict[str, Any] = Field(default_factory=dict, description="the whole 2xx body")


class AgentReply(_Result):
    """The answer of a synchronous interaction (``_interact_sync``), whose shape Scout leaves open.

    ``data`` is the decoded JSON body, the text when the body is not JSON, or ``None`` when
    the body is empty; ``raw`` is the body text.
    """

    data: Any = None
    raw: str = ""
    status_code: int = 200


class AgentStreamEvent(_Result):
    """One server-sent event of an agent stream.

    ``event`` is the SSE event name (``"message"`` when the server names none); ``data`` is the
    decoded JSON (for an ``error`` event whose data is not JSON: the text).
    """

    event: str = "message"
    data: Any = None
    id: str | None = None


# --------------------------------------------------------------------------- workflows


class WorkflowRunResult(_Result):
    """One workflow run, normalized from whichever response shape Scout sent.

    ``status`` is ``"succeeded"``, ``"failed"``, ``"running"``, ``"unknown"`` (absent) or Scout's
    own string when it is none of those. ``outputs`` is the output block's state (SDK shape), the
    ``outputs`` object (docs shape) or ``data.output`` of a completion event. ``raw`` is the body
    (for an event stream: ``{"events": [...]}``).
    """

    run_id: str | None = None
    status: str = "unknown"
    outputs: Any = None
    duration_ms: float | None = None
    session_id: str | None = None
    errors: list[Any] = Field(default_factory=list)
    workflow_id: str | None = None
    raw: Any = None

    @property
    def succeeded(self) -> bool:
        """True when the run finished successfully."""
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        """True when the run finished with a failure."""
        return self.status == "failed"


class WebhookTriggerResult(_Result):
    """Scout's answer to a webhook trigger: status, decoded body (JSON, text or None) and text."""

    status_code: int
    body: Any = None
    raw: str = ""


# --------------------------------------------------------------------------- apps (legacy API)


class AppExecution(_Result):
    """``POST /v1/apps/execute``: the execution id and each block's ``{output, metadata}`` by
    block name."""

    id: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    raw: Any = None

    def output_of(self, block_name: str) -> Any:
        """Return ``outputs[block_name]["output"]`` (``None`` when that block sent nothing)."""
        block = self.outputs.get(block_name)
        return block.get("output") if isinstance(block, dict) else None


class AppStreamEvent(_Result):
    """One event of an app stream.

    ``event`` is ``"message"`` (``data``: decoded JSON keyed by block name), ``"start_message"``
    or ``"error"`` (``data``: the text), or another name (``data``: JSON when it decodes, else
    text). ``raw_data`` is the SSE data exactly as received. The ``[DONE]`` marker ends the
    iteration and is not yielded.
    """

    event: str
    data: Any = None
    raw_data: str = ""
    id: str | None = None
