"""The resources of both clients: ``client.agents``, ``client.sessions``, ``client.workflows``,
``client.apps``.

Each endpoint is described once, by a private function with the method's signature and
docstring: it builds the request with ``_requests`` and says how to read the answer with
``_decoders`` (see :mod:`._methods`). Endpoints that send the same request and read the answer
differently (whole or streamed) take their parameters from one function
(:func:`~._methods.with_parameters_of`), so a parameter is added to all of them at once.

Below the descriptions of a resource, its blocking class (``Agents``) and its asynchronous twin
(``AsyncAgents``) each name every endpoint in one line.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from . import _decoders as decode
from . import _requests as build
from ._config import ClientConfig
from ._http import RequestSpec
from ._methods import (
    AsyncResource,
    Call,
    DecodedStream,
    SessionEventStream,
    Stream,
    SyncResource,
    async_method,
    sync_method,
    with_parameters_of,
)
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
from .streams import SessionEvent
from .workflow_events import WorkflowEvent

__all__ = [
    "Agents",
    "Apps",
    "AsyncAgents",
    "AsyncApps",
    "AsyncSessions",
    "AsyncWorkflows",
    "Sessions",
    "Workflows",
]

# --------------------------------------------------------------------------- agents


def _interact_async(
    config: ClientConfig,
    agent_id: str,
    message: str | None = None,
    *,
    messages: Sequence[Any] | None = None,
    callback_url: str,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
) -> Call[AsyncInteractionAccepted]:
    """Start an interaction that runs in the background; Scout POSTs ``callback_url`` when
    it is done. Returns the ``session_id`` and the ``events_url`` to fetch the events from."""
    spec = build.interact_async_request(
        config,
        agent_id,
        message,
        messages,
        callback_url=callback_url,
        session_id=session_id,
        metadata=metadata,
        variables=variables,
        tags=tags,
    )
    return Call(spec, decode.parse_accepted)


def _agent_interaction(
    config: ClientConfig,
    agent_id: str,
    message: str | None = None,
    *,
    messages: Sequence[Any] | None = None,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    revision_id: str | None = None,
) -> functools.partial[RequestSpec]:
    """The parameters of ``interact``, ``stream`` and ``stream_events``: their request, but
    for ``stream``."""
    return functools.partial(
        build.agent_interaction_request,
        config,
        agent_id,
        message,
        messages,
        session_id=session_id,
        metadata=metadata,
        variables=variables,
        tags=tags,
        revision_id=revision_id,
    )


@with_parameters_of(_agent_interaction)
def _interact(request: functools.partial[RequestSpec]) -> Call[AgentReply]:
    """Send messages and wait for the agent's reply (``_interact_sync``)."""
    return Call(request(stream=False), decode.parse_agent_reply)


@with_parameters_of(_agent_interaction)
def _stream_agent(request: functools.partial[RequestSpec]) -> Stream[AgentStreamEvent]:
    """Send messages and iterate over the agent's server-sent events (``_interact``)."""
    return DecodedStream(request(stream=True), decode.AgentStreamDecoder())


@with_parameters_of(_agent_interaction)
def _stream_agent_events(request: functools.partial[RequestSpec]) -> Stream[SessionEvent]:
    """:meth:`stream`'s request, its events read as a session's events are: numbered from 0,
    named, with their id, timestamp and JSON text (:class:`~django_scout.client.SessionEvent`).

    The stream's ``ended_with_done`` is True when Scout's ``[DONE]`` sentinel ended it. If
    Scout answers with JSON instead of a stream, that JSON is read as an ``events_url`` body.
    """
    return SessionEventStream(request(stream=True))


def _list_agents(config: ClientConfig) -> Call[list[Agent]]:
    """All agents of the organization (``GET /agents``)."""
    return Call(build.agents_list_request(config), decode.parse_agent_list)


def _get_agent(config: ClientConfig, agent_id: str) -> Call[ActiveAgent]:
    """One agent and its active revision (``GET /agents/{agent_id}/active``)."""
    return Call(build.agent_get_request(config, agent_id), decode.parse_active_agent)


class Agents(SyncResource):
    """Talk to agents: async interactions with a callback, sync replies, streams; list/get."""

    interact_async = sync_method(_interact_async)
    interact = sync_method(_interact)
    stream = sync_method(_stream_agent)
    stream_events = sync_method(_stream_agent_events)
    list = sync_method(_list_agents)
    get = sync_method(_get_agent)


class AsyncAgents(AsyncResource):
    """:class:`Agents`, asynchronous: methods are coroutines, streams are async iterators."""

    interact_async = async_method(_interact_async)
    interact = async_method(_interact)
    stream = async_method(_stream_agent)
    stream_events = async_method(_stream_agent_events)
    list = async_method(_list_agents)
    get = async_method(_get_agent)


# --------------------------------------------------------------------------- sessions


