"""The legacy Apps API: execute and stream."""

from __future__ import annotations

import pytest

from django_scout.client import AppExecution, AppStreamEvent, ScoutStreamError
from tests.client.helpers import body_of, json_response, sse_response

APP_RESULT = {
    "id": "abc-123-foo",
    "outputs": {
        "vector_search": {
            "output": [{"similarity": 0.9, "text": "hello"}],
            "metadata": {"elapsed_time_ms": 200},
        },
        "output": {"output": "hello!!", "metadata": {"elapsed_time_ms": 122}},
    },
}


async def test_execute(make):
    h = make(lambda request: json_response(200, APP_RESULT))
    result = await h.call("apps.execute", "app_1", {"input": "What is scout?"})
    assert isinstance(result, AppExecution)
    assert result.id == "abc-123-foo"
    assert result.outputs == APP_RESULT["outputs"]
    assert result.output_of("output") == "hello!!"
    assert result.output_of("missing") is None
    assert result.raw == APP_RESULT
    assert h.last.method == "POST"
    assert h.last.url.path == "/v1/apps/execute"
    assert body_of(h.last) == {
        "id": "app_1",
        "inputs": {"input": "What is scout?"},
        "streaming": False,
    }


async def test_execute_without_inputs_sends_empty_object(make):
    h = make(lambda request: json_response(200, {"id": "x"}))
    result = await h.call("apps.execute", "app_1")
    assert body_of(h.last)["inputs"] == {}
    assert result.outputs == {}


async def test_execute_rejects_empty_app_id(make):
    h = make(lambda request: json_response(200, {}))
    with pytest.raises(ValueError, match="app_id"):
        await h.call("apps.execute", "", {})
    assert h.calls == []


@pytest.mark.parametrize("done", ["[DONE]", "DONE"])
async def test_stream_named_events_until_done(make, done):
    h = make(
        lambda request: sse_response(
            ("start_message", "Searching the docs..."),
            ("message", '{"output": {"output": "Hel"}}'),
            ("message", '{"output": {"output": "lo"}}'),
            ("error", "block vector_search failed"),
            ("progress", "42"),
            ("progress", "not json"),
            ("message", done),
            ("message", '{"output": {"output": "after done"}}'),
        )
    )
    events = await h.collect("apps.stream", "app_1", {"input": "hi"})
    assert events == [
        AppStreamEvent(
            event="start_message", data="Searching the docs...", raw_data="Searching the docs..."
        ),
        AppStreamEvent(
            event="message",
            data={"output": {"output": "Hel"}},
            raw_data='{"output": {"output": "Hel"}}',
        ),
        AppStreamEvent(
            event="message",
            data={"output": {"output": "lo"}},
            raw_data='{"output": {"output": "lo"}}',
        ),
        AppStreamEvent(
            event="error", data="block vector_search failed", raw_data="block vector_search failed"
        ),
        AppStreamEvent(event="progress", data=42, raw_data="42"),
        AppStreamEvent(event="progress", data="not json", raw_data="not json"),
    ]
    assert body_of(h.last) == {"id": "app_1", "inputs": {"input": "hi"}, "streaming": True}
    assert h.last.headers["accept"] == "text/event-stream"


async def test_stream_message_that_is_not_json_raises(make):
    h = make(lambda request: sse_response(("message", "hello")))
    with pytest.raises(ScoutStreamError, match="not JSON"):
        await h.collect("apps.stream", "app_1", {})


async def test_stream_json_answer_is_one_message(make):
    h = make(lambda request: json_response(200, APP_RESULT))
    events = await h.collect("apps.stream", "app_1", {})
    assert len(events) == 1
    assert events[0].event == "message"
    assert events[0].data == APP_RESULT
