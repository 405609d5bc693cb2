"""Contract: our client and our fake Scout agree on every endpoint, sync and async, over HTTP.

The fake answers in the shapes of Scout's official SDK; these tests drive the real client against
it over loopback, so a drift on either side fails here.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from django_scout.client import (
    AsyncScoutClient,
    ScoutAuthError,
    ScoutClient,
    ScoutNotFoundError,
    ScoutValidationError,
)
from django_scout.testing import AgentBehaviour, AppBehaviour, FakeScout, WorkflowBehaviour


class Driver:
    """Calls the sync or async client the same way."""

    def __init__(self, mode: str, fake: FakeScout, **kwargs: Any) -> None:
        options: dict[str, Any] = {"api_key": fake.api_key, "base_url": fake.base_url, **kwargs}
        self.client: ScoutClient | AsyncScoutClient = (
            ScoutClient(**options) if mode == "sync" else AsyncScoutClient(**options)
        )

    async def call(self, dotted: str, *args: Any, **kwargs: Any) -> Any:
        target: Any = self.client
        for part in dotted.split("."):
            target = getattr(target, part)
        result = target(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, dotted: str, *args: Any, **kwargs: Any) -> list[Any]:
        stream = await self.call(dotted, *args, **kwargs)
        if isinstance(self.client, AsyncScoutClient):
            return [item async for item in stream]
        return list(stream)

    async def close(self) -> None:
        if isinstance(self.client, AsyncScoutClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, fake_scout: FakeScout) -> Any:
    made = Driver(request.param, fake_scout)
    yield made
    await made.close()


async def test_async_interaction_world_form(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", AgentBehaviour(auto_callback=False, events=3))
    accepted = await driver.call(
        "agents.interact_async",
        "a1",
        "hello",
        callback_url="http://127.0.0.1:9/cb",
        metadata={"k": "v"},
        variables={"x": 1},
        tags=["t:1"],
    )
    (started,) = fake_scout.interactions
    assert started.session_id == accepted.session_id
    assert accepted.events_url == started.events_url
    assert started.path == "/world/a1/_interact_async"
    assert started.messages == [{"content": "hello"}]
    assert (started.metadata, started.variables, started.tags) == ({"k": "v"}, {"x": 1}, ["t:1"])
    events = await driver.collect("sessions.events", accepted.events_url)
    assert [event.sequence for event in events] == [0, 1, 2]


async def test_async_interaction_in_session_and_v1_form(fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", AgentBehaviour(auto_callback=False))
    for endpoint, expected_path in [
        ("world", "/world/a1/sess-9/_interact_async"),
        ("v1", "/v1/agents/a1/interact"),
    ]:
        driver = Driver("sync", fake_scout, async_interact_endpoint=endpoint)
        accepted = await driver.call(
            "agents.interact_async",
            "a1",
            messages=["one", {"content": "two"}],
            callback_url="http://127.0.0.1:9/cb",
            session_id="sess-9",
        )
        await driver.close()
        assert accepted.session_id == "sess-9"
        assert fake_scout.interactions[-1].path == expected_path
        assert fake_scout.interactions[-1].messages == [{"content": "one"}, {"content": "two"}]


@pytest.mark.parametrize("events_format", ["sse", "json", "json-object", "ndjson"])
async def test_events_every_format(
    driver: Driver, fake_scout: FakeScout, events_format: Any
) -> None:
    fake_scout.agent(
        "a1", AgentBehaviour(auto_callback=False, events=25, events_format=events_format)
    )
    accepted = await driver.call(
        "agents.interact_async", "a1", "hi", callback_url="http://127.0.0.1:9/cb"
    )
    first = await driver.collect("sessions.events", accepted.events_url)
    again = await driver.collect("sessions.events", accepted.events_url)
    assert len(first) == 25
    assert [e.sequence for e in first] == list(range(25))
    assert [e.data for e in first] == [e.data for e in again]  # deterministic re-fetch
    assert all(isinstance(e.data, dict) for e in first)


async def test_sync_and_streaming_interaction(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", AgentBehaviour(reply="the answer"))
    reply = await driver.call("agents.interact", "a1", "question")
    assert "the answer" in str(reply.data)
    events = await driver.collect("agents.stream", "a1", "question")
    assert events
    assert "the answer" in str([e.data for e in events])


async def test_agents_list_and_get(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.agent("a1", name="Support triage")
    agents = await driver.call("agents.list")
    assert [agent.name for agent in agents] == ["Support triage"]
    active = await driver.call("agents.get", "a1")
    assert active.agent is not None
    assert active.agent.id == "a1"
    assert active.revision is not None
    with pytest.raises(ScoutNotFoundError):
        await driver.call("agents.get", "nobody")


@pytest.mark.parametrize("shape", ["sdk", "docs"])
@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_workflow_run_both_shapes_normalized(
    driver: Driver, fake_scout: FakeScout, shape: Any, outcome: Any
) -> None:
    fake_scout.workflow(
        "wf", WorkflowBehaviour(shape=shape, outcome=outcome, outputs={"u": "high"})
    )
    result = await driver.call(
        "workflows.run", "wf", {"ticket": "T-1"}, environment="staging", revision_id="rev-1"
    )
    assert result.status == outcome
    assert result.run_id
    if outcome == "succeeded":
        assert result.outputs == {"u": "high"}
    elif shape == "sdk":  # the guide's shape documents no failure details
        assert result.errors
    (run,) = fake_scout.workflow_runs
    assert (run.environment, run.revision_id, run.inputs) == ("staging", "rev-1", {"ticket": "T-1"})


async def test_workflow_bad_environment_is_422(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.workflow("wf")
    with pytest.raises(ScoutValidationError) as exc_info:
        await driver.call("workflows.run", "wf", {}, environment="prod")
    assert any("environment" in str(item.get("loc")) for item in exc_info.value.errors)


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_workflow_stream_typed_events(
    driver: Driver, fake_scout: FakeScout, outcome: Any
) -> None:
    fake_scout.workflow(
        "wf",
        WorkflowBehaviour(outcome=outcome, blocks=2, unknown_event_name="mystery_event"),
    )
    events = await driver.collect("workflows.stream", "wf", {"q": 1}, environment="production")
    names = [event.name for event in events]
    assert names[0] == "workflow_run_started"
    assert "mystery_event" in names  # unknown events are kept, never dropped
    assert "block_run_started" in names
    assert "block_state_updated" in names
    assert names[-1] == (
        "workflow_run_completed" if outcome == "succeeded" else "workflow_run_failed"
    )
    assert type(events[-1]).__name__ == (
        "WorkflowRunCompleted" if outcome == "succeeded" else "WorkflowRunFailed"
    )


@pytest.mark.parametrize(
    ("config_response", "status"), [("event", "running"), ("run", "succeeded")]
)
async def test_run_with_config_both_branches(
    driver: Driver, fake_scout: FakeScout, config_response: Any, status: str
) -> None:
    fake_scout.default_workflow = WorkflowBehaviour(config_response=config_response)
    result = await driver.call(
        "workflows.run_with_config",
        {"blocks": []},
        {"a": 1},
        workflow_key="k",
        environment="console",
    )
    assert result.status == status
    assert result.run_id


async def test_webhook_trigger(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.workflow("wf")
    url = fake_scout.webhook_url("wf")
    result = await driver.call("workflows.trigger_webhook", url, {"order": 7})
    assert 200 <= result.status_code < 300
    assert fake_scout.workflow_runs[-1].inputs == {"webhook_body": {"order": 7}}
    token = url.rsplit("/", 1)[1]
    assert token not in repr(result)


async def test_apps_execute_and_stream(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["Hel", "lo"], start_message="thinking"))
    execution = await driver.call("apps.execute", "app1", {"input": "hi"})
    assert execution.id
    assert execution.outputs
    events = await driver.collect("apps.stream", "app1", {"input": "hi"})
    kinds = [event.event for event in events]
    assert kinds[0] == "start_message"
    assert kinds.count("message") == 2


async def test_app_stream_error_event(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["a"], error="block exploded"))
    events = await driver.collect("apps.stream", "app1", {})
    errors = [event for event in events if event.event == "error"]
    assert errors
    assert "block exploded" in str(errors[0].data)


async def test_wrong_key_is_auth_error(fake_scout: FakeScout) -> None:
    client = ScoutClient(api_key="wrong-key", base_url=fake_scout.base_url)
    with client, pytest.raises(ScoutAuthError) as exc_info:
        client.agents.list()
    assert exc_info.value.status_code == 401
    assert "wrong-key" not in str(exc_info.value)


async def test_rate_limit_then_success_is_retried(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.workflow("wf")
    fake_scout.fail_next("POST", "/v2/workflows/*", 429, retry_after=0)
    result = await driver.call("workflows.run", "wf", {})
    assert result.status == "succeeded"
    assert len(fake_scout.requests_matching("POST", "/v2/workflows/*")) == 2


async def test_stream_with_config(driver: Driver, fake_scout: FakeScout) -> None:
    fake_scout.default_workflow = WorkflowBehaviour(blocks=1, outputs={"answer": 42})
    events = await driver.collect(
        "workflows.stream_with_config", {"blocks": []}, {"q": 1}, environment="development"
    )
    assert events[0].name == "workflow_run_started"
    assert events[-1].name == "workflow_run_completed"
    assert fake_scout.workflow_runs[-1].workflow_config == {"blocks": []}
    assert fake_scout.workflow_runs[-1].streaming is True


@pytest.mark.parametrize("done_sentinel", ["[DONE]", "DONE", None])
def test_stream_reports_whether_it_ended_with_done(
    fake_scout: FakeScout, done_sentinel: str | None
) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["x"], done_sentinel=done_sentinel))
    with ScoutClient(api_key=str(fake_scout.api_key), base_url=fake_scout.base_url) as client:
        stream = client.apps.stream("app1", {})
        assert [event.event for event in stream].count("message") == 1
    assert stream.ended_with_done is (done_sentinel is not None)


async def test_async_stream_reports_ended_with_done(fake_scout: FakeScout) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["x", "y"]))
    async with AsyncScoutClient(api_key=str(fake_scout.api_key), base_url=fake_scout.base_url) as c:
        stream = c.apps.stream("app1", {})
        assert len([event async for event in stream if event.event == "message"]) == 2
    assert stream.ended_with_done is True
