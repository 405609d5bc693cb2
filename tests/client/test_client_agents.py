"""Agents and sessions: every endpoint, both async-interaction forms, message shapes."""

from __future__ import annotations

import httpx
import pytest

from django_scout.client import (
    ActiveAgent,
    Agent,
    AgentReply,
    AgentStreamEvent,
    AsyncInteractionAccepted,
    ScoutProtocolError,
    ScoutStreamError,
    SessionEvent,
)
from tests.client.helpers import API_KEY, body_of, json_response, sse_response

ACCEPTED = {
    "session_id": "sess_abc123",
    "events_url": "https://api.scoutos.test/v1/s/sess_abc123/events",
}
CALLBACK = "https://app.example.test/scout/callback/"


def accepted(request: httpx.Request) -> httpx.Response:
    return json_response(202, ACCEPTED)


# --------------------------------------------------------------------------- interact_async


async def test_interact_async_world_form_without_session(make):
    h = make(accepted)
    result = await h.call(
        "agents.interact_async",
        "agent-1",
        "Hello",
        callback_url=CALLBACK,
        metadata={"order": 7},
        variables={"customer_id": "C-42"},
        tags=["support", "tier:gold"],
    )
    assert isinstance(result, AsyncInteractionAccepted)
    assert (result.session_id, result.events_url) == (
        ACCEPTED["session_id"],
        ACCEPTED["events_url"],
    )
    assert result.raw == ACCEPTED
    assert result.status_code == 202
    request = h.last
    assert request.method == "POST"
    assert request.url.raw_path == b"/world/agent-1/_interact_async"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {
        "messages": [{"content": "Hello"}],
        "callback_url": CALLBACK,
        "metadata": {"order": 7},
        "variables": {"customer_id": "C-42"},
        "tags": ["support", "tier:gold"],
    }


async def test_interact_async_world_form_with_session_uses_path_and_omits_unset(make):
    h = make(accepted)
    await h.call("agents.interact_async", "agent 1", "Hi", callback_url=CALLBACK, session_id="s/1")
    assert h.last.url.raw_path == b"/world/agent%201/s%2F1/_interact_async"
    assert h.last.url.params == httpx.QueryParams()
    assert body_of(h.last) == {"messages": [{"content": "Hi"}], "callback_url": CALLBACK}


async def test_interact_async_accepts_200(make):
    h = make(lambda request: json_response(200, ACCEPTED))
    result = await h.call("agents.interact_async", "a1", "Hi", callback_url=CALLBACK)
    assert result.session_id == "sess_abc123"
    assert result.status_code == 200


async def test_interact_async_v1_form_with_text_message(make):
    h = make(accepted, async_interact_endpoint="v1")
    await h.call(
        "agents.interact_async",
        "a1",
        "Process orders",
        callback_url=CALLBACK,
        session_id="s1",
        tags=["x"],
    )
    assert h.last.url.path == "/v1/agents/a1/interact"
    assert h.last.url.params["session_id"] == "s1"
    assert body_of(h.last) == {"message": "Process orders", "callback_url": CALLBACK, "tags": ["x"]}


async def test_interact_async_v1_form_with_messages_list(make):
    h = make(accepted, async_interact_endpoint="v1")
    await h.call("agents.interact_async", "a1", messages=["one", "two"], callback_url=CALLBACK)
    assert "session_id" not in h.last.url.params
    assert body_of(h.last) == {
        "messages": [{"content": "one"}, {"content": "two"}],
        "callback_url": CALLBACK,
    }


