"""Turn Scout's responses into result objects. Pure functions, shared by sync and async.

Each ``parse_*`` takes a response whose body has been read. Each ``*Decoder`` turns the
messages of one kind of stream into items, one message at a time (constant memory), and also
knows what to yield when Scout answers with plain JSON instead of a stream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from ._json_depth import load_json
from ._responses import decode_body
from ._workflow_results import event_raw, normalize_workflow_result, summarize_workflow_events
from .errors import ScoutProtocolError
from .models import (
    ActiveAgent,
    Agent,
    AgentReply,
    AgentStreamEvent,
    AppExecution,
    AppStreamEvent,
    AsyncInteractionAccepted,
    WebhookTriggerResult,
    WorkflowRunResult,
)
from .streams import SSEMessage, is_done, iter_sse, parse_json_data
from .workflow_events import (
    WorkflowEvent,
    WorkflowStreamError,
    parse_workflow_event,
)

__all__ = [
    "END",
    "SKIP",
    "AgentStreamDecoder",
    "AppStreamDecoder",
    "StreamDecoder",
    "StreamMarker",
    "WorkflowStreamDecoder",
    "parse_accepted",
    "parse_active_agent",
    "parse_agent_list",
    "parse_agent_reply",
    "parse_app_execution",
    "parse_run_with_config",
    "parse_webhook_result",
    "parse_workflow_run",
]

T_co = TypeVar("T_co", covariant=True)


class StreamMarker:
    """A decoder's answer that is not an item (:data:`END` or :data:`SKIP`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: A decoder returns this when the stream is finished (``[DONE]``).
END: Final = StreamMarker("END")
#: A decoder returns this for a message that carries nothing (empty data).
SKIP: Final = StreamMarker("SKIP")


# --------------------------------------------------------------------------- helpers


def _json_of(response: httpx.Response, what: str) -> Any:
    try:
        return load_json(response.text) if response.text.strip() else None
    except ValueError:
        raise ScoutProtocolError(
            f"Scout answered {what} with {response.status_code} but the body is not JSON",
            status_code=response.status_code,
            body=response.text[:4096],
        ) from None


def _protocol_error(what: str, response: httpx.Response, body: Any, problem: str) -> Exception:
    return ScoutProtocolError(
        f"Scout answered {what} with {response.status_code} but {problem}",
        status_code=response.status_code,
        body=body,
    )


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- agents


