"""Lazily generated, deterministic response bodies: agent events, workflow events, app SSE.

Nothing here builds a whole stream in memory: every body is an iterator of ``bytes`` pieces that
the transport writes as they come. An empty piece (``b""``) asks the transport to flush what it
has buffered (used before a deliberate pause). Generators pause with a ``wait(seconds)`` callable
that returns ``True`` when the server is stopping, and then end early.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import islice
from typing import Any

from django_scout.client.workflow_events import (
    BlockRunCompleted,
    BlockRunCompletedData,
    BlockRunFailed,
    BlockRunFailedData,
    BlockRunStarted,
    BlockRunStartedData,
    BlockStateUpdated,
    BlockStateUpdatedData,
    WorkflowEventData,
    WorkflowEventEnvelope,
    WorkflowRunCompleted,
    WorkflowRunCompletedData,
    WorkflowRunFailed,
    WorkflowRunFailedData,
    WorkflowRunStarted,
    WorkflowRunStartedData,
)

from .behaviours import AgentBehaviour, AppBehaviour, EventsFormat, WorkflowBehaviour

__all__ = [
    "AGENT_STREAM_COMPLETED",
    "AGENT_STREAM_FAILED",
    "FLUSH",
    "AbortStream",
    "Waiter",
    "WorkflowRunContext",
    "agent_event",
    "agent_events",
    "agent_stream_end",
    "agent_stream_sse",
    "app_plain_body",
    "app_sse",
    "encode_events",
    "envelope_environment",
    "iso_z",
    "sse_event",
    "workflow_events",
    "workflow_plain_body",
    "workflow_sse",
    "workflow_started_event",
]

FLUSH = b""
"""A body piece that asks the transport to flush its buffer now."""

Waiter = Callable[[float], bool]
"""``wait(seconds)``: sleep, and return ``True`` if the server is stopping meanwhile."""

_AGENT_EVENT_NAMES = ("message", "tool_call", "tool_result")


class AbortStream(Exception):
    """Raised by a body iterator to close the connection mid-body (no clean end)."""


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z`` suffix."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


@lru_cache(maxsize=8)
def _second_prefix(epoch_second: int) -> str:
    moment = datetime.fromtimestamp(epoch_second, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _iso_z_ms(epoch_ms: int) -> str:
    """Like :func:`iso_z` for a Unix time in milliseconds; fast for consecutive values."""
    second, millisecond = divmod(epoch_ms, 1000)
    return f"{_second_prefix(second)}.{millisecond:03d}Z"


def sse_event(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One Server-Sent Event; multi-line ``data`` becomes several ``data:`` lines."""
    head = "" if event_id is None else f"id: {event_id}\n"
    if event is not None:
        head += f"event: {event}\n"
    if "\n" in data:
        data = data.replace("\n", "\ndata: ")
    return f"{head}data: {data}\n\n".encode()


# --------------------------------------------------------------------------- agent events


def agent_event(
    session_id: str, index: int, total: int, created_at: datetime, reply: str
) -> dict[str, Any]:
    """Event number ``index`` (0-based) of ``total`` in a session; the same on every call.

    Events cycle through ``message``, ``tool_call`` and ``tool_result``; the last one is a
    ``message`` whose text is the agent's ``reply``.
    """
    digest = hashlib.sha256(f"{session_id}:{index}".encode()).hexdigest()
    epoch_ms = calendar.timegm(created_at.utctimetuple()) * 1000 + created_at.microsecond // 1000
    epoch_ms += index
    last = index == total - 1
    name = "message" if last else _AGENT_EVENT_NAMES[index % len(_AGENT_EVENT_NAMES)]
    data: dict[str, Any] = {"index": index}
    if last:
        data["text"] = reply
    elif name == "tool_call":
        data["text"] = f"Calling a tool - step {index}"
        data["tool"] = {"name": "lookup", "arguments": {"query": f"q-{digest[:6]}"}}
    elif name == "tool_result":
        data["text"] = f"Tool result ✓ step {index}"
        data["result"] = {"ok": True, "value": digest[6:14]}
    else:
        data["text"] = f"Thinking - step {index}"
    return {
        "id": f"evt_{digest[:24]}",
        "name": name,
        "timestamp": _iso_z_ms(epoch_ms),
        "data": data,
    }