async def test_interact_async_message_shapes(make):
    h = make(accepted)
    drive = {"type": "drive_file", "path": "/Reports/Q1.pdf"}
    messages = [
        "plain",
        {"content": drive},
        {"content": ["Compare:", drive, {"type": "drive_file", "path": "/Reports/Q2.pdf"}]},
    ]
    await h.call("agents.interact_async", "a1", messages=messages, callback_url=CALLBACK)
    assert body_of(h.last)["messages"] == [
        {"content": "plain"},
        {"content": drive},
        {"content": ["Compare:", drive, {"type": "drive_file", "path": "/Reports/Q2.pdf"}]},
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"message": "a", "messages": ["b"]}, "exactly one"),
        ({"message": ""}, "non-empty"),
        ({"message": "   "}, "non-empty"),
        ({"messages": []}, "must not be empty"),
        ({"messages": "text"}, "must be a list"),
        ({"messages": [{"role": "user"}]}, "no 'content'"),
        ({"messages": [{"content": {"type": "image", "path": "/x"}}]}, "is not valid"),
        ({"messages": [{"content": []}]}, "content must be"),
        ({"messages": [3]}, "must be a string or a dict"),
        ({"message": "hi", "metadata": ["not", "a", "dict"]}, "metadata must be a dict"),
        ({"message": "hi", "variables": "x"}, "variables must be a dict"),
        ({"message": "hi", "session_id": ""}, "session_id"),
        ({"message": "hi", "session_id": ".."}, "session_id"),
    ],
)
async def test_interact_async_rejects_bad_input_before_sending(make, kwargs, match):
    h = make(accepted)
    with pytest.raises(ValueError, match=match):
        await h.call("agents.interact_async", "a1", callback_url=CALLBACK, **kwargs)
    assert h.calls == []


@pytest.mark.parametrize("agent_id", ["", "  ", None, ".", ".."])
async def test_empty_or_dot_agent_id_is_rejected_before_sending(make, agent_id):
    h = make(accepted)
    with pytest.raises(ValueError, match="agent_id"):
        await h.call("agents.interact_async", agent_id, "hi", callback_url=CALLBACK)
    with pytest.raises(ValueError, match="agent_id"):
        await h.call("agents.get", agent_id)
    assert h.calls == []


@pytest.mark.parametrize("callback_url", ["", "not a url", "ftp://x.test/cb", "/relative"])
async def test_callback_url_must_be_absolute_http(make, callback_url):
    h = make(accepted)
    with pytest.raises(ValueError, match="callback_url"):
        await h.call("agents.interact_async", "a1", "hi", callback_url=callback_url)
    assert h.calls == []


@pytest.mark.parametrize(
    "body",
    [{"session_id": "s1"}, {"events_url": "https://x"}, {"session_id": "", "events_url": "u"}, [1]],
)
async def test_accepted_answer_without_ids_is_a_protocol_error(make, body):
    h = make(lambda request: json_response(202, body))
    with pytest.raises(ScoutProtocolError) as caught:
        await h.call("agents.interact_async", "a1", "hi", callback_url=CALLBACK)
    assert caught.value.status_code == 202
    assert caught.value.body == body


async def test_accepted_answer_that_is_not_json_is_a_protocol_error(make):
    h = make(lambda request: httpx.Response(202, text="<html>ok</html>"))
    with pytest.raises(ScoutProtocolError, match="not JSON"):
        await h.call("agents.interact_async", "a1", "hi", callback_url=CALLBACK)


# --------------------------------------------------------------------------- interact (sync)


async def test_interact_sync_reply(make):
    h = make(lambda request: json_response(200, {"reply": "hi there"}))
    reply = await h.call(
        "agents.interact", "a1", "Hello", revision_id="rev-2", tags=["t1"], metadata={"k": 1}
    )
    assert isinstance(reply, AgentReply)
    assert reply.data == {"reply": "hi there"}
    assert reply.raw == '{"reply":"hi there"}'
    assert h.last.url.raw_path == b"/world/a1/_interact_sync"
    assert body_of(h.last) == {
        "messages": [{"content": "Hello"}],
        "metadata": {"k": 1},
        "tags": ["t1"],
        "revision_id": "rev-2",
    }


async def test_interact_sync_with_session_and_empty_body(make):
    h = make(lambda request: httpx.Response(200, content=b""))
    reply = await h.call("agents.interact", "a1", messages=[{"content": "x"}], session_id="s9")
    assert reply.data is None
    assert reply.raw == ""
    assert h.last.url.raw_path == b"/world/a1/s9/_interact_sync"
    assert "callback_url" not in body_of(h.last)


# --------------------------------------------------------------------------- stream