def parse_accepted(response: httpx.Response) -> AsyncInteractionAccepted:
    """The 2xx answer of an async interaction; ``session_id`` and ``events_url`` are required."""
    what = "the async interaction"
    body = _json_of(response, what)
    if not isinstance(body, dict):
        raise _protocol_error(what, response, body, "the body is not a JSON object")
    session_id, events_url = body.get("session_id"), body.get("events_url")
    missing = [
        name
        for name, value in (("session_id", session_id), ("events_url", events_url))
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise _protocol_error(what, response, body, f"it lacks {' and '.join(missing)}")
    return AsyncInteractionAccepted(
        session_id=session_id, events_url=events_url, status_code=response.status_code, raw=body
    )


def parse_agent_reply(response: httpx.Response) -> AgentReply:
    """A synchronous interaction's answer: decoded JSON, text, or ``None`` for an empty body."""
    text = response.text
    return AgentReply(data=decode_body(text), raw=text, status_code=response.status_code)


def parse_agent_list(response: httpx.Response) -> list[Agent]:
    """``GET agents``: a bare array (a ``{"data": [...]}`` wrapper is accepted too)."""
    what = "GET agents"
    body = _json_of(response, what)
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = body["data"]
    if not isinstance(body, list):
        raise _protocol_error(what, response, body, "the body is not a JSON array")
    try:
        return [Agent.model_validate(item) for item in body]
    except ValidationError as exc:
        raise _protocol_error(what, response, body, f"an agent does not parse: {exc}") from None


def parse_active_agent(response: httpx.Response) -> ActiveAgent:
    """``GET agents/{id}/active``: ``{agent, revision}``."""
    what = "GET agents/{id}/active"
    body = _json_of(response, what)
    try:
        return ActiveAgent.model_validate(body)
    except ValidationError as exc:
        raise _protocol_error(what, response, body, f"the body does not parse: {exc}") from None


class StreamDecoder(Protocol[T_co]):
    """Turns stream messages (or a plain JSON answer) into items."""

    def message(self, message: SSEMessage, position: int) -> T_co | StreamMarker:
        """The item for one SSE message, :data:`END` to stop, or :data:`SKIP`."""

    def json_items(self, body: Any) -> Sequence[T_co]:
        """The items for a JSON (not SSE) answer."""


class AgentStreamDecoder:
    """Agent streams: each message's data is JSON (an ``error`` event may be plain text)."""

    def message(self, message: SSEMessage, position: int) -> AgentStreamEvent | StreamMarker:
        """Decode one agent SSE message."""
        if is_done(message):
            return END
        if message.event == "error":
            return AgentStreamEvent(event="error", data=decode_body(message.data), id=message.id)
        if not message.data:
            return SKIP
        data = parse_json_data(message, position=position)
        return AgentStreamEvent(event=message.event, data=data, id=message.id)

    def json_items(self, body: Any) -> list[AgentStreamEvent]:
        """A JSON answer (e.g. 202 ``{session_id, events_url}``) as one ``message`` event."""
        return [AgentStreamEvent(event="message", data=body)]


# --------------------------------------------------------------------------- workflows


def parse_workflow_run(response: httpx.Response) -> WorkflowRunResult:
    """The answer of ``workflows.run`` (``POST v2/workflows/{workflow_id}/execute``)."""
    return normalize_workflow_result(_json_of(response, "the workflow run"))


def parse_run_with_config(response: httpx.Response) -> WorkflowRunResult:
    """The answer of ``workflows.run_with_config`` (``POST v2/workflows/execute``): JSON (a run
    response or one event) or, when Scout streams anyway, SSE folded into one result."""
    if "text/event-stream" not in response.headers.get("content-type", "").lower():
        return parse_workflow_run(response)
    decoder = WorkflowStreamDecoder()
    events: list[WorkflowEvent] = []
    for position, message in enumerate(iter_sse(response)):
        item = decoder.message(message, position)
        if item is END:
            break
        if not isinstance(item, StreamMarker):
            events.append(item)
    return summarize_workflow_events(events, raw={"events": [event_raw(e) for e in events]})


class WorkflowStreamDecoder:
    """Workflow streams: each message's data is one event object; ``[DONE]`` ends."""

    def message(self, message: SSEMessage, position: int) -> WorkflowEvent | StreamMarker:
        """Decode one workflow SSE message (non-JSON data raises :class:`ScoutStreamError`)."""
        if is_done(message):
            return END
        if message.event == "error":
            return WorkflowStreamError(message=message.data, data=_json_or_none(message.data))
        if not message.data:
            return SKIP
        return parse_workflow_event(parse_json_data(message, position=position))

    def json_items(self, body: Any) -> list[WorkflowEvent]:
        """A JSON answer: one event (or each item of an array of events)."""
        items = body if isinstance(body, list) else [body]
        return [parse_workflow_event(item) for item in items]


def _json_or_none(text: str) -> Any:
    try:
        return load_json(text)
    except ValueError:
        return None


def parse_webhook_result(response: httpx.Response) -> WebhookTriggerResult:
    """Any 2xx answer of a webhook trigger, whatever its body."""
    text = response.text
    return WebhookTriggerResult(status_code=response.status_code, body=decode_body(text), raw=text)


# --------------------------------------------------------------------------- apps


def parse_app_execution(response: httpx.Response) -> AppExecution:
    """``POST v1/apps/execute`` (not streaming): ``{id, outputs}``."""
    what = "the app execution"
    body = _json_of(response, what)
    if not isinstance(body, dict):
        raise _protocol_error(what, response, body, "the body is not a JSON object")
    outputs = body.get("outputs")
    return AppExecution(
        id=_str_or_none(body.get("id")),
        outputs=outputs if isinstance(outputs, dict) else {},
        raw=body,
    )


class AppStreamDecoder:
    """App streams: ``message`` data is JSON, ``start_message``/``error`` data is text."""

    def message(self, message: SSEMessage, position: int) -> AppStreamEvent | StreamMarker:
        """Decode one app SSE message."""
        if is_done(message):
            return END
        if message.event == "message":
            if not message.data:
                return SKIP
            data = parse_json_data(message, position=position)
        elif message.event in ("start_message", "error"):
            data = message.data
        else:
            data = decode_body(message.data)
        return AppStreamEvent(event=message.event, data=data, raw_data=message.data, id=message.id)

    def json_items(self, body: Any) -> list[AppStreamEvent]:
        """A JSON answer (``{id, outputs}``) as one ``message`` event."""
        return [AppStreamEvent(event="message", data=body, raw_data=json.dumps(body))]