def agent_events(
    session_id: str, total: int, created_at: datetime, reply: str
) -> Iterator[dict[str, Any]]:
    """All ``total`` events of a session, one at a time."""
    for index in range(total):
        yield agent_event(session_id, index, total, created_at, reply)


AGENT_STREAM_COMPLETED = "interaction_completed"
"""The name of the event that ends a streamed interaction that succeeded (the fake's choice:
Scout documents no agent event vocabulary)."""

AGENT_STREAM_FAILED = "interaction_failed"
"""The name of the event that ends a streamed interaction that failed."""


def agent_stream_end(
    session_id: str, total: int, created_at: datetime, behaviour: AgentBehaviour
) -> dict[str, Any]:
    """The event that ends a streamed interaction of ``total`` events: the outcome its callback
    would carry (``session_id``, ``status``, ``completed_at`` and, when failed, ``error``)."""
    failed = behaviour.outcome == "failed"
    digest = hashlib.sha256(f"{session_id}:end".encode()).hexdigest()
    event: dict[str, Any] = {
        "id": f"evt_{digest[:24]}",
        "name": AGENT_STREAM_FAILED if failed else AGENT_STREAM_COMPLETED,
        "timestamp": iso_z(created_at + timedelta(milliseconds=total)),
        "session_id": session_id,
        "status": behaviour.outcome,
        "completed_at": iso_z(datetime.now(timezone.utc)),
    }
    error = behaviour.callback_error()
    if error is not None:
        event["error"] = error
    return event


def agent_stream_sse(
    session_id: str, created_at: datetime, behaviour: AgentBehaviour, *, wait: Waiter
) -> Iterator[bytes]:
    """A streamed interaction's SSE body: the session's events, then its terminal event
    (:func:`agent_stream_end`) and ``data: [DONE]``, paced by ``event_interval``; or, with
    ``cut_off_after``, only that many events, ending cleanly or with the socket closed."""
    total = behaviour.events

    def streamed() -> Iterator[dict[str, Any]]:
        yield from agent_events(session_id, total, created_at, behaviour.reply)
        yield agent_stream_end(session_id, total, created_at, behaviour)  # completed_at: now

    events = streamed()
    cut_off = behaviour.cut_off_after
    if cut_off is not None and cut_off <= total:
        yield from encode_events(
            islice(events, cut_off), "sse", interval=behaviour.event_interval, wait=wait
        )
        if behaviour.cut_off_mode == "abort":
            yield FLUSH
            raise AbortStream
        return
    yield from encode_events(events, "sse", interval=behaviour.event_interval, wait=wait)
    yield sse_event("[DONE]")


_EVENTS_FRAMING: Mapping[str, tuple[bytes, bytes, bytes]] = {
    # (opening, separator, closing); one event per line so readers can count line by line.
    "json": (b"[\n", b",\n", b"\n]\n"),
    "json-object": (b'{"events": [\n', b",\n", b"\n]}\n"),
    "ndjson": (b"", b"\n", b"\n"),
}


def encode_events(
    events: Iterator[Mapping[str, Any]],
    fmt: EventsFormat,
    *,
    interval: float = 0.0,
    wait: Waiter,
) -> Iterator[bytes]:
    """Encode events in ``fmt`` (``sse``, ``json``, ``json-object`` or ``ndjson``), lazily."""
    if fmt == "sse":
        for position, event in enumerate(events):
            if position and interval:
                yield FLUSH
                if wait(interval):
                    return
            yield sse_event(
                _dumps(event).decode("utf-8"),
                event=str(event.get("name", "message")),
                event_id=str(event.get("id")),
            )
        return
    opening, separator, closing = _EVENTS_FRAMING[fmt]
    yield opening
    empty = True
    for position, event in enumerate(events):
        if position:
            if interval:
                yield FLUSH
                if wait(interval):
                    return
            yield separator
        empty = False
        yield _dumps(event)
    yield closing.lstrip(b"\n") if empty else closing


# --------------------------------------------------------------------------- workflows


_ENVELOPE_ENVIRONMENTS = {
    "production": "production",
    "staging": "preview",
    "development": "development",
    "console": "test",
}


def envelope_environment(query_environment: str | None) -> str:
    """The event envelope's ``environment`` for a query ``environment`` (the fake's mapping:
    staging → ``preview``, console → ``test``, none → ``production``)."""
    return _ENVELOPE_ENVIRONMENTS.get(query_environment or "production", "production")