async def test_agent_stream_yields_events_until_done(make):
    h = make(
        lambda request: sse_response(
            (None, '{"delta": "Hel"}'),
            ("chunk", '{"delta": "lo"}'),
            ("error", "tool failed"),
            (None, "[DONE]"),
            (None, '{"after": "done"}'),
        )
    )
    events = await h.collect("agents.stream", "a1", "Hi", session_id="s1", revision_id="r1")
    assert events == [
        AgentStreamEvent(event="message", data={"delta": "Hel"}),
        AgentStreamEvent(event="chunk", data={"delta": "lo"}),
        AgentStreamEvent(event="error", data="tool failed"),
    ]
    assert h.last.url.raw_path == b"/world/a1/s1/_interact"
    assert h.last.headers["accept"] == "text/event-stream"
    assert body_of(h.last) == {"messages": [{"content": "Hi"}], "revision_id": "r1"}


async def test_agent_stream_non_json_data_raises(make):
    h = make(lambda request: sse_response((None, '{"ok": 1}'), (None, "not json")))
    with pytest.raises(ScoutStreamError, match="not JSON"):
        await h.collect("agents.stream", "a1", "Hi")


async def test_agent_stream_json_answer_is_one_event(make):
    h = make(lambda request: json_response(202, ACCEPTED))
    events = await h.collect("agents.stream", "a1", "Hi")
    assert events == [AgentStreamEvent(event="message", data=ACCEPTED)]
    assert h.last.url.raw_path == b"/world/a1/_interact"


async def test_agent_stream_validates_at_call_time(make):
    h = make(accepted)
    with pytest.raises(ValueError, match="tag"):
        h._method("agents.stream")("a1", "hi", tags=["BAD"])
    assert h.calls == []


# --------------------------------------------------------------------------- list / get

AGENT = {
    "id": "ag_1",
    "name": "Support",
    "parent": "org_1",
    "created_by": {"type": "user", "id": "u1"},
    "updated_by": {"type": "system", "id": "system"},
    "visibility": {"type": "organization", "id": "org_1"},
    "created_at": "2025-01-01T00:00:00Z",
    "new_field": [1, 2],
}


async def test_list_agents(make):
    h = make(lambda request: json_response(200, [AGENT, {"name": "Other", "id": 42}]))
    agents = await h.call("agents.list")
    assert h.last.method == "GET"
    assert h.last.url.raw_path == b"/agents"
    assert [type(a) for a in agents] == [Agent, Agent]
    assert agents[0].name == "Support"
    assert agents[0].created_by is not None
    assert agents[0].created_by.type == "user"
    assert agents[0].model_extra == {"new_field": [1, 2]}
    assert agents[1].id == "42"


async def test_list_agents_rejects_non_array(make):
    h = make(lambda request: json_response(200, {"agents": []}))
    with pytest.raises(ScoutProtocolError, match="not a JSON array"):
        await h.call("agents.list")


async def test_get_agent_active_revision(make):
    revision = {"id": "rev_1", "model": "gpt-4o", "system": "Be nice", "temperature": 0.2}
    h = make(lambda request: json_response(200, {"agent": AGENT, "revision": revision}))
    active = await h.call("agents.get", "ag/1")
    assert isinstance(active, ActiveAgent)
    assert h.last.url.raw_path == b"/agents/ag%2F1/active"
    assert active.agent is not None
    assert active.agent.id == "ag_1"
    assert active.revision is not None
    assert active.revision.model == "gpt-4o"
    assert active.revision.temperature == 0.2


# --------------------------------------------------------------------------- sessions.events


async def test_session_events_sse(make):
    events_url = "https://api.scoutos.test/v1/agent-sessions/s1/events?page=1"
    h = make(
        lambda request: sse_response(
            ("message", '{"name": "agent_message", "data": {"text": "hi"}}'), (None, "[DONE]")
        )
    )
    events = await h.collect("sessions.events", events_url)
    assert events == [
        SessionEvent(
            sequence=0,
            name="agent_message",
            data={"name": "agent_message", "data": {"text": "hi"}},
            id=None,
            timestamp=None,
        )
    ]
    assert str(h.last.url) == events_url
    assert h.last.method == "GET"
    assert h.last.headers["authorization"] == f"Bearer {API_KEY}"


async def test_session_events_json_array(make):
    h = make(lambda request: json_response(200, [{"name": "a"}, {"name": "b", "id": "e2"}]))
    events = await h.collect("sessions.events", "https://api.scoutos.test/e")
    assert [(e.sequence, e.name, e.id) for e in events] == [(0, "a", None), (1, "b", "e2")]