def _session_events(config: ClientConfig, events_url: str) -> Stream[SessionEvent]:
    """Iterate over the events at ``events_url`` (as returned by Scout), in constant memory.

    The URL must be on a trusted host (see ``trusted_hosts``), else
    :class:`~django_scout.client.UntrustedURLError` is raised before anything is sent.
    """
    return SessionEventStream(build.session_events_request(config, events_url))


class Sessions(SyncResource):
    """Read what happened in a session."""

    events = sync_method(_session_events)


class AsyncSessions(AsyncResource):
    """:class:`Sessions`, asynchronous: methods are coroutines, streams are async iterators."""

    events = async_method(_session_events)


# --------------------------------------------------------------------------- workflows


def _workflow_execution(
    config: ClientConfig,
    workflow_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    environment: str | None = None,
    revision_id: str | None = None,
    session_id: str | None = None,
) -> functools.partial[RequestSpec]:
    """The parameters of ``run`` and ``stream``: their request, but for ``stream``."""
    return functools.partial(
        build.workflow_execute_request,
        config,
        workflow_id,
        inputs,
        environment=environment,
        revision_id=revision_id,
        session_id=session_id,
    )


@with_parameters_of(_workflow_execution)
def _run_workflow(request: functools.partial[RequestSpec]) -> Call[WorkflowRunResult]:
    """Run a workflow and wait for its result (normalized from either response shape)."""
    return Call(request(stream=False), decode.parse_workflow_run)


@with_parameters_of(_workflow_execution)
def _stream_workflow(request: functools.partial[RequestSpec]) -> Stream[WorkflowEvent]:
    """Run a workflow and iterate over its lifecycle events as they happen."""
    return DecodedStream(request(stream=True), decode.WorkflowStreamDecoder())


def _inline_workflow(
    config: ClientConfig,
    workflow_config: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    workflow_key: str | None = None,
    environment: str | None = None,
    revision_id: str | None = None,
    session_id: str | None = None,
) -> functools.partial[RequestSpec]:
    """The parameters of ``run_with_config`` and ``stream_with_config``: their request, but
    for ``stream``."""
    return functools.partial(
        build.workflow_config_request,
        config,
        workflow_config,
        inputs,
        workflow_key=workflow_key,
        environment=environment,
        revision_id=revision_id,
        session_id=session_id,
    )


@with_parameters_of(_inline_workflow)
def _run_with_config(request: functools.partial[RequestSpec]) -> Call[WorkflowRunResult]:
    """Run a workflow defined inline by ``workflow_config`` (Scout beta endpoint)."""
    return Call(request(stream=False), decode.parse_run_with_config)


@with_parameters_of(_inline_workflow)
def _stream_with_config(request: functools.partial[RequestSpec]) -> Stream[WorkflowEvent]:
    """Run an inline ``workflow_config`` with ``streaming`` on; iterate over its events."""
    return DecodedStream(request(stream=True), decode.WorkflowStreamDecoder())


def _trigger_webhook(
    config: ClientConfig, webhook_url: str, body: Any
) -> Call[WebhookTriggerResult]:
    """POST ``body`` as JSON to a workflow's webhook URL (its token is the credential; the
    API key is not sent)."""
    return Call(build.webhook_request(config, webhook_url, body), decode.parse_webhook_result)


class Workflows(SyncResource):
    """Run workflows (plain, streamed, from an inline config, or through a webhook)."""

    run = sync_method(_run_workflow)
    stream = sync_method(_stream_workflow)
    run_with_config = sync_method(_run_with_config)
    stream_with_config = sync_method(_stream_with_config)
    trigger_webhook = sync_method(_trigger_webhook)


class AsyncWorkflows(AsyncResource):
    """:class:`Workflows`, asynchronous: methods are coroutines, streams are async iterators."""

    run = async_method(_run_workflow)
    stream = async_method(_stream_workflow)
    run_with_config = async_method(_run_with_config)
    stream_with_config = async_method(_stream_with_config)
    trigger_webhook = async_method(_trigger_webhook)


# --------------------------------------------------------------------------- apps


def _execute_app(
    config: ClientConfig, app_id: str, inputs: dict[str, Any] | None = None
) -> Call[AppExecution]:
    """Run an app and return each block's output by block name."""
    spec = build.app_execute_request(config, app_id, inputs, stream=False)
    return Call(spec, decode.parse_app_execution)


def _stream_app(
    config: ClientConfig, app_id: str, inputs: dict[str, Any] | None = None
) -> Stream[AppStreamEvent]:
    """Run an app and iterate over its ``message``/``start_message``/``error`` events."""
    spec = build.app_execute_request(config, app_id, inputs, stream=True)
    return DecodedStream(spec, decode.AppStreamDecoder())


class Apps(SyncResource):
    """The legacy Apps API (``/v1/apps/execute``)."""

    execute = sync_method(_execute_app)
    stream = sync_method(_stream_app)


class AsyncApps(AsyncResource):
    """:class:`Apps`, asynchronous: methods are coroutines, streams are async iterators."""

    execute = async_method(_execute_app)
    stream = async_method(_stream_app)