@dataclass(frozen=True)
class WorkflowRunContext:
    """The identity of one workflow run, shared by its events and answers."""

    organization_id: str
    workflow_id: str
    run_id: str
    session_id: str
    environment: str
    inputs: Mapping[str, Any]
    workflow_config: Mapping[str, Any] | None
    started_at: datetime


def _block_ids(behaviour: WorkflowBehaviour) -> list[str]:
    ids = [f"block_{number}" for number in range(1, behaviour.blocks)]
    return [*ids, behaviour.output_block_id]


def _block_text(block_id: str, updates: int) -> list[str]:
    return [f"{block_id} token {index} " for index in range(updates)]


class _Envelope:
    """Builds workflow events from the client's own event models, with sequential ids and
    timestamps, so that the fake sends exactly the shapes the client parses."""

    def __init__(self, ctx: WorkflowRunContext) -> None:
        self.ctx = ctx
        self.sequence = 0

    def __call__(
        self, model: type[WorkflowEventEnvelope], data: WorkflowEventData, price: str = "0.00"
    ) -> dict[str, Any]:
        return self.named(model.event_name, data, price, model)

    def named(
        self,
        name: str,
        data: WorkflowEventData,
        price: str = "0.00",
        model: type[WorkflowEventEnvelope] = WorkflowEventEnvelope,
    ) -> dict[str, Any]:
        """An event called ``name`` (any name: the fake can send ones no client knows)."""
        self.sequence += 1
        ctx = self.ctx
        event = model(
            organization_id=ctx.organization_id,
            id=f"evt_{ctx.run_id}_{self.sequence:05d}",
            correlation_id=f"corr_{ctx.run_id}",
            name=name,
            environment=ctx.environment,
            timestamp=iso_z(ctx.started_at + timedelta(milliseconds=10 * self.sequence)),
            data=data,
            price=price,
            event_type="workflow_event",
            version="1.0",
        )
        return event.raw


def workflow_started_event(ctx: WorkflowRunContext) -> dict[str, Any]:
    """The ``workflow_run_started`` event of a run (also the single-event answer of a run with
    an inline workflow config)."""
    return _Envelope(ctx)(WorkflowRunStarted, _started_data(ctx), price="1.10")


def _started_data(ctx: WorkflowRunContext) -> WorkflowRunStartedData:
    return WorkflowRunStartedData(
        actor={"id": "user_fake_scout", "type": "external"},
        workflow_id=ctx.workflow_id,
        workflow_run_id=ctx.run_id,
        inputs=dict(ctx.inputs),
        session_id=ctx.session_id,
        state={},
        workflow_config=dict(ctx.workflow_config or {}),
        price=1.1,
    )


def workflow_events(
    ctx: WorkflowRunContext, behaviour: WorkflowBehaviour
) -> Iterator[dict[str, Any]]:
    """The run's events in the typical order (run started, per block started / state updates /
    completed or failed, run completed or failed)."""
    envelope = _Envelope(ctx)
    ids = {"workflow_id": ctx.workflow_id, "workflow_run_id": ctx.run_id}
    session = {"session_id": ctx.session_id}
    yield envelope(WorkflowRunStarted, _started_data(ctx), price="1.10")
    if behaviour.unknown_event_name:
        note = WorkflowEventData(**ids, note="an event name no client knows")
        yield envelope.named(behaviour.unknown_event_name, note)
    block_ids = _block_ids(behaviour)
    for block_id in block_ids:
        is_output = block_id == behaviour.output_block_id
        block = {**ids, "block_id": block_id, "block_type": "llm"}
        parts = {"config": {}, "metadata": {}, "state": {}, **session}
        yield envelope(BlockRunStarted, BlockRunStartedData(**block, **parts))
        if is_output and behaviour.outcome == "failed":
            message = behaviour.error_message
            yield envelope(
                BlockRunFailed,
                BlockRunFailedData(**block, **parts, cost=0.0, message=message, status_code=500),
            )
            yield envelope(
                WorkflowRunFailed, WorkflowRunFailedData(**ids, **session, message=message)
            )
            return
        tokens = _block_text(block_id, behaviour.updates_per_block)
        for token in tokens:
            yield envelope(
                BlockStateUpdated,
                BlockStateUpdatedData(
                    **block, update_type="partial", update_data={"output": token}
                ),
            )
        complete: dict[str, Any] = (
            dict(behaviour.outputs) if is_output else {"output": "".join(tokens)}
        )
        yield envelope(
            BlockStateUpdated,
            BlockStateUpdatedData(**block, update_type="complete", update_data=complete),
        )
        yield envelope(
            BlockRunCompleted,
            BlockRunCompletedData(**block, **parts, cost=0.001, price=0.001),
            price="0.001",
        )
    yield envelope(
        WorkflowRunCompleted,
        WorkflowRunCompletedData(**ids, output=dict(behaviour.outputs), **session),
    )


