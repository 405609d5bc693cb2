"""Workflows: run (both response shapes), run_with_config (three branches), stream, webhook."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from django_scout.client import (
    BlockRunCompleted,
    BlockRunFailed,
    BlockRunStarted,
    BlockStateUpdated,
    ScoutAuthError,
    ScoutNotFoundError,
    ScoutProtocolError,
    ScoutStreamError,
    ScoutTransportError,
    UnknownWorkflowEvent,
    UntrustedURLError,
    WebhookTriggerResult,
    WorkflowRunCompleted,
    WorkflowRunFailed,
    WorkflowRunResult,
    WorkflowRunStarted,
    WorkflowStreamError,
    parse_workflow_event,
)
from tests.client.helpers import API_KEY, body_of, json_response, sse_json, sse_response

DOCS_SHAPE = {
    "run_id": "run_1",
    "status": "success",
    "outputs": {"answer": 42},
    "duration_ms": 1234,
}
SDK_SHAPE: dict[str, Any] = {
    "run": {
        "stop_reason": "workflow_run_completed",
        "state": {"inputs": {"q": "x"}, "llm_1": {"output": "..."}, "out": {"urgency": "high"}},
        "errors": [],
        "session_id": "sess_1",
        "workflow_run_id": "run_2",
    },
    "workflow_id": "wf_1",
    "output_block_id": "out",
}


def envelope(name: str, **data: object) -> dict[str, object]:
    return {
        "organization_id": "org_1",
        "id": f"evt_{name}",
        "name": name,
        "environment": "production",
        "timestamp": "2025-01-01T00:00:00Z",
        "price": "1.10",
        "event_type": "workflow_event",
        "version": "1.0",
        "data": {"workflow_id": "wf_1", "workflow_run_id": "run_9", "session_id": "sess_9", **data},
    }


ALL_SEVEN = [
    envelope(
        "workflow_run_started", inputs={"q": "x"}, price=1.1, actor={"id": "u", "type": "external"}
    ),
    envelope("block_run_started", block_id="b1", config={}, state={}),
    envelope(
        "block_state_updated",
        block_id="b1",
        block_type="llm",
        update_data={"t": "Hel"},
        update_type="partial",
    ),
    envelope("block_run_completed", block_id="b1", config={}, state={}, price=0.5, cost=0.1),
    envelope(
        "block_run_failed", block_id="b2", config={}, state={}, message="boom", status_code=500
    ),
    envelope("workflow_run_failed", message="block b2 failed"),
    envelope("workflow_run_completed", output={"answer": 42}),
]


# --------------------------------------------------------------------------- run


async def test_run_docs_shape(make):
    h = make(lambda request: json_response(200, DOCS_SHAPE))
    result = await h.call(
        "workflows.run",
        "wf 1",
        {"ticket_id": "T-1"},
        environment="production",
        revision_id="rev_3",
        session_id="sess_7",
    )
    assert isinstance(result, WorkflowRunResult)
    assert (result.run_id, result.status, result.outputs, result.duration_ms) == (
        "run_1",
        "succeeded",
        {"answer": 42},
        1234.0,
    )
    assert result.succeeded
    assert not result.failed
    assert result.raw == DOCS_SHAPE
    request = h.last
    assert request.method == "POST"
    assert request.url.raw_path.split(b"?")[0] == b"/v2/workflows/wf%201/execute"
    assert dict(request.url.params) == {
        "environment": "production",
        "revision_id": "rev_3",
        "session_id": "sess_7",
    }
    assert body_of(request) == {"inputs": {"ticket_id": "T-1"}, "streaming": False}
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_run_without_inputs_or_query(make):
    h = make(lambda request: json_response(200, DOCS_SHAPE))
    await h.call("workflows.run", "wf1")
    assert h.last.url.query == b""
    assert body_of(h.last) == {"streaming": False}


async def test_run_sdk_shape_uses_output_block_state(make):
    h = make(lambda request: json_response(200, SDK_SHAPE))
    result = await h.call("workflows.run", "wf_1", {"q": "x"})
    assert result.run_id == "run_2"
    assert result.status == "succeeded"
    assert result.outputs == {"urgency": "high"}
    assert result.session_id == "sess_1"
    assert result.workflow_id == "wf_1"
    assert result.errors == []
    assert result.duration_ms is None
    assert result.raw == SDK_SHAPE


async def test_run_sdk_shape_without_output_block_gives_whole_state(make):
    body = {
        "run": {**SDK_SHAPE["run"], "stop_reason": "workflow_run_failed", "errors": ["bad"]},
        "workflow_id": "wf_1",
    }
    h = make(lambda request: json_response(200, body))
    result = await h.call("workflows.run", "wf_1")
    assert result.status == "failed"
    assert result.failed
    assert result.errors == ["bad"]
    assert result.outputs == SDK_SHAPE["run"]["state"]


@pytest.mark.parametrize(
    ("raw_status", "normalized"),
    [
        ("success", "succeeded"),
        ("completed", "succeeded"),
        ("workflow_run_completed", "succeeded"),
        ("failed", "failed"),
        ("error", "failed"),
        ("workflow_run_failed", "failed"),
        ("running", "running"),
        ("cancelled", "cancelled"),
        (None, "unknown"),
    ],
)
async def test_run_status_normalization(make, raw_status, normalized):
    h = make(lambda request: json_response(200, {"run_id": "r", "status": raw_status}))
    result = await h.call("workflows.run", "wf")
    assert result.status == normalized


async def test_run_non_object_answer_is_a_protocol_error(make):
    h = make(lambda request: json_response(200, ["not", "an", "object"]))
    with pytest.raises(ScoutProtocolError, match="JSON object"):
        await h.call("workflows.run", "wf")


async def test_run_errors_are_mapped(make):
    h = make(lambda request: json_response(404, {"detail": "Workflow not found"}))
    with pytest.raises(ScoutNotFoundError, match="Workflow not found"):
        await h.call("workflows.run", "missing")


# --------------------------------------------------------------------------- run_with_config

CONFIG = {"workflow_display_name": "Inline", "blocks": []}


async def test_run_with_config_run_response_branch(make):
    h = make(lambda request: json_response(200, SDK_SHAPE))
    result = await h.call(
        "workflows.run_with_config",
        CONFIG,
        {"q": "x"},
        workflow_key="key-1",
        environment="console",
    )
    assert result.status == "succeeded"
    assert result.outputs == {"urgency": "high"}
    assert h.last.url.raw_path == b"/v2/workflows/execute?environment=console"
    assert body_of(h.last) == {
        "workflow_config": CONFIG,
        "workflow_key": "key-1",
        "inputs": {"q": "x"},
        "streaming": False,
    }


@pytest.mark.parametrize(
    ("event", "status", "outputs", "errors"),
    [
        (envelope("workflow_run_started", inputs={}, price=1.1), "running", None, []),
        (envelope("workflow_run_completed", output={"a": 1}), "succeeded", {"a": 1}, []),
        (envelope("workflow_run_failed", message="nope"), "failed", None, ["nope"]),
    ],
)
async def test_run_with_config_event_branch(make, event, status, outputs, errors):
    h = make(lambda request: json_response(200, event))
    result = await h.call("workflows.run_with_config", {})
    assert (result.status, result.outputs, result.errors) == (status, outputs, errors)
    assert (result.run_id, result.session_id, result.workflow_id) == ("run_9", "sess_9", "wf_1")
    assert result.raw == event
    assert body_of(h.last) == {"workflow_config": {}, "streaming": False}


async def test_run_with_config_sse_branch_uses_last_run_event(make):
    h = make(
        lambda request: sse_json(
            envelope("workflow_run_started", inputs={}, price=1.1),
            envelope("block_run_completed", block_id="b", config={}, state={}, price=0.1),
            envelope("workflow_run_completed", output={"final": True}),
        )
    )
    result = await h.call("workflows.run_with_config", CONFIG)
    assert result.status == "succeeded"
    assert result.outputs == {"final": True}
    assert result.run_id == "run_9"
    assert [event["name"] for event in result.raw["events"]] == [
        "workflow_run_started",
        "block_run_completed",
        "workflow_run_completed",
    ]


async def test_run_with_config_sse_branch_failure_and_error_event(make):
    h = make(
        lambda request: sse_response(
            (None, json.dumps(envelope("workflow_run_started", inputs={}, price=1.0))),
            ("error", "quota exceeded"),
            (None, "[DONE]"),
        )
    )
    result = await h.call("workflows.run_with_config", CONFIG)
    assert result.status == "failed"
    assert result.errors == ["quota exceeded"]


async def test_run_with_config_requires_a_config(make):
    h = make(lambda request: json_response(200, {}))
    with pytest.raises(ValueError, match="workflow_config is required"):
        await h.call("workflows.run_with_config", None)
    with pytest.raises(ValueError, match="workflow_config must be a dict"):
        await h.call("workflows.run_with_config", "yaml: no")
    assert h.calls == []


# --------------------------------------------------------------------------- stream


async def test_stream_all_seven_events_unknown_kept_and_done_ends(make):
    unknown = {"name": "workflow_run_paused", "data": {"why": "manual"}, "extra": 1}
    h = make(
        lambda request: sse_response(
            *((None, json.dumps(event)) for event in ALL_SEVEN),
            (None, json.dumps(unknown)),
            (None, "[DONE]"),
            (None, json.dumps(envelope("workflow_run_started"))),
        )
    )
    events = await h.collect(
        "workflows.stream", "wf_1", {"q": "x"}, environment="staging", session_id="s1"
    )
    assert [type(e) for e in events] == [
        WorkflowRunStarted,
        BlockRunStarted,
        BlockStateUpdated,
        BlockRunCompleted,
        BlockRunFailed,
        WorkflowRunFailed,
        WorkflowRunCompleted,
        UnknownWorkflowEvent,
    ]
    started, _, updated, completed_block, failed_block, failed_run, completed_run, other = events
    assert started.data.price == 1.1
    assert started.price == "1.10"
    assert started.data.actor == {"id": "u", "type": "external"}
    assert updated.data.update_data == {"t": "Hel"}
    assert updated.data.update_type == "partial"
    assert completed_block.data.cost == 0.1
    assert failed_block.data.message == "boom"
    assert failed_block.data.status_code == 500
    assert failed_run.data.message == "block b2 failed"
    assert completed_run.data.output == {"answer": 42}
    assert completed_run.environment == "production"
    assert completed_run.version == "1.0"
    assert other.name == "workflow_run_paused"
    assert other.raw == unknown
    request = h.last
    assert body_of(request) == {"inputs": {"q": "x"}, "streaming": True}
    assert dict(request.url.params) == {"environment": "staging", "session_id": "s1"}
    assert request.headers["accept"] == "text/event-stream"


async def test_stream_non_json_data_raises_stream_error(make):
    h = make(
        lambda request: sse_response(
            (None, json.dumps(envelope("workflow_run_started"))), (None, "token soup")
        )
    )
    seen: list[Any] = []
    with pytest.raises(ScoutStreamError, match="event 1"):
        await h.collect_into(seen, "workflows.stream", "wf")
    assert [type(e) for e in seen] == [WorkflowRunStarted]


async def test_stream_error_event_is_yielded_not_raised(make):
    h = make(
        lambda request: sse_response(
            ("error", "rate limited upstream"),
            ("error", '{"code": 7}'),
            (None, json.dumps(envelope("workflow_run_failed", message="x"))),
        )
    )
    events = await h.collect("workflows.stream", "wf")
    assert events[0] == WorkflowStreamError(message="rate limited upstream", data=None)
    assert events[1] == WorkflowStreamError(message='{"code": 7}', data={"code": 7})
    assert isinstance(events[2], WorkflowRunFailed)


async def test_stream_json_answer_yields_the_single_event(make):
    event = envelope("workflow_run_started", inputs={}, price=1.0)
    h = make(lambda request: json_response(200, event))
    events = await h.collect("workflows.stream", "wf")
    assert len(events) == 1
    assert isinstance(events[0], WorkflowRunStarted)
    assert events[0].raw == event


async def test_stream_can_be_closed_early(make):
    h = make(lambda request: sse_json(*ALL_SEVEN))
    stream = h.client.workflows.stream("wf")
    if h.mode == "sync":
        with stream as events:
            first = next(events)
    else:
        async with stream as events:
            first = await events.__anext__()
    assert isinstance(first, WorkflowRunStarted)
    assert len(h.calls) == 1


def test_parse_workflow_event_never_drops():
    assert isinstance(parse_workflow_event(envelope("block_run_started")), BlockRunStarted)
    bad = {"name": "workflow_run_completed", "data": "not an object"}
    parsed = parse_workflow_event(bad)
    assert isinstance(parsed, UnknownWorkflowEvent)
    assert parsed.name == "workflow_run_completed"
    assert parsed.raw == bad
    assert "WorkflowRunCompleted" in (parsed.problem or "")
    odd = parse_workflow_event([1, 2])
    assert isinstance(odd, UnknownWorkflowEvent)
    assert odd.raw == [1, 2]
    assert odd.name is None
    nameless = parse_workflow_event({"data": {}})
    assert isinstance(nameless, UnknownWorkflowEvent)
    assert nameless.raw == {"data": {}}


def test_known_event_keeps_extra_fields():
    event = parse_workflow_event({**envelope("workflow_run_completed", output=1), "new": "x"})
    assert isinstance(event, WorkflowRunCompleted)
    assert event.model_extra == {"new": "x"}
    assert event.raw["new"] == "x"


# --------------------------------------------------------------------------- webhook

WEBHOOK = "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/tok_SUPERSECRET"


async def test_trigger_webhook_posts_body_without_api_key(make):
    h = make(lambda request: json_response(200, {"ok": True, "run_id": "r1"}))
    result = await h.call(
        "workflows.trigger_webhook", WEBHOOK, {"event": "ticket.created", "id": 5}
    )
    assert isinstance(result, WebhookTriggerResult)
    assert result.status_code == 200
    assert result.body == {"ok": True, "run_id": "r1"}
    request = h.last
    assert str(request.url) == WEBHOOK
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {"event": "ticket.created", "id": 5}
    assert "SUPERSECRET" not in repr(result)


async def test_trigger_webhook_error_masks_the_token(make):
    h = make(lambda request: json_response(401, {"detail": "bad token"}))
    with pytest.raises(ScoutAuthError) as caught:
        await h.call("workflows.trigger_webhook", WEBHOOK, {})
    error = caught.value
    for text in (str(error), repr(error), str(error.url), repr(error.__dict__)):
        assert "SUPERSECRET" not in text
    assert error.url == "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/***"
    assert "/webhook/***" in str(error)


async def test_trigger_webhook_transport_error_masks_the_token(make):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    h = make(refuse, max_retries=0)
    with pytest.raises(ScoutTransportError) as caught:
        await h.call("workflows.trigger_webhook", WEBHOOK, {})
    assert "SUPERSECRET" not in str(caught.value)
    assert "/webhook/***" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.scoutos.com/v1/workflows/w/webhook/tok_SUPERSECRET",
        "ftp://hooks.scoutos.com/tok_SUPERSECRET",
        "tok_SUPERSECRET",
    ],
)
async def test_trigger_webhook_refuses_bad_urls_and_masks_them(make, url):
    h = make(lambda request: json_response(200, {}))
    with pytest.raises(UntrustedURLError) as caught:
        await h.call("workflows.trigger_webhook", url, {})
    assert "SUPERSECRET" not in str(caught.value)
    assert h.calls == []


async def test_trigger_webhook_null_body_and_text_answer(make):
    h = make(lambda request: httpx.Response(202, text="queued"))
    result = await h.call("workflows.trigger_webhook", WEBHOOK, None)
    assert h.last.content == b"null"
    assert (result.status_code, result.body, result.raw) == (202, "queued", "queued")


async def test_webhook_token_not_logged_by_httpx(make, caplog):
    h = make(lambda request: json_response(200, {}))
    with caplog.at_level("DEBUG"):
        await h.call("workflows.trigger_webhook", WEBHOOK, {})
    assert "webhook/***" in caplog.text  # httpx did log the request line, masked
    assert "SUPERSECRET" not in caplog.text
