"""How the fake Scout behaves for one agent, workflow or app.

Behaviours are frozen dataclasses: build one, register it with :meth:`FakeScout.agent`,
:meth:`FakeScout.workflow` or :meth:`FakeScout.app`, and derive variants with
:func:`dataclasses.replace`. The behaviour in force when a request arrives is the one used for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "EVENTS_FORMATS",
    "AgentBehaviour",
    "AppBehaviour",
    "EventsFormat",
    "WorkflowBehaviour",
]

EventsFormat = Literal["sse", "json", "json-object", "ndjson"]
"""Wire format of an ``events_url`` answer (see :data:`EVENTS_FORMATS`)."""

EVENTS_FORMATS: Mapping[str, str] = {
    "sse": "text/event-stream",
    "json": "application/json",
    "json-object": "application/json",
    "ndjson": "application/x-ndjson",
}
"""Each events format and the ``Content-Type`` it is served with."""

_DEFAULT_AGENT_ERROR: Mapping[str, str] = {
    "code": "agent_error",
    "message": "The agent run failed (fake Scout).",
}


def _non_negative(owner: str, **values: float | None) -> None:
    for name, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{owner}.{name} must be >= 0, got {value!r}")


def _check_cut_off_mode(mode: str) -> None:
    if mode not in ("clean", "abort"):
        raise ValueError(f"cut_off_mode must be 'clean' or 'abort', got {mode!r}")


@dataclass(frozen=True)
class AgentBehaviour:
    """What an agent does when an interaction is started.

    Attributes:
        outcome: the callback ``status``: ``"succeeded"`` or ``"failed"`` (any other string is
            sent verbatim, without an ``error``).
        error: the callback ``error`` object when ``outcome == "failed"``; a generic
            ``{"code": "agent_error", ...}`` when left ``None``.
        events: how many events the session's ``events_url`` serves (generated lazily, so
            100 000 or more is fine).
        events_format: ``"sse"``, ``"json"`` (a bare array), ``"json-object"``
            (``{"events": [...]}``) or ``"ndjson"``.
        event_interval: seconds to pause between two served events (a slow stream).
        reply: the assistant's text: the sync reply, and the text of the last event.
        accept_status: the 2xx status of an accepted async start (202; 200 to test tolerance).
        auto_callback: send the completion callback automatically; with ``False`` nothing is
            sent until the test calls :meth:`FakeScout.send_callback`.
        callback_delay: seconds between accepting the interaction and the first delivery.
        duplicates: extra deliveries of the same callback (same ``callback_event_id``, fresh
            signature timestamp), each with its own retries.
        concurrent_duplicates: send the original and all duplicates at the same moment from
            separate threads instead of one after another.
        callback_before_accept: deliver the callback (and wait for its answer, or
            ``FakeScout.before_accept_timeout``) before answering the start request.
        name: the agent's ``name`` in ``GET /agents``; defaults to the agent id.
        description: the agent's ``description`` in ``GET /agents``.
        cut_off_after: end a streamed interaction (``_interact``) after this many events,
            without its terminal event (``interaction_completed``/``interaction_failed``).
        cut_off_mode: how a cut-off ends: ``"clean"`` (the body ends normally) or ``"abort"``
            (the socket is closed mid-body, a transport error for the client).
    """

    outcome: str = "succeeded"
    error: Mapping[str, str] | None = None
    events: int = 5
    events_format: EventsFormat = "sse"
    event_interval: float = 0.0
    reply: str = "All done: this is the fake Scout agent's answer."
    accept_status: int = 202
    auto_callback: bool = True
    callback_delay: float = 0.0
    duplicates: int = 0
    concurrent_duplicates: bool = False
    callback_before_accept: bool = False
    name: str | None = None
    description: str = "An agent served by the fake Scout server."
    cut_off_after: int | None = None
    cut_off_mode: Literal["clean", "abort"] = "clean"

    def __post_init__(self) -> None:
        _check_cut_off_mode(self.cut_off_mode)
        if self.events_format not in EVENTS_FORMATS:
            raise ValueError(
                f"events_format must be one of {sorted(EVENTS_FORMATS)}, got {self.events_format!r}"
            )
        if not 200 <= self.accept_status < 300:
            raise ValueError(f"accept_status must be a 2xx status, got {self.accept_status}")
        _non_negative(
            "AgentBehaviour",
            events=self.events,
            event_interval=self.event_interval,
            callback_delay=self.callback_delay,
            duplicates=self.duplicates,
            cut_off_after=self.cut_off_after,
        )

    def callback_error(self) -> dict[str, str] | None:
        """The ``error`` object the callback carries (``None`` unless the outcome is failed)."""
        if self.outcome != "failed":
            return None
        return dict(self.error if self.error is not None else _DEFAULT_AGENT_ERROR)


@dataclass(frozen=True)
class WorkflowBehaviour:
    """What a workflow run returns (``POST /v2/workflows/...``).

    Attributes:
        shape: plain (non-streaming) answer shape: ``"sdk"`` is the official SDK's
            ``WorkflowRunResponse`` (``{"run": {...}, "workflow_id", "output_block_id"}``),
            ``"docs"`` the guide's ``{"run_id", "status", "outputs", "duration_ms"}``.
        outcome: ``"succeeded"`` or ``"failed"``.
        outputs: the workflow's output (``outputs``, ``run.state[output_block_id]``,
            ``workflow_run_completed.data.output``).
        error_message: the failure message (``block_run_failed`` / ``workflow_run_failed``
            ``data.message``, ``run.errors``).
        blocks: how many blocks the streamed run goes through (the last one is the output
            block, and the one that fails when the outcome is failed).
        updates_per_block: ``block_state_updated`` events (``partial`` tokens) per block,
            followed by one ``complete`` update.
        output_block_id: the id of the output block.
        duration_ms: ``duration_ms`` of the ``"docs"`` shape.
        stream_interval: seconds to pause between two streamed events.
        cut_off_after: end the stream after this many events, without a terminal event.
        cut_off_mode: how a cut-off ends: ``"clean"`` (the body ends normally) or ``"abort"``
            (the socket is closed mid-body, a transport error for the client).
        unknown_event_name: inject one event with this ``name`` right after
            ``workflow_run_started`` (clients must keep unknown events, not crash).
        sse_event_field: also write the SSE ``event: <name>`` line (Scout's SDK ignores it).
        keepalive_comments: write a ``: keep-alive`` SSE comment before every event.
        done_sentinel: end the stream with ``data: [DONE]``.
        config_response: what a non-streaming ``POST /v2/workflows/execute`` returns:
            ``"event"`` (one ``workflow_run_started`` event, as in Scout's reference page) or
            ``"run"`` (the plain run answer of :attr:`shape`).
    """

    shape: Literal["sdk", "docs"] = "sdk"
    outcome: Literal["succeeded", "failed"] = "succeeded"
    outputs: Mapping[str, Any] = field(
        default_factory=lambda: {"answer": "Hello from the fake Scout workflow."}
    )
    error_message: str = "Block failed (fake Scout)."
    blocks: int = 3
    updates_per_block: int = 2
    output_block_id: str = "output"
    duration_ms: int = 1840
    stream_interval: float = 0.0
    cut_off_after: int | None = None
    cut_off_mode: Literal["clean", "abort"] = "clean"
    unknown_event_name: str | None = None
    sse_event_field: bool = False
    keepalive_comments: bool = False
    done_sentinel: bool = False
    config_response: Literal["event", "run"] = "event"

    def __post_init__(self) -> None:
        if self.shape not in ("sdk", "docs"):
            raise ValueError(f"shape must be 'sdk' or 'docs', got {self.shape!r}")
        if self.outcome not in ("succeeded", "failed"):
            raise ValueError(f"outcome must be 'succeeded' or 'failed', got {self.outcome!r}")
        _check_cut_off_mode(self.cut_off_mode)
        if self.config_response not in ("event", "run"):
            raise ValueError(
                f"config_response must be 'event' or 'run', got {self.config_response!r}"
            )
        if self.blocks < 1:
            raise ValueError("WorkflowBehaviour.blocks must be >= 1")
        _non_negative(
            "WorkflowBehaviour",
            updates_per_block=self.updates_per_block,
            stream_interval=self.stream_interval,
            cut_off_after=self.cut_off_after,
            duration_ms=self.duration_ms,
        )


@dataclass(frozen=True)
class AppBehaviour:
    """What a legacy app returns (``POST /v1/apps/execute``).

    Attributes:
        tokens: the text tokens of the output block; streamed one ``message`` event each, and
            joined for the plain answer.
        block_name: the name of the output block (the key in ``outputs`` and in each
            streamed ``message``).
        extra_outputs: further blocks of the plain answer, ``{block name: output}``.
        start_message: the ``start_message`` event's text (``None``: no such event).
        error: an error message: streamed as an ``error`` event after the tokens, or, for a
            plain execution, answered with :attr:`error_status` and ``{"detail": error}``.
        error_status: the HTTP status of a plain execution that has an :attr:`error`.
        token_interval: seconds to pause between two streamed tokens.
        done_sentinel: the final event's data (``"[DONE]"``; Scout's prose also says
            ``"DONE"``); ``None`` ends the stream without it.
        elapsed_time_ms: ``metadata.elapsed_time_ms`` of each block.
    """

    tokens: Sequence[str] = ("Hello", ", ", "world", "!")
    block_name: str = "output"
    extra_outputs: Mapping[str, Any] = field(default_factory=dict)
    start_message: str | None = "Starting the app..."
    error: str | None = None
    error_status: int = 500
    token_interval: float = 0.0
    done_sentinel: str | None = "[DONE]"
    elapsed_time_ms: int = 122

    def __post_init__(self) -> None:
        if isinstance(self.tokens, str):
            raise TypeError("AppBehaviour.tokens must be a sequence of strings, not one string")
        _non_negative(
            "AppBehaviour",
            token_interval=self.token_interval,
            elapsed_time_ms=self.elapsed_time_ms,
        )
