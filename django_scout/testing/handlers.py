"""Scout's endpoints, as the fake server answers them.

:class:`ScoutApp` is the application callable the transport calls for every request: it records
the request, applies latency and injected faults, routes it, checks the Bearer key, validates the
body like Scout (422 ``{"detail": [...]}``), and answers in the shapes of Scout's docs and SDK.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

from .behaviours import EVENTS_FORMATS, AgentBehaviour, WorkflowBehaviour
from .callbacks import CallbackDispatcher, callback_payload
from .generators import (
    WorkflowRunContext,
    agent_events,
    agent_stream_sse,
    app_plain_body,
    app_sse,
    encode_events,
    envelope_environment,
    iso_z,
    workflow_plain_body,
    workflow_sse,
    workflow_started_event,
)
from .records import AppExecution, FakeSession, Interaction, RecordedRequest, WorkflowRunRecord
from .state import ScoutState
from .transport import Request, Response
from .validation import (
    ValidationErrors,
    parse_json_object,
    validate_agent_body,
    validate_environment,
    validate_optional_bool,
    validate_optional_object,
    validate_optional_string,
)

__all__ = ["ScoutApp", "new_webhook_token"]

Handler = Callable[..., Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    authenticated: bool = True


def _route(method: str, template: str, name: str, *, authenticated: bool = True) -> _Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return _Route(method, re.compile(regex), name, authenticated)


_ROUTES = (
    _route("POST", "/world/{agent_id}/_interact_async", "agent_async"),
    _route("POST", "/world/{agent_id}/{session_id}/_interact_async", "agent_async"),
    _route("POST", "/world/{agent_id}/_interact", "agent_stream"),
    _route("POST", "/world/{agent_id}/{session_id}/_interact", "agent_stream"),
    _route("POST", "/world/{agent_id}/_interact_sync", "agent_sync"),
    _route("POST", "/world/{agent_id}/{session_id}/_interact_sync", "agent_sync"),
    _route("POST", "/v1/agents/{agent_id}/interact", "agent_guide_async"),
    _route("GET", "/world/{agent_id}/{session_id}/events", "events"),
    _route("GET", "/v1/agent-sessions/{session_id}/events", "events"),
    _route("GET", "/agents", "list_agents"),
    _route("GET", "/agents/{agent_id}/active", "active_agent"),
    _route("POST", "/v2/workflows/execute", "execute_with_config"),
    _route("POST", "/v2/workflows/{workflow_id}/execute", "execute_workflow"),
    _route("POST", "/v1/workflows/{workflow_id}/webhook/{token}", "webhook", authenticated=False),
    _route("POST", "/v1/apps/execute", "execute_app"),
    _route("POST", "/v1/flow/execute", "execute_app"),
)


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"detail": detail}, headers)


def _hex_id(prefix: str, length: int = 16) -> str:
    return f"{prefix}{uuid.uuid4().hex[:length]}"


class ScoutApp:
    """The fake Scout application: ``app(request) -> response``.

    ``wait(seconds)`` sleeps and returns ``True`` when the server is stopping.
    """

    def __init__(
        self,
        state: ScoutState,
        dispatcher: CallbackDispatcher,
        wait: Callable[[float], bool],
    ) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.wait = wait

    # ------------------------------------------------------------------ entry point

    def __call__(self, request: Request) -> Response:
        """Record, delay, inject faults, route, authenticate and answer one request."""
        record = self.state.add(
            self.state.requests,
            RecordedRequest(
                method=request.method,
                path=request.path,
                query={key: list(values) for key, values in request.query.items()},
                headers=dict(request.headers),
                body=request.body,
                time=time.time(),
            ),
        )
        response = self._answer(request, record)
        with self.state.lock:
            record.status = None if response.drop else response.status
        self.state.notify()
        return response

    def _answer(self, request: Request, record: RecordedRequest) -> Response:
        delay = self.state.delay_for(request.method, request.path)
        if delay and self.wait(delay):
            return Response.dropped()
        fault = self.state.claim_fault(request.method, request.path)
        if fault is not None:
            with self.state.lock:
                record.fault = fault.describe()
            if fault.drop_connection:
                return Response.dropped()
            return Response.json(fault.status, fault.response_body(), fault.response_headers())
        matched, path_matched = self._match(request)
        if matched is None:
            if path_matched:
                return _detail(405, "Method Not Allowed")
            return _detail(404, "Not Found")
        route, params = matched
        if route.authenticated:
            problem = self._auth_problem(request)
            if problem is not None:
                return _detail(401, problem, {"WWW-Authenticate": "Bearer"})
        handler: Handler = getattr(self, f"_{route.name}")
        return handler(request, **params)

    @staticmethod
    def _match(request: Request) -> tuple[tuple[_Route, dict[str, str]] | None, bool]:
        path_matched = False
        for route in _ROUTES:
            found = route.pattern.fullmatch(request.path)
            if found is None:
                continue
            if route.method != request.method:
                path_matched = True
                continue
            return (route, {key: unquote(value) for key, value in found.groupdict().items()}), True
        return None, path_matched

    def _auth_problem(self, request: Request) -> str | None:
        expected = self.state.api_key
        if expected is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            return "Not authenticated"
        if not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return "Invalid API key"
        return None

    # ------------------------------------------------------------------ agents

    def _agent_async(
        self, request: Request, agent_id: str, session_id: str | None = None
    ) -> Response:
        return self._interact(request, agent_id, session_id, endpoint="async", guide=False)

    def _agent_guide_async(self, request: Request, agent_id: str) -> Response:
        return self._interact(request, agent_id, None, endpoint="async", guide=True)

    def _agent_stream(
        self, request: Request, agent_id: str, session_id: str | None = None
    ) -> Response:
        return self._interact(request, agent_id, session_id, endpoint="stream", guide=False)

    def _agent_sync(
        self, request: Request, agent_id: str, session_id: str | None = None
    ) -> Response:
        return self._interact(request, agent_id, session_id, endpoint="sync", guide=False)

    def _interact(
        self,
        request: Request,
        agent_id: str,
        session_id: str | None,
        *,
        endpoint: str,
        guide: bool,
    ) -> Response:
        behaviour = self.state.agent_behaviour(agent_id)
        if behaviour is None:
            return _detail(404, "Agent not found")
        errors = ValidationErrors()
        body = parse_json_object(request.body, errors)
        if body is not None:
            validate_agent_body(
                body,
                errors,
                callback_required=endpoint == "async",
                allow_message=guide,
                allowed_callback_hosts=self.state.callback_hosts,
            )
        if errors or body is None:
            return Response.json(422, errors.body())
        callback_url = body.get("callback_url")
        if callback_url is not None:
            endpoint = "async"  # Scout: a callback_url makes any interact endpoint async.
        session_id = session_id or request.query_value("session_id")
        if not session_id:
            session_id = _hex_id("sess_", 24) if guide else str(uuid.uuid4())
        if guide:
            events_url = f"{request.base_url}/v1/agent-sessions/{quote(session_id, safe='')}/events"
        else:
            events_url = (
                f"{request.base_url}/world/{quote(agent_id, safe='')}/"
                f"{quote(session_id, safe='')}/events"
            )
        messages = body["messages"] if "messages" in body else [{"content": body["message"]}]
        interaction = Interaction(
            agent_id=agent_id,
            session_id=session_id,
            endpoint=endpoint,
            path=request.path,
            messages=list(messages),
            metadata=body.get("metadata"),
            variables=body.get("variables"),
            tags=body.get("tags"),
            callback_url=callback_url,
            events_url=events_url,
            callback_event_id=str(uuid.uuid4()) if endpoint == "async" else None,
            behaviour=behaviour,
            time=time.time(),
        )
        session = self._store_session(interaction, behaviour)
        if endpoint == "async":
            return self._accept(interaction, behaviour)
        if endpoint == "sync":
            return Response.json(
                200,
                {
                    "session_id": session_id,
                    "messages": [{"role": "assistant", "content": behaviour.reply}],
                },
            )
        return Response.stream(
            EVENTS_FORMATS["sse"],
            agent_stream_sse(session_id, session.created_at, behaviour, wait=self.wait),
        )

    def _store_session(self, interaction: Interaction, behaviour: AgentBehaviour) -> FakeSession:
        with self.state.changed:
            session = self.state.sessions.get(interaction.session_id)
            if session is None:
                session = FakeSession(
                    session_id=interaction.session_id,
                    agent_id=interaction.agent_id,
                    created_at=datetime.now(timezone.utc),
                    events_url=interaction.events_url,
                    events=behaviour.events,
                    events_format=behaviour.events_format,
                    event_interval=behaviour.event_interval,
                    reply=behaviour.reply,
                    outcome=behaviour.outcome,
                    error=behaviour.callback_error(),
                )
                self.state.sessions[interaction.session_id] = session
            else:
                session.events = behaviour.events
                session.events_format = behaviour.events_format
                session.event_interval = behaviour.event_interval
                session.reply = behaviour.reply
                session.outcome = behaviour.outcome
                session.error = behaviour.callback_error()
            if interaction.callback_url is not None:
                session.callback_url = interaction.callback_url
                session.callback_event_id = interaction.callback_event_id
            session.interactions.append(interaction)
            self.state.interactions.append(interaction)
            self.state.changed.notify_all()
            return session

    def _accept(self, interaction: Interaction, behaviour: AgentBehaviour) -> Response:
        assert interaction.callback_url is not None
        assert interaction.callback_event_id is not None
        if behaviour.auto_callback:
            completed_at = datetime.now(timezone.utc) + timedelta(seconds=behaviour.callback_delay)
            payload = callback_payload(
                interaction.session_id,
                interaction.events_url,
                behaviour.outcome,
                error=behaviour.callback_error(),
                callback_event_id=interaction.callback_event_id,
                completed_at=iso_z(completed_at),
            )
            delivery = self.dispatcher.dispatch(
                payload,
                interaction.callback_url,
                delay=behaviour.callback_delay,
                duplicates=behaviour.duplicates,
                concurrent=behaviour.concurrent_duplicates,
            )
            if behaviour.callback_before_accept:
                delivery.wait_first_answer(self.state.before_accept_timeout)
        return Response.json(
            behaviour.accept_status,
            {"session_id": interaction.session_id, "events_url": interaction.events_url},
        )

    def _events(self, request: Request, session_id: str, agent_id: str | None = None) -> Response:
        with self.state.lock:
            session = self.state.sessions.get(session_id)
        if session is None or (agent_id is not None and session.agent_id != agent_id):
            return _detail(404, "Session not found")
        events = agent_events(session_id, session.events, session.created_at, session.reply)
        body = encode_events(
            events, session.events_format, interval=session.event_interval, wait=self.wait
        )
        return Response.stream(EVENTS_FORMATS[session.events_format], body)

    def _list_agents(self, request: Request) -> Response:
        with self.state.lock:
            agents = [
                self._agent_document(agent_id, behaviour)
                for agent_id, behaviour in self.state.agents.items()
            ]
        return Response.json(200, agents)

    def _active_agent(self, request: Request, agent_id: str) -> Response:
        with self.state.lock:
            behaviour = self.state.agents.get(agent_id)
            if behaviour is None:
                return _detail(404, "Agent not found")
            agent = self._agent_document(agent_id, behaviour)
        return Response.json(200, {"agent": agent, "revision": self._revision_document(agent)})

    def _agent_document(self, agent_id: str, behaviour: AgentBehaviour) -> dict[str, Any]:
        organization = self.state.organization_id
        created = iso_z(self.state.agent_registered_at.get(agent_id, datetime.now(timezone.utc)))
        actor = {"type": "user", "id": "user_fake_scout"}
        return {
            "id": agent_id,
            "doc_type": "agent",
            "created_by": actor,
            "updated_by": actor,
            "created_at": created,
            "updated_at": created,
            "is_seed": False,
            "name": behaviour.name or agent_id,
            "description": behaviour.description,
            "parent": organization,
            "active_revision": f"rev_{agent_id}",
            "visibility": {"type": "organization", "id": organization},
        }

    def _revision_document(self, agent: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": agent["active_revision"],
            "doc_type": "agent_revision",
            "created_by": agent["created_by"],
            "updated_by": agent["updated_by"],
            "created_at": agent["created_at"],
            "updated_at": agent["updated_at"],
            "is_seed": False,
            "parent": agent["id"],
            "organization_id": self.state.organization_id,
            "model_provider": "anthropic",
            "model": "_dynamic",
            "system": "You are an agent served by the fake Scout server.",
            "temperature": 0.5,
            "response_style": "balanced",
        }

    # ------------------------------------------------------------------ workflows

    def _run_context(
        self,
        request: Request,
        workflow_id: str,
        inputs: dict[str, Any],
        workflow_config: dict[str, Any] | None,
        *,
        source: str,
        streaming: bool,
        environment: str | None,
    ) -> WorkflowRunContext:
        ctx = WorkflowRunContext(
            organization_id=self.state.organization_id,
            workflow_id=workflow_id,
            run_id=_hex_id("run_"),
            session_id=request.query_value("session_id") or _hex_id("sess_"),
            environment=envelope_environment(environment),
            inputs=inputs,
            workflow_config=workflow_config,
            started_at=datetime.now(timezone.utc),
        )
        self.state.add(
            self.state.workflow_runs,
            WorkflowRunRecord(
                workflow_id=workflow_id,
                run_id=ctx.run_id,
                session_id=ctx.session_id,
                source=source,
                environment=environment,
                revision_id=request.query_value("revision_id"),
                inputs=inputs,
                streaming=streaming,
                workflow_config=workflow_config,
                time=time.time(),
            ),
        )
        return ctx

    def _execute_workflow(self, request: Request, workflow_id: str) -> Response:
        behaviour = self.state.workflow_behaviour(workflow_id)
        if behaviour is None:
            return _detail(404, "Workflow not found")
        errors = ValidationErrors()
        environment = request.query_value("environment")
        validate_environment(environment, errors)
        body = parse_json_object(request.body, errors, allow_empty=True)
        if body is not None:
            validate_optional_object(body, "inputs", errors)
            validate_optional_bool(body, "streaming", errors)
        if errors or body is None:
            return Response.json(422, errors.body())
        streaming = bool(body.get("streaming"))
        ctx = self._run_context(
            request,
            workflow_id,
            dict(body.get("inputs") or {}),
            None,
            source="execute",
            streaming=streaming,
            environment=environment,
        )
        if streaming:
            return Response.stream(
                "text/event-stream", workflow_sse(ctx, behaviour, wait=self.wait)
            )
        return Response.json(200, workflow_plain_body(ctx, behaviour))

    def _execute_with_config(self, request: Request) -> Response:
        errors = ValidationErrors()
        environment = request.query_value("environment")
        validate_environment(environment, errors)
        body = parse_json_object(request.body, errors)
        if body is not None:
            if "workflow_config" not in body:
                errors.missing(["body", "workflow_config"])
            elif not isinstance(body["workflow_config"], dict):
                errors.add(
                    ["body", "workflow_config"], "value is not a valid dict", "type_error.dict"
                )
            validate_optional_string(body, "workflow_key", errors)
            validate_optional_object(body, "inputs", errors)
            validate_optional_bool(body, "streaming", errors)
        if errors or body is None:
            return Response.json(422, errors.body())
        workflow_key = body.get("workflow_key")
        with self.state.lock:
            # The config comes inline, so a run never 404s: registered, default, or stock.
            behaviour = (
                self.state.workflows.get(workflow_key or "")
                or self.state.default_workflow
                or WorkflowBehaviour()
            )
        streaming = bool(body.get("streaming"))
        ctx = self._run_context(
            request,
            workflow_key or _hex_id("wf_"),
            dict(body.get("inputs") or {}),
            dict(body["workflow_config"]),
            source="execute_with_config",
            streaming=streaming,
            environment=environment,
        )
        if streaming:
            return Response.stream(
                "text/event-stream", workflow_sse(ctx, behaviour, wait=self.wait)
            )
        if behaviour.config_response == "event":
            return Response.json(200, workflow_started_event(ctx))
        return Response.json(200, workflow_plain_body(ctx, behaviour))

    def _webhook(self, request: Request, workflow_id: str, token: str) -> Response:
        with self.state.lock:
            expected = self.state.webhook_tokens.get(workflow_id)
        if expected is None:
            return _detail(404, "Webhook not found")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return _detail(401, "Invalid webhook token")
        webhook_body: Any = None
        if request.body.strip():
            try:
                webhook_body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                webhook_body = request.body.decode("utf-8", "replace")
        ctx = self._run_context(
            request,
            workflow_id,
            {"webhook_body": webhook_body},
            None,
            source="webhook",
            streaming=False,
            environment="production",
        )
        return Response.json(202, {"workflow_run_id": ctx.run_id, "status": "queued"})

    # ------------------------------------------------------------------ apps

    def _execute_app(self, request: Request) -> Response:
        errors = ValidationErrors()
        body = parse_json_object(request.body, errors)
        if body is not None:
            if "id" not in body:
                errors.missing(["body", "id"])
            elif not isinstance(body["id"], str):
                errors.add(["body", "id"], "str type expected", "type_error.str")
            if "inputs" not in body:
                errors.missing(["body", "inputs"])
            else:
                validate_optional_object(body, "inputs", errors)
            validate_optional_bool(body, "streaming", errors)
        if errors or body is None:
            return Response.json(422, errors.body())
        behaviour = self.state.app_behaviour(body["id"])
        if behaviour is None:
            return _detail(404, "App not found")
        streaming = bool(body.get("streaming"))
        execution = self.state.add(
            self.state.app_executions,
            AppExecution(
                app_id=body["id"],
                execution_id=str(uuid.uuid4()),
                inputs=dict(body.get("inputs") or {}),
                streaming=streaming,
                time=time.time(),
            ),
        )
        if streaming:
            return Response.stream("text/event-stream", app_sse(behaviour, wait=self.wait))
        if behaviour.error is not None:
            return _detail(behaviour.error_status, behaviour.error)
        return Response.json(200, app_plain_body(execution.execution_id, behaviour))


def new_webhook_token() -> str:
    """A random URL-safe webhook token."""
    return secrets.token_urlsafe(18)
