"""What the fake Scout saw and did: recorded requests, callback attempts, started work.

Every record is a plain dataclass. The server appends them as things happen; the lists that
:class:`~django_scout.testing.FakeScout` hands out are snapshots, safe to iterate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .behaviours import AgentBehaviour, EventsFormat

__all__ = [
    "AppExecution",
    "CallbackAttempt",
    "FakeSession",
    "Interaction",
    "RecordedRequest",
    "WorkflowRunRecord",
]


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class RecordedRequest:
    """One HTTP request the fake server received.

    ``headers`` has lower-case names. ``status`` is the status it was answered with (``None``
    while it is being handled, or when the connection was dropped); ``fault`` describes an
    injected fault (``"status 503"``, ``"dropped"``) when one was applied.
    """

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    time: float
    status: int | None = None
    fault: str | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
        return _parse_json(self.body)

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class CallbackAttempt:
    """One finished attempt to POST a callback.

    ``delivery`` is 0 for the original delivery and 1, 2, ... for the duplicates;
    ``attempt`` counts from 1 within one delivery (retries increase it). ``status`` is the
    receiver's HTTP status, or ``None`` with ``error`` set when the attempt failed on the
    network (refused, reset, timed out).
    """

    callback_event_id: str
    session_id: str
    url: str
    delivery: int
    attempt: int
    headers: Mapping[str, str]
    body: bytes
    time: float
    duration: float
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def payload(self) -> dict[str, Any]:
        """The callback body parsed as JSON."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Interaction:
    """One agent interaction a client started (any of the interact endpoints).

    ``endpoint`` is ``"async"`` (``_interact_async`` or the guide's ``/v1/agents/.../interact``),
    ``"sync"`` or ``"stream"``. ``callback_event_id`` is set for async interactions.
    """

    agent_id: str
    session_id: str
    endpoint: str
    path: str
    messages: list[Any]
    metadata: dict[str, Any] | None
    variables: dict[str, Any] | None
    tags: list[str] | None
    callback_url: str | None
    events_url: str
    callback_event_id: str | None
    behaviour: AgentBehaviour
    time: float


@dataclass
class FakeSession:
    """An agent session: what its ``events_url`` serves.

    Events are generated from ``(session_id, index)`` and ``created_at``, so every fetch yields
    the same events. A later interaction in the same session replaces the event settings.
    """

    session_id: str
    agent_id: str
    created_at: datetime
    events_url: str
    events: int
    events_format: EventsFormat
    event_interval: float
    reply: str
    outcome: str
    error: dict[str, str] | None
    callback_url: str | None = None
    callback_event_id: str | None = None
    interactions: list[Interaction] = field(default_factory=list)


@dataclass
class WorkflowRunRecord:
    """One workflow run a client started.

    ``source`` is ``"execute"`` (``/v2/workflows/{id}/execute``), ``"execute_with_config"``
    (``/v2/workflows/execute``) or ``"webhook"`` (a webhook trigger, whose ``inputs`` are
    ``{"webhook_body": <the posted body>}``).
    """

    workflow_id: str
    run_id: str
    session_id: str
    source: str
    environment: str | None
    revision_id: str | None
    inputs: dict[str, Any]
    streaming: bool
    workflow_config: dict[str, Any] | None
    time: float


@dataclass
class AppExecution:
    """One legacy app execution a client started."""

    app_id: str
    execution_id: str
    inputs: dict[str, Any]
    streaming: bool
    time: float
