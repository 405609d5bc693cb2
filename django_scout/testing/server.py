""":class:`FakeScout`: a real HTTP server on loopback that plays Scout for tests and demos."""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import quote

from .behaviours import AgentBehaviour, AppBehaviour, WorkflowBehaviour
from .callbacks import CallbackDelivery, CallbackDispatcher, callback_payload
from .faults import Fault, SlowRule
from .handlers import ScoutApp, new_webhook_token
from .records import (
    AppExecution,
    CallbackAttempt,
    FakeSession,
    Interaction,
    RecordedRequest,
    WorkflowRunRecord,
)
from .state import ScoutState
from .transport import FakeHTTPServer

__all__ = ["LOOPBACK_HOSTS", "FakeScout"]

LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})
"""The callback hosts a :class:`FakeScout` calls by default."""


class FakeScout:
    """A fake Scout API on a real loopback HTTP server.

    Use it as a context manager (or :meth:`start` / :meth:`stop`)::

        with FakeScout(api_key="k", signing_secret="s") as scout:
            scout.agent("agent-1", AgentBehaviour(outcome="failed"))
            ...  # point the code under test at scout.base_url

    Args:
        api_key: the Bearer key every API endpoint requires (``None``: no check).
        signing_secret: the secret callbacks are signed with.
        host: the interface to listen on (loopback by default).
        port: the port (0 picks a free one).
        latency: seconds every request waits before being answered.
        organization_id: the ``organization_id`` of agents and workflow events.
        callback_max_attempts: attempts per callback delivery before giving up.
        callback_backoff: pause after the first failed attempt; doubles each time.
        callback_max_backoff: the longest pause between two attempts.
        callback_timeout: seconds to wait for a callback receiver's answer (Scout: 10).
        callback_hosts: hosts a ``callback_url`` may point at (loopback by default);
            ``None`` allows any host. Another host gets a 422, and nothing is sent.
        before_accept_timeout: how long ``callback_before_accept`` waits for the receiver.
    """

    def __init__(
        self,
        api_key: str | None = "test-api-key",
        signing_secret: str = "test-signing-secret",  # noqa: S107 - a test double's default
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        organization_id: str = "org_fake_scout",
        callback_max_attempts: int = 8,
        callback_backoff: float = 0.2,
        callback_max_backoff: float = 10.0,
        callback_timeout: float = 10.0,
        callback_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
        before_accept_timeout: float = 5.0,
    ) -> None:
        if not signing_secret:
            raise ValueError("FakeScout needs a non-empty signing_secret")
        self.host = host
        self._requested_port = port
        self._initial_latency = latency
        self._state = ScoutState(
            api_key=api_key,
            organization_id=organization_id,
            callback_hosts=(
                None
                if callback_hosts is None
                else frozenset(host.lower() for host in callback_hosts)
            ),
            before_accept_timeout=before_accept_timeout,
            latency=latency,
        )
        self._dispatcher = CallbackDispatcher(
            secret=signing_secret,
            record=self._state.record_callback,
            max_attempts=callback_max_attempts,
            backoff=callback_backoff,
            max_backoff=callback_max_backoff,
            timeout=callback_timeout,
        )
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeScout:
        """Bind the socket and serve in a background daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the fake Scout server is already running")
        self._stopping = threading.Event()
        app = ScoutApp(self._state, self._dispatcher, self._stopping.wait)
        server = FakeHTTPServer(self.host, self._requested_port, app, self._stopping)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-scout-{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: cancel pending callbacks, end open connections and streams, close the
        listening socket and join every thread (each waits at most ``timeout`` seconds)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        self._dispatcher.cancel_all()
        server.shutdown()
        server.server_close()
        server.close_all(timeout)
        if thread is not None:
            thread.join(timeout)
        self._dispatcher.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeScout:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._require_server().server_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the API base URL to configure in the code under test.

        URLs the server hands out (``events_url``) use the origin of the request's ``Host``
        header, so a client configured with ``http://localhost:<port>`` gets ``localhost`` URLs.
        """
        return self._require_server().base_url

    def url(self, path: str) -> str:
        """An absolute URL on this server: ``base_url + path``."""
        return self.base_url + (path if path.startswith("/") else f"/{path}")

    @property
    def api_key(self) -> str | None:
        """The Bearer key the server requires."""
        return self._state.api_key

    @property
    def signing_secret(self) -> str:
        """The secret callbacks are signed with."""
        return self._dispatcher.secret

    def scout_settings(self, **overrides: Any) -> dict[str, Any]:
        """``settings.SCOUT`` entries that point django-scout at this server.

        ``API_KEY``, ``API_BASE_URL``, ``SIGNING_SECRET`` and ``ALLOW_INSECURE_CALLBACKS=True``;
        ``overrides`` are merged in (e.g. ``CALLBACK_BASE_URL=live_server.url``). The
        ``events_url`` the server hands out has the host of ``API_BASE_URL``, so the default
        ``TRUSTED_EVENTS_HOSTS`` accepts it. No Django import happens here.
        """
        settings: dict[str, Any] = {
            "API_KEY": self.api_key,
            "API_BASE_URL": self.base_url,
            "SIGNING_SECRET": self.signing_secret,
            "ALLOW_INSECURE_CALLBACKS": True,
        }
        settings.update(overrides)
        return settings

    def _require_server(self) -> FakeHTTPServer:
        if self._server is None:
            raise RuntimeError("the fake Scout server is not running; call start() first")
        return self._server

    # ------------------------------------------------------------------ behaviours

    def agent(
        self, agent_id: str, behaviour: AgentBehaviour | None = None, /, **changes: Any
    ) -> AgentBehaviour:
        """Register how ``agent_id`` behaves and return that behaviour.

        ``changes`` are applied on top of ``behaviour`` (or the defaults), e.g.
        ``scout.agent("a1", outcome="failed", events=100)``. Registered agents are listed by
        ``GET /agents`` and answered by ``GET /agents/{id}/active``.
        """
        resolved = dataclasses.replace(behaviour or AgentBehaviour(), **changes)
        with self._state.lock:
            self._state.agents[agent_id] = resolved
            self._state.agent_registered_at.setdefault(agent_id, datetime.now(timezone.utc))
        return resolved

    def workflow(
        self, workflow_id: str, behaviour: WorkflowBehaviour | None = None, /, **changes: Any
    ) -> WorkflowBehaviour:
        """Register how ``workflow_id`` runs and return that behaviour (``changes`` as in
        :meth:`agent`). With ``POST /v2/workflows/execute`` the ``workflow_key`` selects it."""
        resolved = dataclasses.replace(behaviour or WorkflowBehaviour(), **changes)
        with self._state.lock:
            self._state.workflows[workflow_id] = resolved
        return resolved

    def app(
        self, app_id: str, behaviour: AppBehaviour | None = None, /, **changes: Any
    ) -> AppBehaviour:
        """Register a legacy app and return its behaviour (``changes`` as in :meth:`agent`)."""
        resolved = dataclasses.replace(behaviour or AppBehaviour(), **changes)
        with self._state.lock:
            self._state.apps[app_id] = resolved
        return resolved

    @property
    def default_agent(self) -> AgentBehaviour | None:
        """The behaviour of agents that were not registered (``None``: they 404)."""
        return self._state.default_agent

    @default_agent.setter
    def default_agent(self, behaviour: AgentBehaviour | None) -> None:
        with self._state.lock:
            self._state.default_agent = behaviour

    @property
    def default_workflow(self) -> WorkflowBehaviour | None:
        """The behaviour of workflows that were not registered (``None``: they 404)."""
        return self._state.default_workflow

    @default_workflow.setter
    def default_workflow(self, behaviour: WorkflowBehaviour | None) -> None:
        with self._state.lock:
            self._state.default_workflow = behaviour

    @property
    def default_app(self) -> AppBehaviour | None:
        """The behaviour of apps that were not registered (``None``, the default: they 404)."""
        return self._state.default_app

    @default_app.setter
    def default_app(self, behaviour: AppBehaviour | None) -> None:
        with self._state.lock:
            self._state.default_app = behaviour

    def webhook_url(self, workflow_id: str, token: str | None = None) -> str:
        """Register a webhook trigger for ``workflow_id`` and return its URL.

        The token is random unless given; asking again returns the same URL. Posting to the
        URL needs no Bearer key; a wrong token gets 401, a workflow without a trigger 404.
        """
        with self._state.lock:
            if token is not None:
                self._state.webhook_tokens[workflow_id] = token
            current = self._state.webhook_tokens.setdefault(workflow_id, new_webhook_token())
        return self.url(
            f"/v1/workflows/{quote(workflow_id, safe='')}/webhook/{quote(current, safe='')}"
        )

    # ------------------------------------------------------------------ faults and latency

    @property
    def latency(self) -> float:
        """Seconds every request waits before it is answered."""
        return self._state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._state.lock:
            self._state.latency = seconds

    def fail_next(
        self,
        method: str = "*",
        path: str = "*",
        status: int = 503,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        drop_connection: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests matching ``method`` and the ``path`` glob fail.

        They are answered with ``status`` and ``{"detail": ...}`` (or ``body``), plus
        ``Retry-After`` when ``retry_after`` is given; with ``drop_connection`` the socket is
        closed without an answer instead. Faults apply before authentication and routing, in
        the order they were added. Returns the :class:`Fault` (see ``hits``/``remaining``).
        """
        fault = Fault(
            method=method,
            path=path,
            status=status,
            times=times,
            retry_after=retry_after,
            body=body,
            drop_connection=drop_connection,
        )
        with self._state.lock:
            self._state.faults.append(fault)
        return fault

    def slow(self, path: str, seconds: float, method: str = "*") -> SlowRule:
        """Make requests matching the ``path`` glob (and ``method``) wait ``seconds`` longer."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        rule = SlowRule(method=method, path=path, seconds=seconds)
        with self._state.lock:
            self._state.slow_rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every pending fault and slow rule, and set the latency back to its initial
        value."""
        with self._state.lock:
            self._state.faults.clear()
            self._state.slow_rules.clear()
            self._state.latency = self._initial_latency

    # ------------------------------------------------------------------ recordings

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    def requests_matching(self, method: str = "*", path: str = "*") -> list[RecordedRequest]:
        """The recorded requests whose method and path (a glob) match."""
        return [
            request
            for request in self.requests
            if (method == "*" or request.method == method.upper())
            and fnmatch.fnmatchcase(request.path, path)
        ]

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every finished callback attempt so far (retries and duplicates included)."""
        with self._state.lock:
            return list(self._state.callbacks)

    @property
    def sessions(self) -> dict[str, FakeSession]:
        """Agent sessions by ``session_id``."""
        with self._state.lock:
            return dict(self._state.sessions)

    @property
    def interactions(self) -> list[Interaction]:
        """Every agent interaction started so far."""
        with self._state.lock:
            return list(self._state.interactions)

    @property
    def workflow_runs(self) -> list[WorkflowRunRecord]:
        """Every workflow run started so far (webhook triggers included)."""
        with self._state.lock:
            return list(self._state.workflow_runs)

    @property
    def app_executions(self) -> list[AppExecution]:
        """Every legacy app execution so far."""
        with self._state.lock:
            return list(self._state.app_executions)

    def wait_for_callbacks(
        self, count: int = 1, timeout: float = 10.0, *, ok_only: bool = False
    ) -> list[CallbackAttempt]:
        """Wait until ``count`` callback attempts have finished (only 2xx-answered ones with
        ``ok_only``) and return all attempts; raises :class:`TimeoutError` otherwise."""

        def matching() -> list[CallbackAttempt]:
            return [a for a in self._state.callbacks if a.ok or not ok_only]

        if not self._state.wait_until(lambda: len(matching()) >= count, timeout):
            seen = len(self.callbacks)
            raise TimeoutError(
                f"expected {count} {'successful ' if ok_only else ''}callback attempt(s) "
                f"within {timeout}s; {seen} attempt(s) finished"
            )
        return self.callbacks

    def wait_for_requests(
        self, count: int = 1, method: str = "*", path: str = "*", timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` answered requests match (see :meth:`requests_matching`) and
        return them; raises :class:`TimeoutError` otherwise."""

        def done() -> bool:
            answered = [r for r in self.requests_matching(method, path) if r.status is not None]
            return len(answered) >= count

        if not self._state.wait_until(done, timeout):
            raise TimeoutError(
                f"expected {count} answered {method} {path} request(s) within {timeout}s; "
                f"got {len(self.requests_matching(method, path))}"
            )
        return self.requests_matching(method, path)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no callback delivery is pending; ``False`` on timeout."""
        return self._dispatcher.join(timeout)

    # ------------------------------------------------------------------ callbacks on demand

    def session(self, session_id: str) -> FakeSession:
        """The agent session ``session_id`` (``KeyError`` if unknown)."""
        with self._state.lock:
            try:
                return self._state.sessions[session_id]
            except KeyError:
                raise KeyError(f"the fake Scout has no session {session_id!r}") from None

    def send_callback(
        self,
        session_id: str,
        status: str | None = None,
        *,
        error: Mapping[str, str] | None = None,
        callback_event_id: str | None = None,
        url: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        duplicates: int = 0,
        concurrent: bool = False,
        delay: float = 0.0,
        wait: bool = True,
        timeout: float = 10.0,
    ) -> CallbackDelivery:
        """Deliver a callback for an existing session now (with retries), e.g. a re-delivery.

        Defaults come from the session: its ``callback_url``, its last ``callback_event_id``
        (so the receiver sees a duplicate; pass a new id for a distinct callback) and its
        agent's outcome and error. ``secret`` and ``timestamp`` override the signature (to
        test rejection of a wrong or stale one). With ``wait`` it returns once every delivery
        has finished (or ``timeout`` passed).
        """
        session = self.session(session_id)
        target = url or session.callback_url
        if target is None:
            raise ValueError(f"session {session_id!r} has no callback_url; pass url=...")
        resolved_status = status or session.outcome
        payload = callback_payload(
            session_id,
            session.events_url,
            resolved_status,
            error=error if error is not None else session.error,
            callback_event_id=callback_event_id or session.callback_event_id,
        )
        delivery = self._dispatcher.dispatch(
            payload,
            target,
            delay=delay,
            duplicates=duplicates,
            concurrent=concurrent,
            secret=secret,
            timestamp=timestamp,
        )
        if wait:
            delivery.wait(timeout)
        return delivery

    # ------------------------------------------------------------------ reset

    def reset(self) -> None:
        """Back to a fresh server (it keeps running, on the same port and keys): cancel
        pending callbacks, forget recordings, registrations, webhook tokens and faults, and
        restore the default behaviours and the initial latency."""
        self._dispatcher.cancel_all()
        self._dispatcher.join(2.0)
        with self._state.lock:
            self.clear_faults()
            self._state.agents.clear()
            self._state.agent_registered_at.clear()
            self._state.workflows.clear()
            self._state.apps.clear()
            self._state.webhook_tokens.clear()
            self._state.default_agent = AgentBehaviour()
            self._state.default_workflow = WorkflowBehaviour()
            self._state.default_app = None
            self._state.clear_recordings()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"<FakeScout {where}>"
