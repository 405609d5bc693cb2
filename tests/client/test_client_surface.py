"""The methods both clients derive from one endpoint description (``client/_methods.py``).

Behaviour over the wire is tested per resource with both clients (the harness of ``helpers.py``,
built by the ``make`` fixture of ``conftest.py``); this file checks what the derivation itself
promises: the sync and async resources offer the same methods with the same parameters and
docstrings, ``help()`` and ``inspect`` see the real method, the async ones are coroutines except
for streams, and the types mypy sees are the precise ones (``assert_type`` lines are checked by
mypy, which runs over the tests).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typing_extensions import assert_type

from django_scout.client import (
    Agent,
    AgentReply,
    AgentStreamEvent,
    AsyncEventStream,
    AsyncScoutClient,
    EventStream,
    ScoutClient,
    SessionEvent,
    WorkflowRunResult,
    resources,
)
from django_scout.client._config import ClientConfig
from django_scout.client._methods import Call, async_method, sync_method, with_parameters_of

PAIRS = [
    (resources.Agents, resources.AsyncAgents),
    (resources.Sessions, resources.AsyncSessions),
    (resources.Workflows, resources.AsyncWorkflows),
    (resources.Apps, resources.AsyncApps),
]
BASE_URL = "https://api.scoutos.test"


def _methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda c: c.__name__)
def test_sync_and_async_resources_offer_the_same_methods(sync_cls: type, async_cls: type) -> None:
    sync_methods, async_methods = _methods(sync_cls), _methods(async_cls)
    assert sync_methods
    assert sorted(sync_methods) == sorted(async_methods)
    for name, method in sync_methods.items():
        twin = async_methods[name]
        assert method.__doc__
        assert twin.__doc__ == method.__doc__
        sync_parameters = inspect.signature(method).parameters
        assert next(iter(sync_parameters)) == "self"
        assert inspect.signature(twin).parameters == sync_parameters


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda c: c.__name__)
def test_methods_are_named_after_their_attribute(sync_cls: type, async_cls: type) -> None:
    for cls in (sync_cls, async_cls):
        for name, method in _methods(cls).items():
            assert method.__name__ == name
            assert method.__qualname__ == f"{cls.__name__}.{name}"
            assert method.__module__ == "django_scout.client.resources"


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda c: c.__name__)
def test_async_methods_are_coroutines_except_streams(sync_cls: type, async_cls: type) -> None:
    for name, method in _methods(sync_cls).items():
        returns = typing.get_type_hints(method)["return"]
        twin_returns = typing.get_type_hints(_methods(async_cls)[name])["return"]
        is_stream = typing.get_origin(returns) is EventStream
        assert inspect.iscoroutinefunction(_methods(async_cls)[name]) is not is_stream
        if is_stream:
            assert twin_returns == AsyncEventStream[typing.get_args(returns)[0]]  # type: ignore[misc]
        else:
            assert twin_returns == returns


def test_help_shows_the_method_signature_and_docstring() -> None:
    import pydoc

    text = pydoc.plain(pydoc.render_doc(resources.AsyncWorkflows))
    signature = inspect.signature(resources.AsyncWorkflows.run)
    # The public parameters, not the description's; spelled as this Python prints annotations.
    assert list(signature.parameters) == [
        "self",
        "workflow_id",
        "inputs",
        "environment",
        "revision_id",
        "session_id",
    ]
    # Compared without whitespace or the class page's "|" margin: Python 3.13 lays a long
    # signature out over several lines.
    flat = re.sub(r"[\s|]", "", text)
    assert re.sub(r"[\s|]", "", f"async run{signature}") in flat
    assert "Run a workflow and wait for its result" in text
    assert "AsyncEventStream[django_scout.client.workflow_events." in text
    assert "ClientConfig" not in text
    assert "(self, config" not in text


async def test_an_async_call_checks_its_arguments_when_awaited() -> None:
    async with AsyncScoutClient(api_key="sk-test", base_url=BASE_URL) as client:
        pending = client.agents.interact("", "hi")  # an async def: nothing has run yet
        with pytest.raises(ValueError, match="agent_id"):
            await pending
        with pytest.raises(ValueError, match="agent_id"):
            client.agents.stream("", "hi")  # a stream checks at the call, like the sync one


def _typed_description(config: ClientConfig, agent_id: str) -> int:
    return 0


def test_a_description_must_return_a_call_or_a_stream() -> None:
    with pytest.raises(TypeError, match=r"Call\[\.\.\.\] or Stream\[\.\.\.\]"):
        sync_method(_typed_description)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Call\[\.\.\.\] or Stream\[\.\.\.\]"):
        async_method(_typed_description)  # type: ignore[arg-type]


def _toy_parameters(config: ClientConfig, name: str, *, size: int = 1) -> tuple[str, int]:
    """Not shown: the parameters' own docstring."""
    return name, size


