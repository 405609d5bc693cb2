"""The fake Scout's legacy Apps API (``POST /v1/apps/execute``)."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager

import httpx
import pytest

from django_scout.client.streams import iter_sse
from django_scout.testing import AppBehaviour
from tests.helpers import SSE_HEADERS


def stream_app(api: httpx.Client) -> AbstractContextManager[httpx.Response]:
    """POST a streamed execution of ``app-1``."""
    body = {"id": "app-1", "inputs": {}, "streaming": True}
    return api.stream("POST", "/v1/apps/execute", json=body, headers=SSE_HEADERS)


def test_plain_execution(api, fake_scout):
    fake_scout.app(
        "app-1",
        tokens=["hello", "!!"],
        extra_outputs={"vector_search": [{"similarity": 0.9, "text": "hello"}]},
        elapsed_time_ms=7,
    )
    response = api.post("/v1/apps/execute", json={"id": "app-1", "inputs": {"input": "hi"}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "outputs"}
    assert body["outputs"] == {
        "vector_search": {
            "output": [{"similarity": 0.9, "text": "hello"}],
            "metadata": {"elapsed_time_ms": 7},
        },
        "output": {"output": "hello!!", "metadata": {"elapsed_time_ms": 7}},
    }
    [execution] = fake_scout.app_executions
    assert execution.execution_id == body["id"]
    assert execution.app_id == "app-1"
    assert execution.inputs == {"input": "hi"}
    assert execution.streaming is False


def test_streamed_execution_uses_named_events_and_done(api, fake_scout):
    fake_scout.app("app-1", tokens=["a", "b", "c"], start_message="Searching...")
    with stream_app(api) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = [(sse.event, sse.data) for sse in iter_sse(response)]
    assert events[0] == ("start_message", "Searching...")
    assert [json.loads(data) for name, data in events[1:4]] == [
        {"output": {"output": "a"}},
        {"output": {"output": "b"}},
        {"output": {"output": "c"}},
    ]
    assert all(name == "message" for name, _ in events[1:4])
    assert events[-1] == ("message", "[DONE]")
    assert len(events) == 5


def test_streamed_error_event_and_no_start_message(api, fake_scout):
    fake_scout.app(
        "app-1", tokens=["x"], start_message=None, error="Block failed", done_sentinel="DONE"
    )
    with stream_app(api) as response:
        events = [(sse.event, sse.data) for sse in iter_sse(response)]
    assert events == [
        ("message", '{"output": {"output": "x"}}'),
        ("error", "Block failed"),
        ("message", "DONE"),
    ]


def test_plain_execution_with_an_error(api, fake_scout):
    fake_scout.app("app-1", error="Quota exceeded", error_status=400)
    response = api.post("/v1/apps/execute", json={"id": "app-1", "inputs": {}})
    assert response.status_code == 400
    assert response.json() == {"detail": "Quota exceeded"}


def test_token_interval_paces_the_stream(api, fake_scout):
    fake_scout.app("app-1", tokens=["a", "b", "c"], token_interval=0.05)
    started = time.monotonic()
    api.post("/v1/apps/execute", json={"id": "app-1", "inputs": {}, "streaming": True})
    assert time.monotonic() - started >= 0.09


def test_unknown_apps_404_unless_a_default_is_set(api, fake_scout):
    response = api.post("/v1/apps/execute", json={"id": "nope", "inputs": {}})
    assert response.status_code == 404
    assert response.json() == {"detail": "App not found"}
    fake_scout.default_app = AppBehaviour(tokens=["ok"])
    answered = api.post("/v1/apps/execute", json={"id": "nope", "inputs": {}})
    assert answered.json()["outputs"]["output"]["output"] == "ok"


def test_flow_execute_alias(api, fake_scout):
    fake_scout.app("app-1")
    assert api.post("/v1/flow/execute", json={"id": "app-1", "inputs": {}}).status_code == 200


@pytest.mark.parametrize(
    ("body", "locs"),
    [
        ({}, [["body", "id"], ["body", "inputs"]]),
        ({"id": 5, "inputs": []}, [["body", "id"], ["body", "inputs"]]),
        ({"id": "a", "inputs": {}, "streaming": "y"}, [["body", "streaming"]]),
    ],
)
def test_validation(api, body, locs):
    response = api.post("/v1/apps/execute", json=body)
    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == locs


def test_tokens_must_not_be_a_plain_string():
    with pytest.raises(TypeError):
        AppBehaviour(tokens="hello")
