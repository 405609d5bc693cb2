"""Asynchronous resources of :class:`~django_scout.client.AsyncScoutClient`.

They mirror :mod:`.resources` method for method: the same ``_requests`` builders and
``_decoders`` parsers, with :class:`~._http.AsyncHTTP` doing the I/O. Streaming methods are
plain functions returning an async iterator: ``async for ev in client.workflows.stream(...)``."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from . import _decoders as decode
from . import _requests as build
from ._http import AsyncHTTP
from .event_stream import AsyncEventStream, aiter_decoded, aopen_stream
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
from .streams import SessionEvent, aiter_session_events
from .workflow_events import WorkflowEvent

__all__ = ["AsyncAgents", "AsyncApps", "AsyncSessions", "AsyncWorkflows"]


class _Resource:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http
        self._config = http.config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._config.base_url}>"


class AsyncAgents(_Resource):
    """Talk to agents: async interactions with a callback, sync replies, streams; list/get."""

    async def interact_async(
        self,
        agent_id: str,
        message: str | None = None,
        *,
        messages: Sequence[Any] | None = None,
        callback_url: str,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> AsyncInteractionAccepted:
        """Start an interaction that runs in the background; Scout POSTs ``callback_url`` when
        it is done. Returns the ``session_id`` and the ``events_url`` to fetch the events from."""
        spec = build.interact_async_request(
            self._config,
            agent_id,
            message,
            messages,
            callback_url=callback_url,
            session_id=session_id,
            metadata=metadata,
            variables=variables,
            tags=tags,
        )
        return decode.parse_accepted(await self._http.send(spec))

    async def interact(
        self,
        agent_id: str,
        message: str | None = None,
        *,
        messages: Sequence[Any] | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        revision_id: str | None = None,
    ) -> AgentReply:
        """Send messages and wait for the agent's reply (``_interact_sync``)."""
        spec = build.agent_interaction_request(
            self._config,
            agent_id,
            message,
            messages,
            stream=False,
            session_id=session_id,
            metadata=metadata,
            variables=variables,
            tags=tags,
            revision_id=revision_id,
        )
        return decode.parse_agent_reply(await self._http.send(spec))

    def stream(
        self,
        agent_id: str,
        message: str | None = None,
        *,
        messages: Sequence[Any] | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        revision_id: str | None = None,
    ) -> AsyncEventStream[AgentStreamEvent]:
        """Send messages and iterate (``async for``) over the agent's server-sent events."""
        spec = build.agent_interaction_request(
            self._config,
            agent_id,
            message,
            messages,
            stream=True,
            session_id=session_id,
            metadata=metadata,
            variables=variables,
            tags=tags,
            revision_id=revision_id,
        )
        return aiter_decoded(self._http, spec, decode.AgentStreamDecoder())

    async def list(self) -> builtins.list[Agent]:
        """All agents of the organization (``GET /agents``)."""
        return decode.parse_agent_list(
            await self._http.send(build.agents_list_request(self._config))
        )

    async def get(self, agent_id: str) -> ActiveAgent:
        """One agent and its active revision (``GET /agents/{agent_id}/active``)."""
        spec = build.agent_get_request(self._config, agent_id)
        return decode.parse_active_agent(await self._http.send(spec))


class AsyncSessions(_Resource):
    """Read what happened in a session."""

    def events(self, events_url: str) -> AsyncEventStream[SessionEvent]:
        """Iterate (``async for``) over the events at ``events_url`` (as returned by Scout), in
        constant memory.

        The URL must be on a trusted host (see ``trusted_hosts``), else
        :class:`~django_scout.client.UntrustedURLError` is raised before anything is sent.
        """
        spec = build.session_events_request(self._config, events_url)
        return aopen_stream(self._http, spec, aiter_session_events)


class AsyncWorkflows(_Resource):
    """Run workflows (plain, streamed, from an inline config, or through a webhook)."""

    async def run(
        self,
        workflow_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        environment: str | None = None,
        revision_id: str | None = None,
        session_id: str | None = None,
    ) -> WorkflowRunResult:
        """Run a workflow and wait for its result (normalized from either response shape)."""
        spec = build.workflow_execute_request(
            self._config,
            workflow_id,
            inputs,
            stream=False,
            environment=environment,
            revision_id=revision_id,
            session_id=session_id,
        )
        return decode.parse_workflow_run(await self._http.send(spec))

    def stream(
        self,
        workflow_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        environment: str | None = None,
        revision_id: str | None = None,
        session_id: str | None = None,
    ) -> AsyncEventStream[WorkflowEvent]:
        """Run a workflow and iterate (``async for``) over its lifecycle events as they happen."""
        spec = build.workflow_execute_request(
            self._config,
            workflow_id,
            inputs,
            stream=True,
            environment=environment,
            revision_id=revision_id,
            session_id=session_id,
        )
        return aiter_decoded(self._http, spec, decode.WorkflowStreamDecoder())

    async def run_with_config(
        self,
        workflow_config: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        *,
        workflow_key: str | None = None,
        environment: str | None = None,
        revision_id: str | None = None,
        session_id: str | None = None,
    ) -> WorkflowRunResult:
        """Run a workflow defined inline by ``workflow_config`` (Scout beta endpoint)."""
        spec = build.workflow_config_request(
            self._config,
            workflow_config,
            inputs,
            workflow_key=workflow_key,
            environment=environment,
            revision_id=revision_id,
            session_id=session_id,
        )
        return decode.parse_run_with_config(await self._http.send(spec))

    def stream_with_config(
        self,
        workflow_config: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        *,
        workflow_key: str | None = None,
        environment: str | None = None,
        revision_id: str | None = None,
        session_id: str | None = None,
    ) -> AsyncEventStream[WorkflowEvent]:
        """Run an inline ``workflow_config`` with ``streaming`` on; iterate over its events."""
        spec = build.workflow_config_request(
            self._config,
            workflow_config,
            inputs,
            workflow_key=workflow_key,
            environment=environment,
            revision_id=revision_id,
            session_id=session_id,
            stream=True,
        )
        return aiter_decoded(self._http, spec, decode.WorkflowStreamDecoder())

    async def trigger_webhook(self, webhook_url: str, body: Any) -> WebhookTriggerResult:
        """POST ``body`` as JSON to a workflow's webhook URL (its token is the credential; the
        API key is not sent)."""
        spec = build.webhook_request(self._config, webhook_url, body)
        return decode.parse_webhook_result(await self._http.send(spec))


class AsyncApps(_Resource):
    """The legacy Apps API (``/v1/apps/execute``)."""

    async def execute(self, app_id: str, inputs: dict[str, Any] | None = None) -> AppExecution:
        """Run an app and return each block's output by block name."""
        spec = build.app_execute_request(self._config, app_id, inputs, stream=False)
        return decode.parse_app_execution(await self._http.send(spec))

    def stream(
        self, app_id: str, inputs: dict[str, Any] | None = None
    ) -> AsyncEventStream[AppStreamEvent]:
        """Run an app and iterate (``async for``) over its ``message``/``start_message``/``error``
        events."""
        spec = build.app_execute_request(self._config, app_id, inputs, stream=True)
        return aiter_decoded(self._http, spec, decode.AppStreamDecoder())