def workflow_sse(
    ctx: WorkflowRunContext, behaviour: WorkflowBehaviour, *, wait: Waiter
) -> Iterator[bytes]:
    """The run's events as an SSE body, with the behaviour's pacing, cut-off and extras."""
    for position, event in enumerate(workflow_events(ctx, behaviour)):
        if behaviour.cut_off_after is not None and position >= behaviour.cut_off_after:
            if behaviour.cut_off_mode == "abort":
                yield FLUSH
                raise AbortStream
            return
        if position and behaviour.stream_interval:
            yield FLUSH
            if wait(behaviour.stream_interval):
                return
        if behaviour.keepalive_comments:
            yield b": keep-alive\n\n"
        event_name = str(event["name"]) if behaviour.sse_event_field else None
        yield sse_event(_dumps(event).decode("utf-8"), event=event_name)
    if behaviour.done_sentinel:
        yield sse_event("[DONE]")


def workflow_plain_body(ctx: WorkflowRunContext, behaviour: WorkflowBehaviour) -> dict[str, Any]:
    """The non-streaming answer in the behaviour's shape (``"sdk"`` or ``"docs"``)."""
    failed = behaviour.outcome == "failed"
    if behaviour.shape == "docs":
        return {
            "run_id": ctx.run_id,
            "status": "failed" if failed else "success",
            "outputs": {} if failed else dict(behaviour.outputs),
            "duration_ms": behaviour.duration_ms,
        }
    state: dict[str, Any] = {"inputs": dict(ctx.inputs)}
    for block_id in _block_ids(behaviour):
        if block_id == behaviour.output_block_id:
            if not failed:
                state[block_id] = dict(behaviour.outputs)
        else:
            state[block_id] = {
                "output": "".join(_block_text(block_id, behaviour.updates_per_block))
            }
    return {
        "run": {
            "stop_reason": (WorkflowRunFailed if failed else WorkflowRunCompleted).event_name,
            "state": state,
            "errors": [behaviour.error_message] if failed else [],
            "session_id": ctx.session_id,
            "workflow_run_id": ctx.run_id,
        },
        "workflow_id": ctx.workflow_id,
        "output_block_id": behaviour.output_block_id,
    }


# --------------------------------------------------------------------------- apps


def app_sse(behaviour: AppBehaviour, *, wait: Waiter) -> Iterator[bytes]:
    """A legacy app's SSE body: ``start_message``, one ``message`` per token, optional
    ``error``, then the done sentinel."""
    if behaviour.start_message is not None:
        yield sse_event(behaviour.start_message, event="start_message")
    for position, token in enumerate(behaviour.tokens):
        if position and behaviour.token_interval:
            yield FLUSH
            if wait(behaviour.token_interval):
                return
        payload = {behaviour.block_name: {"output": token}}
        yield sse_event(_dumps(payload).decode("utf-8"), event="message")
    if behaviour.error is not None:
        yield sse_event(behaviour.error, event="error")
    if behaviour.done_sentinel is not None:
        yield sse_event(behaviour.done_sentinel)


def app_plain_body(execution_id: str, behaviour: AppBehaviour) -> dict[str, Any]:
    """A legacy app's plain answer: ``{"id", "outputs": {<block name>: {output, metadata}}}``."""
    metadata = {"elapsed_time_ms": behaviour.elapsed_time_ms}
    outputs: dict[str, Any] = {
        name: {"output": output, "metadata": dict(metadata)}
        for name, output in behaviour.extra_outputs.items()
    }
    outputs[behaviour.block_name] = {"output": "".join(behaviour.tokens), "metadata": metadata}
    return {"id": execution_id, "outputs": outputs}
