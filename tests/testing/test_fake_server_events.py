"""The fake Scout's session event streams: formats, determinism, laziness, faults."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from django_scout.testing import AgentBehaviour

CALLBACK = "http://127.0.0.1:9/callback"
FORMATS = ("sse", "json", "json-object", "ndjson")
CONTENT_TYPES = {
    "sse": "text/event-stream",
    "json": "application/json",
    "json-object": "application/json",
    "ndjson": "application/x-ndjson",
}


def start(api: httpx.Client, agent_id: str = "agent-1", **params: str) -> dict[str, str]:
    response = api.post(
        f"/world/{agent_id}/_interact_async",
        params=params,
        json={"messages": [{"content": "go"}], "callback_url": CALLBACK},
    )
    assert response.status_code == 202, response.text
    body: dict[str, str] = response.json()
    return body


def parse_events(fmt: str, response: httpx.Response) -> Iterator[dict[str, object]]:
    """Parse an events answer line by line (constant memory), whatever its format."""
    for line in response.iter_lines():
        if fmt == "sse":
            if line.startswith("data: "):
                yield json.loads(line[len("data: ") :])
            continue
        text = line.strip().rstrip(",")
        if text in ("", "[", "]", '{"events": [', "]}"):
            continue
        yield json.loads(text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_serves_the_sessions_events(api, fake_scout, fmt):
    fake_scout.agent("agent-1", events=7, events_format=fmt, reply="Done!", auto_callback=False)
    started = start(api)
    response = api.get(started["events_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[fmt]
    if fmt == "json":
        events = response.json()
    elif fmt == "json-object":
        events = response.json()["events"]
    elif fmt == "ndjson":
        events = [json.loads(line) for line in response.text.splitlines()]
    else:
        events = list(parse_events(fmt, response))
    assert [event["data"]["index"] for event in events] == list(range(7))
    for event in events:
        assert set(event) == {"id", "name", "timestamp", "data"}
        assert event["id"].startswith("evt_")
        assert event["timestamp"].endswith("Z")
        assert event["name"] in {"message", "tool_call", "tool_result"}
        assert isinstance(event["data"]["text"], str)
    assert events[-1]["name"] == "message"
    assert events[-1]["data"]["text"] == "Done!"
    assert len({event["id"] for event in events}) == 7


def test_sse_events_carry_id_and_event_fields(api, fake_scout):
    fake_scout.agent("agent-1", events=3, auto_callback=False)
    text = api.get(start(api)["events_url"]).text
    blocks = [block for block in text.split("\n\n") if block]
    assert len(blocks) == 3
    for block in blocks:
        lines = block.split("\n")
        assert lines[0].startswith("id: evt_")
        assert lines[1].startswith("event: ")
        event = json.loads(lines[2][len("data: ") :])
        assert lines[0] == f"id: {event['id']}"
        assert lines[1] == f"event: {event['name']}"


@pytest.mark.parametrize("fmt", ["json", "json-object"])
def test_zero_events_is_still_valid_json(api, fake_scout, fmt):
    fake_scout.agent("agent-1", events=0, events_format=fmt, auto_callback=False)
    body = api.get(start(api)["events_url"]).json()
    assert body == ([] if fmt == "json" else {"events": []})


@pytest.mark.parametrize("fmt", FORMATS)
def test_refetching_yields_identical_events(api, fake_scout, fmt):
    fake_scout.agent("agent-1", events=25, events_format=fmt, auto_callback=False)
    url = start(api)["events_url"]
    first = api.get(url).content
    time.sleep(0.01)
    assert api.get(url).content == first


def test_events_differ_between_sessions(api, fake_scout):
    fake_scout.agent("agent-1", events=3, events_format="json", auto_callback=False)
    one = api.get(start(api)["events_url"]).json()
    two = api.get(start(api)["events_url"]).json()
    assert {e["id"] for e in one}.isdisjoint({e["id"] for e in two})


def test_unknown_session_404s(api):
    response = api.get("/world/agent-1/no-such-session/events")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found"}
    assert api.get("/v1/agent-sessions/no-such-session/events").status_code == 404


def test_session_under_another_agent_404s(api, fake_scout):
    session_id = start(api, "agent-1")["session_id"]
    assert api.get(f"/world/agent-1/{session_id}/events").status_code == 200
    assert api.get(f"/world/agent-2/{session_id}/events").status_code == 404


def test_the_guides_events_url_is_served(api, fake_scout):
    fake_scout.agent("agent-1", events=2, events_format="ndjson", auto_callback=False)
    started = api.post(
        "/v1/agents/agent-1/interact", json={"message": "go", "callback_url": CALLBACK}
    ).json()
    assert "/v1/agent-sessions/" in started["events_url"]
    lines = api.get(started["events_url"]).text.splitlines()
    assert len(lines) == 2


def test_events_url_follows_the_host_the_client_used(fake_scout):
    fake_scout.default_agent = AgentBehaviour(auto_callback=False)
    base = f"http://localhost:{fake_scout.port}"
    with httpx.Client(
        base_url=base, headers={"Authorization": "Bearer test-api-key"}, trust_env=False
    ) as local:
        started = start(local)
        assert started["events_url"].startswith(f"{base}/world/agent-1/")
        assert local.get(started["events_url"]).status_code == 200


def test_events_need_the_bearer_key(api, fake_scout):
    url = start(api)["events_url"]
    assert httpx.get(url, trust_env=False).status_code == 401


def test_event_fetch_faults(api, fake_scout):
    fake_scout.agent("agent-1", events=3, events_format="json", auto_callback=False)
    url = start(api)["events_url"]
    fake_scout.fail_next("GET", "/world/*/events", status=503, times=2)
    statuses = [api.get(url).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    fetches = fake_scout.requests_matching("GET", "*/events")
    assert [r.fault for r in fetches] == ["status 503", "status 503", None]


def test_a_slow_stream_paces_its_events(api, fake_scout):
    # Pauses long enough that a loaded machine's scheduling noise cannot blur them.
    fake_scout.agent("agent-1", events=4, event_interval=0.5, auto_callback=False)
    url = start(api)["events_url"]
    arrivals = []
    started = time.monotonic()
    with api.stream("GET", url) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 4
    assert arrivals[0] < 0.4  # the first event is not held back a pause
    assert arrivals[-1] >= 1.45  # three pauses of 0.5 s
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.4


# --------------------------------------------------------------------------- big streams


@pytest.mark.parametrize("fmt", FORMATS)
def test_100_000_events_stream_in_each_format(api, fake_scout, fmt):
    total = 100_000
    fake_scout.agent("agent-1", events=total, events_format=fmt, auto_callback=False)
    url = start(api)["events_url"]
    count = 0
    started = time.monotonic()
    with api.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        first_byte = None
        for event in parse_events(fmt, response):
            if first_byte is None:
                first_byte = time.monotonic() - started
            assert event["data"]["index"] == count  # type: ignore[index]
            count += 1
    assert count == total
    assert first_byte is not None
    assert first_byte < 1.0
    assert event["data"]["text"] == AgentBehaviour().reply  # type: ignore[index]


def test_the_stream_is_generated_lazily(api, fake_scout):
    # A billion events cannot be built in memory: the first ones must arrive at once anyway.
    fake_scout.agent("agent-1", events=1_000_000_000, events_format="json", auto_callback=False)
    url = start(api)["events_url"]
    started = time.monotonic()
    seen = 0
    with api.stream("GET", url) as response:
        for event in parse_events("json", response):
            assert event["data"]["index"] == seen  # type: ignore[index]
            seen += 1
            if seen == 1000:
                break
    assert time.monotonic() - started < 2.0
    # The server notices the client going away and stops generating.
    stopped = time.monotonic()
    fake_scout.stop()
    assert time.monotonic() - stopped < 3.0