@with_parameters_of(_toy_parameters)
def _toy(arguments: tuple[str, int]) -> Call[list[str]]:
    """The toy's docstring."""
    raise NotImplementedError


def test_descriptions_sharing_parameters_show_those_parameters_and_their_own_docstring() -> None:
    method = sync_method(_toy)
    signature = inspect.signature(method)
    assert str(signature) == "(self, name: str, *, size: int = 1) -> list[str]"
    assert typing.get_type_hints(method) == {"name": str, "size": int, "return": list[str]}
    assert method.__doc__ == "The toy's docstring."
    assert inspect.iscoroutinefunction(async_method(_toy))


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (resources.Agents, ["interact", "stream", "stream_events"]),
        (resources.Workflows, ["run", "stream"]),
        (resources.Workflows, ["run_with_config", "stream_with_config"]),
    ],
)
def test_whole_and_streamed_twins_take_the_same_parameters(cls: type, names: list[str]) -> None:
    methods = _methods(cls)
    first, *others = (inspect.signature(methods[name]).parameters for name in names)
    assert others == [first] * len(others)


def _answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/agents"):
        return httpx.Response(200, json=[{"id": "a1", "name": "Helper"}])
    if request.url.path.endswith("/execute"):
        return httpx.Response(200, json={"run_id": "r1", "status": "completed"})
    return httpx.Response(200, json={"ok": True})


def test_the_blocking_client_is_precisely_typed() -> None:
    with ScoutClient(
        api_key="sk-test", base_url=BASE_URL, transport=httpx.MockTransport(_answer)
    ) as client:
        agents = assert_type(client.agents.list(), list[Agent])
        assert agents[0].id == "a1"
        reply = assert_type(client.agents.interact("a1", "hi"), AgentReply)
        assert reply.data == {"ok": True}
        run = assert_type(client.workflows.run("wf1"), WorkflowRunResult)
        assert run.run_id == "r1"
        events = f"{BASE_URL}/events"
        assert_type(client.sessions.events(events), EventStream[SessionEvent]).close()
        assert_type(client.agents.stream("a1", "hi"), EventStream[AgentStreamEvent]).close()
        assert_type(client.agents.stream_events("a1", "hi"), EventStream[SessionEvent]).close()


async def test_the_async_client_is_precisely_typed() -> None:
    transport = httpx.MockTransport(_answer)
    async with AsyncScoutClient(
        api_key="sk-test", base_url=BASE_URL, transport=transport
    ) as client:
        agents = assert_type(await client.agents.list(), list[Agent])
        assert agents[0].id == "a1"
        reply = assert_type(await client.agents.interact("a1", "hi"), AgentReply)
        assert reply.data == {"ok": True}
        run = assert_type(await client.workflows.run("wf1"), WorkflowRunResult)
        assert run.run_id == "r1"
        events = f"{BASE_URL}/events"
        await assert_type(client.sessions.events(events), AsyncEventStream[SessionEvent]).aclose()
        stream = client.agents.stream("a1", "hi")
        await assert_type(stream, AsyncEventStream[AgentStreamEvent]).aclose()
