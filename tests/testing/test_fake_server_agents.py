"""The fake Scout's agent endpoints over real loopback HTTP: auth, validation, answers."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import httpx
import pytest

from django_scout.testing import AgentBehaviour, FakeScout

CALLBACK = "http://127.0.0.1:9/callback"  # never answered: these tests don't look at callbacks
MESSAGES = [{"content": "Hello"}]


@pytest.fixture(autouse=True)
def _no_callbacks(fake_scout: FakeScout) -> None:
    # No callbacks are wanted here: the discard port would only produce retries.
    fake_scout.default_agent = AgentBehaviour(auto_callback=False)


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Not authenticated"),
        ({"Authorization": "Bearer wrong-key"}, "Invalid API key"),
        ({"Authorization": "Basic dGVzdC1hcGkta2V5"}, "Not authenticated"),
        ({"Authorization": "Bearer"}, "Not authenticated"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/world/a1/_interact_async"),
        ("POST", "/world/a1/s1/_interact_async"),
        ("POST", "/world/a1/_interact"),
        ("POST", "/world/a1/_interact_sync"),
        ("POST", "/v1/agents/a1/interact"),
        ("GET", "/world/a1/s1/events"),
        ("GET", "/agents"),
        ("GET", "/agents/a1/active"),
        ("POST", "/v2/workflows/wf/execute"),
        ("POST", "/v2/workflows/execute"),
        ("POST", "/v1/apps/execute"),
    ],
)
def test_every_api_endpoint_needs_the_bearer_key(client, fake_scout, method, path, headers, detail):
    client.headers.pop("Authorization", None)
    response = client.request(method, fake_scout.url(path), headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["www-authenticate"] == "Bearer"
    assert fake_scout.interactions == []
    assert fake_scout.workflow_runs == []


def test_auth_can_be_disabled():
    with FakeScout(api_key=None) as scout:
        response = httpx.post(
            scout.url("/world/a1/_interact_sync"), json={"messages": MESSAGES}, trust_env=False
        )
    assert response.status_code == 200


def test_unknown_path_and_wrong_method(api):
    assert api.get("/nope").status_code == 404
    assert api.get("/nope").json() == {"detail": "Not Found"}
    wrong = api.get("/world/a1/_interact_async")
    assert wrong.status_code == 405
    assert wrong.json() == {"detail": "Method Not Allowed"}


# --------------------------------------------------------------------------- async starts


def test_async_start_answers_202_with_session_and_events_url(api, fake_scout):
    response = api.post(
        "/world/agent-1/_interact_async",
        json={
            "messages": MESSAGES,
            "callback_url": CALLBACK,
            "metadata": {"k": "v"},
            "variables": {"customer_id": "C-42"},
            "tags": ["support", "tier:gold", "a_b-c"],
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"session_id", "events_url"}
    uuid.UUID(body["session_id"])
    assert body["events_url"] == f"{fake_scout.base_url}/world/agent-1/{body['session_id']}/events"
    [interaction] = fake_scout.interactions
    assert interaction.agent_id == "agent-1"
    assert interaction.endpoint == "async"
    assert interaction.messages == MESSAGES
    assert interaction.metadata == {"k": "v"}
    assert interaction.variables == {"customer_id": "C-42"}
    assert interaction.tags == ["support", "tier:gold", "a_b-c"]
    assert interaction.callback_url == CALLBACK
    uuid.UUID(interaction.callback_event_id)
    assert fake_scout.session(body["session_id"]).agent_id == "agent-1"


def test_async_start_keeps_a_session_from_the_path_or_the_query(api, fake_scout):
    in_path = api.post(
        "/world/agent-1/my-session/_interact_async",
        json={"messages": MESSAGES, "callback_url": CALLBACK},
    )
    in_query = api.post(
        "/world/agent-1/_interact_async",
        params={"session_id": "other-session"},
        json={"messages": MESSAGES, "callback_url": CALLBACK},
    )
    assert in_path.json()["session_id"] == "my-session"
    assert in_query.json()["session_id"] == "other-session"
    assert set(fake_scout.sessions) == {"my-session", "other-session"}


def test_a_second_interaction_in_a_session_reuses_it(api, fake_scout):
    for _ in range(2):
        api.post(
            "/world/agent-1/sess-1/_interact_async",
            json={"messages": MESSAGES, "callback_url": CALLBACK},
        )
    session = fake_scout.session("sess-1")
    assert len(session.interactions) == 2
    assert session.interactions[0].callback_event_id != session.interactions[1].callback_event_id


def test_path_segments_are_url_decoded(api, fake_scout):
    response = api.post(
        "/world/agent%201/_interact_async", json={"messages": MESSAGES, "callback_url": CALLBACK}
    )
    assert response.status_code == 202
    assert fake_scout.interactions[0].agent_id == "agent 1"
    assert "/world/agent%201/" in response.json()["events_url"]


def test_accept_status_can_be_200(api, fake_scout):
    fake_scout.agent("a200", accept_status=200, auto_callback=False)
    response = api.post(
        "/world/a200/_interact_async", json={"messages": MESSAGES, "callback_url": CALLBACK}
    )
    assert response.status_code == 200
    assert "session_id" in response.json()


def test_the_guides_v1_endpoint_takes_a_single_message(api, fake_scout):
    response = api.post(
        "/v1/agents/agent-1/interact",
        json={"message": "Process all pending orders", "callback_url": CALLBACK},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["session_id"].startswith("sess_")
    assert body["events_url"] == (
        f"{fake_scout.base_url}/v1/agent-sessions/{body['session_id']}/events"
    )
    assert fake_scout.interactions[0].messages == [{"content": "Process all pending orders"}]
    also_messages = api.post(
        "/v1/agents/agent-1/interact", json={"messages": MESSAGES, "callback_url": CALLBACK}
    )
    assert also_messages.status_code == 202


def test_drive_file_and_mixed_contents_are_accepted(api):
    messages = [
        {"content": {"type": "drive_file", "path": "/Reports/Q1.pdf"}},
        {"content": ["Compare:", {"type": "drive_file", "path": "/Reports/Q2.pdf"}]},
    ]
    response = api.post(
        "/world/a1/_interact_async", json={"messages": messages, "callback_url": CALLBACK}
    )
    assert response.status_code == 202


# --------------------------------------------------------------------------- 422 bodies


def _locs(response: httpx.Response) -> list[list[object]]:
    assert response.status_code == 422
    return [item["loc"] for item in response.json()["detail"]]


def test_missing_messages_and_callback_url(api, fake_scout):
    response = api.post("/world/a1/_interact_async", json={})
    assert response.json() == {
        "detail": [
            {"loc": ["body", "messages"], "msg": "field required", "type": "value_error.missing"},
            {
                "loc": ["body", "callback_url"],
                "msg": "field required",
                "type": "value_error.missing",
            },
        ]
    }
    assert fake_scout.interactions == []
    assert fake_scout.sessions == {}


def test_guide_endpoint_requires_message_and_callback_url(api):
    response = api.post("/v1/agents/a1/interact", json={"message": "   "})
    assert _locs(response) == [["body", "message"], ["body", "callback_url"]]
    assert _locs(api.post("/v1/agents/a1/interact", json={})) == [
        ["body", "message"],
        ["body", "callback_url"],
    ]


def test_message_items_need_content(api):
    response = api.post(
        "/world/a1/_interact_async",
        json={"messages": [{"content": "ok"}, {"role": "user"}, "text"], "callback_url": CALLBACK},
    )
    assert response.json()["detail"] == [
        {
            "loc": ["body", "messages", 1, "content"],
            "msg": "field required",
            "type": "value_error.missing",
        },
        {
            "loc": ["body", "messages", 2],
            "msg": "value is not a valid dict",
            "type": "type_error.dict",
        },
    ]


@pytest.mark.parametrize(
    ("messages", "loc"),
    [
        ("hello", ["body", "messages"]),
        ([], ["body", "messages"]),
        ([{"content": 5}], ["body", "messages", 0, "content"]),
        ([{"content": {"type": "drive_file"}}], ["body", "messages", 0, "content", "path"]),
        ([{"content": ["a", 3]}], ["body", "messages", 0, "content", 1]),
    ],
)
def test_bad_messages(api, messages, loc):
    response = api.post(
        "/world/a1/_interact_async", json={"messages": messages, "callback_url": CALLBACK}
    )
    assert _locs(response) == [loc]


@pytest.mark.parametrize(
    ("tags", "loc", "error_type"),
    [
        ([f"t{i}" for i in range(21)], ["body", "tags"], "value_error.list.max_items"),
        (["x" * 33], ["body", "tags", 0], "value_error.any_str.max_length"),
        (["ok", "Upper"], ["body", "tags", 1], "value_error.str.regex"),
        (["has space"], ["body", "tags", 0], "value_error.str.regex"),
        (["dot.ted"], ["body", "tags", 0], "value_error.str.regex"),
        ([""], ["body", "tags", 0], "value_error.str.regex"),
        ([7], ["body", "tags", 0], "type_error.str"),
        ("support", ["body", "tags"], "type_error.list"),
    ],
)
def test_bad_tags(api, tags, loc, error_type):
    response = api.post(
        "/world/a1/_interact_async",
        json={"messages": MESSAGES, "callback_url": CALLBACK, "tags": tags},
    )
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["loc"] == loc
    assert item["type"] == error_type


def test_boundary_tags_are_fine(api):
    tags = [f"{i:02d}" + "x" * 30 for i in range(20)]
    assert all(len(tag) == 32 for tag in tags)
    response = api.post(
        "/world/a1/_interact_async",
        json={"messages": MESSAGES, "callback_url": CALLBACK, "tags": tags},
    )
    assert response.status_code == 202


def test_metadata_and_variables_must_be_objects(api):
    response = api.post(
        "/world/a1/_interact_async",
        json={"messages": MESSAGES, "callback_url": CALLBACK, "metadata": [1], "variables": "x"},
    )
    assert _locs(response) == [["body", "metadata"], ["body", "variables"]]
    assert response.json()["detail"][0]["type"] == "type_error.dict"
    nulls = api.post(
        "/world/a1/_interact_async",
        json={"messages": MESSAGES, "callback_url": CALLBACK, "metadata": None, "tags": None},
    )
    assert nulls.status_code == 202


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b""],
)
def test_body_must_be_a_json_object(api, body):
    response = api.post(
        "/world/a1/_interact_async", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "not a url", "http://example.com/cb", "https://10.0.0.1/cb"]
)
def test_callback_url_must_be_http_to_an_allowed_host(api, url):
    response = api.post(
        "/world/a1/_interact_async", json={"messages": MESSAGES, "callback_url": url}
    )
    assert _locs(response) == [["body", "callback_url"]]


def test_any_callback_host_can_be_allowed():
    with FakeScout(callback_hosts=None) as scout:
        scout.default_agent = AgentBehaviour(auto_callback=False)
        response = httpx.post(
            scout.url("/world/a1/_interact_async"),
            json={"messages": MESSAGES, "callback_url": "https://example.com/cb"},
            headers={"Authorization": "Bearer test-api-key"},
            trust_env=False,
        )
    assert response.status_code == 202


# --------------------------------------------------------------------------- sync and stream


def test_sync_interaction(api, fake_scout):
    fake_scout.agent("helper", reply="Forty-two.")
    response = api.post("/world/helper/sess-9/_interact_sync", json={"messages": MESSAGES})
    assert response.status_code == 200
    assert response.json() == {
        "session_id": "sess-9",
        "messages": [{"role": "assistant", "content": "Forty-two."}],
    }
    assert fake_scout.interactions[0].endpoint == "sync"
    fresh = api.post("/world/helper/_interact_sync", json={"messages": MESSAGES}).json()
    uuid.UUID(fresh["session_id"])


def test_stream_interaction_is_sse_of_json_events(api, fake_scout):
    fake_scout.agent("streamer", events=4, reply="Final words.")
    with api.stream("POST", "/world/streamer/_interact", json={"messages": MESSAGES}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        datas = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    *events, end = [json.loads(data) for data in datas[:-1]]
    assert [event["data"]["index"] for event in events] == [0, 1, 2, 3]
    assert events[-1]["name"] == "message"
    assert events[-1]["data"]["text"] == "Final words."
    session_id = fake_scout.interactions[0].session_id
    assert end["name"] == "interaction_completed"
    assert (end["session_id"], end["status"]) == (session_id, "succeeded")
    assert fake_scout.interactions[0].endpoint == "stream"
    session_stream = api.post("/world/streamer/s-3/_interact", json={"messages": MESSAGES})
    assert session_stream.status_code == 200
    assert "s-3" in fake_scout.sessions


def stream_datas(api: httpx.Client, path: str) -> list[str]:
    with api.stream("POST", path, json={"messages": MESSAGES}) as response:
        assert response.status_code == 200
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_a_failed_stream_ends_with_the_callbacks_error(api, fake_scout):
    fake_scout.agent("a1", events=2, outcome="failed", error={"code": "x", "message": "broke"})
    *_, last, done = stream_datas(api, "/world/a1/_interact")
    assert done == "[DONE]"
    end = json.loads(last)
    assert {key: end[key] for key in ("name", "session_id", "status", "error")} == {
        "name": "interaction_failed",
        "session_id": fake_scout.interactions[0].session_id,
        "status": "failed",
        "error": {"code": "x", "message": "broke"},
    }
    assert end["completed_at"].endswith("Z")


@pytest.mark.parametrize("cut", [0, 2, 3])
def test_a_clean_cut_off_ends_the_stream_without_its_end(api, fake_scout, cut):
    fake_scout.agent("a1", events=3, cut_off_after=cut)
    datas = stream_datas(api, "/world/a1/_interact")
    assert len(datas) == cut
    assert "[DONE]" not in datas
    names = {json.loads(data)["name"] for data in datas}
    assert names <= {"message", "tool_call", "tool_result"}


def test_an_aborted_cut_off_is_a_transport_error(api, fake_scout):
    fake_scout.agent("a1", events=5, cut_off_after=2, cut_off_mode="abort")
    received: list[str] = []

    def read(response: httpx.Response) -> None:
        received.extend(
            json.loads(line[6:])["name"]
            for line in response.iter_lines()
            if line.startswith("data: ")
        )

    with (
        api.stream("POST", "/world/a1/_interact", json={"messages": MESSAGES}) as response,
        pytest.raises(httpx.RemoteProtocolError),  # the read fails mid-stream
    ):
        read(response)
    assert received == ["message", "tool_call"]


def test_a_cut_off_beyond_the_end_changes_nothing(api, fake_scout):
    fake_scout.agent("a1", events=2, cut_off_after=3)
    assert stream_datas(api, "/world/a1/_interact")[-1] == "[DONE]"


def test_a_streamed_interaction_is_paced_by_event_interval(api, fake_scout):
    # Pauses long enough that a loaded machine's scheduling noise cannot blur them; lower
    # bounds only: the events arrive spread over the stream, not all at its end.
    fake_scout.agent("a1", events=3, event_interval=0.5)
    arrivals = []
    started = time.monotonic()
    with api.stream("POST", "/world/a1/_interact", json={"messages": MESSAGES}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 3 + 2  # the events, the terminal event, [DONE]
    assert arrivals[-1] - arrivals[0] >= 1.45  # three pauses of 0.5 s
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[:-1])]
    assert min(gaps) >= 0.4


@pytest.mark.parametrize("mode", ["", "sometimes"])
def test_cut_off_mode_is_checked(mode):
    with pytest.raises(ValueError, match="cut_off_mode"):
        AgentBehaviour(cut_off_mode=mode)


def test_stream_or_sync_with_a_callback_url_answers_202_json(api, fake_scout):
    for path in ("/world/a1/_interact", "/world/a1/_interact_sync"):
        response = api.post(path, json={"messages": MESSAGES, "callback_url": CALLBACK})
        assert response.status_code == 202
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"session_id", "events_url"}
    assert [i.endpoint for i in fake_scout.interactions] == ["async", "async"]


def test_sync_and_stream_validate_too(api):
    assert _locs(api.post("/world/a1/_interact_sync", json={})) == [["body", "messages"]]
    assert _locs(api.post("/world/a1/_interact", json={"messages": MESSAGES, "tags": ["BAD"]})) == [
        ["body", "tags", 0]
    ]


# --------------------------------------------------------------------------- agent documents


def test_list_agents_returns_a_bare_array_of_registered_agents(api, fake_scout):
    assert api.get("/agents").json() == []
    fake_scout.agent("agent-1", name="Support bot", description="Answers tickets")
    fake_scout.agent("agent-2")
    agents = api.get("/agents").json()
    assert isinstance(agents, list)
    assert [agent["id"] for agent in agents] == ["agent-1", "agent-2"]
    first = agents[0]
    assert first["name"] == "Support bot"
    assert first["description"] == "Answers tickets"
    assert first["doc_type"] == "agent"
    assert first["created_by"] == {"type": "user", "id": "user_fake_scout"}
    assert first["visibility"] == {"type": "organization", "id": "org_fake_scout"}
    assert first["parent"] == "org_fake_scout"
    assert first["created_at"].endswith("Z")
    assert agents[1]["name"] == "agent-2"


def test_active_agent(api, fake_scout):
    fake_scout.agent("agent-1", name="Support bot")
    response = api.get("/agents/agent-1/active")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agent", "revision"}
    assert body["agent"]["id"] == "agent-1"
    assert body["revision"]["doc_type"] == "agent_revision"
    assert body["revision"]["parent"] == "agent-1"
    assert body["revision"]["id"] == body["agent"]["active_revision"]
    assert body["revision"]["organization_id"] == "org_fake_scout"
    for field in ("model", "system", "created_by", "updated_by"):
        assert field in body["revision"]


def test_unregistered_agents_404_on_active_even_with_a_default(api):
    response = api.get("/agents/never-registered/active")
    assert response.status_code == 404
    assert response.json() == {"detail": "Agent not found"}


def test_without_a_default_agent_unknown_agents_404(api, fake_scout):
    fake_scout.default_agent = None
    fake_scout.agent("known", auto_callback=False)
    unknown = api.post(
        "/world/unknown/_interact_async", json={"messages": MESSAGES, "callback_url": CALLBACK}
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Agent not found"}
    known = api.post(
        "/world/known/_interact_async", json={"messages": MESSAGES, "callback_url": CALLBACK}
    )
    assert known.status_code == 202


def test_requests_are_recorded(api, fake_scout):
    api.post(
        "/world/a1/_interact_async",
        params={"session_id": "s1"},
        json={"messages": MESSAGES, "callback_url": CALLBACK},
        headers={"X-Trace": "abc"},
    )
    [recorded] = fake_scout.requests
    assert recorded.method == "POST"
    assert recorded.path == "/world/a1/_interact_async"
    assert recorded.query_value("session_id") == "s1"
    assert recorded.header("x-trace") == "abc"
    assert recorded.header("Authorization") == "Bearer test-api-key"
    assert recorded.json == {"messages": MESSAGES, "callback_url": CALLBACK}
    assert recorded.status == 202
    assert recorded.fault is None
    assert fake_scout.requests_matching("POST", "/world/*") == [recorded]
    assert fake_scout.requests_matching("GET") == []
