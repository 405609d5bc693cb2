"""The fake Scout's workflow endpoints: plain and streamed runs, run-with-config, webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from django_scout.client.streams import iter_sse
from django_scout.testing import WorkflowBehaviour
from tests.helpers import SSE_HEADERS

ENVELOPE_KEYS = {
    "organization_id",
    "id",
    "correlation_id",
    "name",
    "environment",
    "timestamp",
    "data",
    "price",
    "event_type",
    "version",
}


def stream_events(
    api: httpx.Client, path: str, body: dict[str, Any], **params: str
) -> list[dict[str, Any]]:
    events = []
    with api.stream("POST", path, params=params, json=body, headers=SSE_HEADERS) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        for sse in iter_sse(response):
            events.append(json.loads(sse.data))
    return events


# --------------------------------------------------------------------------- plain runs


def test_plain_run_in_the_sdk_shape(api, fake_scout):
    fake_scout.workflow("wf-1", outputs={"urgency": "high"}, blocks=3, output_block_id="out")
    response = api.post(
        "/v2/workflows/wf-1/execute",
        params={"environment": "production", "revision_id": "rev-7", "session_id": "sess-1"},
        json={"inputs": {"ticket_id": "TKT-1"}, "streaming": False},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"run", "workflow_id", "output_block_id"}
    assert body["workflow_id"] == "wf-1"
    assert body["output_block_id"] == "out"
    run = body["run"]
    assert run["stop_reason"] == "workflow_run_completed"
    assert run["errors"] == []
    assert run["session_id"] == "sess-1"
    assert run["workflow_run_id"].startswith("run_")
    assert run["state"]["out"] == {"urgency": "high"}
    assert run["state"]["inputs"] == {"ticket_id": "TKT-1"}
    [record] = fake_scout.workflow_runs
    assert record.workflow_id == "wf-1"
    assert record.run_id == run["workflow_run_id"]
    assert record.environment == "production"
    assert record.revision_id == "rev-7"
    assert record.session_id == "sess-1"
    assert record.inputs == {"ticket_id": "TKT-1"}
    assert record.streaming is False
    assert record.source == "execute"


def test_plain_run_in_the_docs_shape(api, fake_scout):
    fake_scout.workflow("wf-1", shape="docs", outputs={"routed_to": "billing"}, duration_ms=99)
    body = api.post("/v2/workflows/wf-1/execute", json={"inputs": {}}).json()
    assert set(body) == {"run_id", "status", "outputs", "duration_ms"}
    assert body["status"] == "success"
    assert body["outputs"] == {"routed_to": "billing"}
    assert body["duration_ms"] == 99
    assert body["run_id"].startswith("run_")


def test_failed_plain_runs(api, fake_scout):
    fake_scout.workflow("sdk", outcome="failed", error_message="LLM exploded")
    fake_scout.workflow("docs", shape="docs", outcome="failed")
    run = api.post("/v2/workflows/sdk/execute", json={}).json()["run"]
    assert run["stop_reason"] == "workflow_run_failed"
    assert run["errors"] == ["LLM exploded"]
    assert "output" not in run["state"]
    docs = api.post("/v2/workflows/docs/execute", json={}).json()
    assert docs["status"] == "failed"
    assert docs["outputs"] == {}


def test_an_empty_body_runs_with_no_inputs(api, fake_scout):
    response = api.post("/v2/workflows/wf/execute")
    assert response.status_code == 200
    assert fake_scout.workflow_runs[0].inputs == {}


@pytest.mark.parametrize("environment", ["production", "staging", "development", "console"])
def test_documented_environments_are_accepted(api, environment):
    response = api.post(
        "/v2/workflows/wf/execute", params={"environment": environment}, json={"inputs": {}}
    )
    assert response.status_code == 200


def test_unknown_environment_and_bad_body_422(api, fake_scout):
    response = api.post(
        "/v2/workflows/wf/execute",
        params={"environment": "prod"},
        json={"inputs": ["not", "an", "object"], "streaming": "yes"},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [
        ["query", "environment"],
        ["body", "inputs"],
        ["body", "streaming"],
    ]
    assert detail[0]["type"] == "type_error.enum"
    assert fake_scout.workflow_runs == []


def test_unknown_workflows_404_without_a_default(api, fake_scout):
    fake_scout.default_workflow = None
    fake_scout.workflow("known")
    response = api.post("/v2/workflows/unknown/execute", json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Workflow not found"}
    assert api.post("/v2/workflows/known/execute", json={}).status_code == 200


# --------------------------------------------------------------------------- streamed runs


def test_streamed_run_sends_the_lifecycle_in_order(api, fake_scout):
    fake_scout.workflow("wf-1", blocks=2, updates_per_block=2, outputs={"answer": "42"})
    events = stream_events(
        api,
        "/v2/workflows/wf-1/execute",
        {"inputs": {"q": "?"}, "streaming": True},
        environment="staging",
        session_id="sess-x",
    )
    names = [event["name"] for event in events]
    assert names == [
        "workflow_run_started",
        "block_run_started",
        "block_state_updated",
        "block_state_updated",
        "block_state_updated",
        "block_run_completed",
        "block_run_started",
        "block_state_updated",
        "block_state_updated",
        "block_state_updated",
        "block_run_completed",
        "workflow_run_completed",
    ]
    run_id = fake_scout.workflow_runs[0].run_id
    for event in events:
        assert set(event) == ENVELOPE_KEYS
        assert event["organization_id"] == "org_fake_scout"
        assert event["event_type"] == "workflow_event"
        assert event["version"] == "1.0"
        assert event["environment"] == "preview"  # the fake's mapping of "staging"
        assert isinstance(event["price"], str)
        assert event["data"]["workflow_id"] == "wf-1"
        assert event["data"]["workflow_run_id"] == run_id
        assert event["timestamp"].endswith("Z")
    assert len({event["id"] for event in events}) == len(events)
    started = events[0]["data"]
    assert started["inputs"] == {"q": "?"}
    assert started["session_id"] == "sess-x"
    assert isinstance(started["price"], float)
    updates = [event["data"] for event in events if event["name"] == "block_state_updated"]
    assert [u["update_type"] for u in updates] == ["partial", "partial", "complete"] * 2
    assert all(isinstance(u["update_data"], dict) and u["block_type"] for u in updates)
    assert "session_id" not in updates[0]
    assert updates[-1]["update_data"] == {"answer": "42"}
    assert events[-1]["data"]["output"] == {"answer": "42"}
    assert events[-1]["data"]["session_id"] == "sess-x"
    assert fake_scout.workflow_runs[0].streaming is True


def test_streamed_failure_ends_with_block_and_run_failed(api, fake_scout):
    fake_scout.workflow("wf-1", outcome="failed", blocks=2, error_message="Tool timed out")
    events = stream_events(api, "/v2/workflows/wf-1/execute", {"streaming": True})
    names = [event["name"] for event in events]
    assert names[-2:] == ["block_run_failed", "workflow_run_failed"]
    assert "workflow_run_completed" not in names
    assert events[-2]["data"]["message"] == "Tool timed out"
    assert events[-2]["data"]["status_code"] == 500
    assert events[-1]["data"]["message"] == "Tool timed out"


def test_stream_extras_unknown_event_sse_field_comments_and_done(api, fake_scout):
    fake_scout.workflow(
        "wf-1",
        blocks=1,
        updates_per_block=0,
        unknown_event_name="block_run_paused",
        sse_event_field=True,
        keepalive_comments=True,
        done_sentinel=True,
    )
    response = api.post("/v2/workflows/wf-1/execute", json={"streaming": True})
    raw_events = [block for block in response.text.split("\n\n") if block]
    assert raw_events[0] == ": keep-alive"
    assert raw_events[-1] == "data: [DONE]"
    data_blocks = [block for block in raw_events if block.startswith("event: ")]
    parsed = []
    for block in data_blocks:
        event_line, data_line = block.split("\n")
        event = json.loads(data_line[len("data: ") :])
        assert event_line == f"event: {event['name']}"
        parsed.append(event["name"])
    assert parsed[:2] == ["workflow_run_started", "block_run_paused"]
    assert parsed[-1] == "workflow_run_completed"


@pytest.mark.parametrize("cut", [0, 1, 4])
def test_clean_cut_off_ends_the_stream_without_a_terminal_event(api, fake_scout, cut):
    fake_scout.workflow("wf-1", cut_off_after=cut)
    events = stream_events(api, "/v2/workflows/wf-1/execute", {"streaming": True})
    assert len(events) == cut
    assert not {"workflow_run_completed", "workflow_run_failed"} & {e["name"] for e in events}


def collect_names(response: httpx.Response, names: list[str]) -> None:
    for line in response.iter_lines():
        if line.startswith("data: "):
            names.append(json.loads(line[6:])["name"])


def test_aborted_cut_off_is_a_transport_error(api, fake_scout):
    fake_scout.workflow("wf-1", cut_off_after=2, cut_off_mode="abort")
    received: list[str] = []
    with api.stream("POST", "/v2/workflows/wf-1/execute", json={"streaming": True}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # the read fails mid-stream
            collect_names(response, received)
    assert received == ["workflow_run_started", "block_run_started"]


def test_slow_stream(api, fake_scout):
    fake_scout.workflow("wf-1", blocks=1, updates_per_block=1, stream_interval=0.05)
    started = time.monotonic()
    events = stream_events(api, "/v2/workflows/wf-1/execute", {"streaming": True})
    elapsed = time.monotonic() - started
    assert len(events) == 6
    assert elapsed >= 0.24  # five pauses


# --------------------------------------------------------------------------- run with config


def test_run_with_config_answers_one_started_event(api, fake_scout):
    config = {"workflow_display_name": "Inline", "blocks": []}
    response = api.post(
        "/v2/workflows/execute",
        params={"environment": "development"},
        json={"workflow_config": config, "inputs": {"x": 1}},
    )
    assert response.status_code == 200
    event = response.json()
    assert set(event) == ENVELOPE_KEYS
    assert event["name"] == "workflow_run_started"
    assert event["price"] == "1.10"
    assert event["data"]["price"] == 1.1
    assert event["data"]["workflow_config"] == config
    assert event["data"]["inputs"] == {"x": 1}
    assert event["data"]["actor"] == {"id": "user_fake_scout", "type": "external"}
    [record] = fake_scout.workflow_runs
    assert record.source == "execute_with_config"
    assert record.workflow_config == config
    assert record.workflow_id == event["data"]["workflow_id"]


def test_run_with_config_can_answer_a_run_response(api, fake_scout):
    fake_scout.workflow("key-1", config_response="run", outputs={"ok": True})
    body = api.post(
        "/v2/workflows/execute", json={"workflow_config": {}, "workflow_key": "key-1"}
    ).json()
    assert body["workflow_id"] == "key-1"
    assert body["run"]["state"]["output"] == {"ok": True}


def test_run_with_config_streams(api, fake_scout):
    events = stream_events(api, "/v2/workflows/execute", {"workflow_config": {}, "streaming": True})
    assert events[0]["name"] == "workflow_run_started"
    assert events[-1]["name"] == "workflow_run_completed"


def test_run_with_config_works_without_any_default_workflow(api, fake_scout):
    fake_scout.default_workflow = None
    response = api.post("/v2/workflows/execute", json={"workflow_config": {}})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "locs"),
    [
        ({}, [["body", "workflow_config"]]),
        ({"workflow_config": []}, [["body", "workflow_config"]]),
        (
            {"workflow_config": {}, "workflow_key": 5, "inputs": 1, "streaming": "no"},
            [["body", "workflow_key"], ["body", "inputs"], ["body", "streaming"]],
        ),
    ],
)
def test_run_with_config_validation(api, body, locs):
    response = api.post("/v2/workflows/execute", json=body)
    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == locs


def test_run_with_config_checks_the_environment(api):
    response = api.post(
        "/v2/workflows/execute", params={"environment": "qa"}, json={"workflow_config": {}}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "environment"]


# --------------------------------------------------------------------------- webhooks


def test_webhook_trigger_runs_the_workflow_with_the_body(fake_scout):
    url = fake_scout.webhook_url("wf-hook")
    assert url.startswith(f"{fake_scout.base_url}/v1/workflows/wf-hook/webhook/")
    assert fake_scout.webhook_url("wf-hook") == url
    response = httpx.post(url, json={"event": "payment", "amount": 5}, trust_env=False)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    [record] = fake_scout.workflow_runs
    assert record.run_id == body["workflow_run_id"]
    assert record.source == "webhook"
    assert record.environment == "production"
    assert record.inputs == {"webhook_body": {"event": "payment", "amount": 5}}
    assert fake_scout.requests[-1].header("authorization") is None


def test_webhook_keeps_a_non_json_body_as_text(fake_scout):
    url = fake_scout.webhook_url("wf-hook", token="fixed-token")
    assert url.endswith("/webhook/fixed-token")
    httpx.post(url, content=b"a=1&b=2", trust_env=False)
    assert fake_scout.workflow_runs[0].inputs == {"webhook_body": "a=1&b=2"}


def test_webhook_with_a_wrong_token_or_workflow(fake_scout):
    url = fake_scout.webhook_url("wf-hook")
    wrong = url.rsplit("/", 1)[0] + "/not-the-token"
    response = httpx.post(wrong, json={}, trust_env=False)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid webhook token"}
    unknown = fake_scout.url("/v1/workflows/other/webhook/anything")
    response = httpx.post(unknown, json={}, trust_env=False)
    assert response.status_code == 404
    assert fake_scout.workflow_runs == []


def test_fixed_behaviour_objects_can_be_registered(api, fake_scout):
    behaviour = WorkflowBehaviour(shape="docs", outputs={"n": 1})
    assert fake_scout.workflow("wf-1", behaviour) is not None
    assert api.post("/v2/workflows/wf-1/execute", json={}).json()["outputs"] == {"n": 1}
    with pytest.raises(ValueError, match="shape"):
        WorkflowBehaviour(shape="other")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blocks"):
        WorkflowBehaviour(blocks=0)
