"""A tiny in-process Scout for unit tests: an ``httpx.MockTransport`` with scripted faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from django_scout.client import ScoutClient
from django_scout.services import common

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class MockScout:
    """Answers async starts with a session, serves NDJSON events, and streams interactions
    (SSE: the events, ``interaction_completed``, ``[DONE]``); faults are queued."""

    events: int = 3
    requests: list[httpx.Request] = field(default_factory=list)
    start_faults: list[Any] = field(default_factory=list)
    events_faults: list[Any] = field(default_factory=list)
    stream_faults: list[Any] = field(default_factory=list)
    sessions: int = 0

    def _fault(self, queue: list[Any], request: httpx.Request) -> httpx.Response | None:
        if not queue:
            return None
        fault = queue.pop(0)
        if isinstance(fault, Exception):
            raise fault
        if isinstance(fault, httpx.Response):
            return fault
        return httpx.Response(int(fault), json={"detail": "scripted fault"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/_interact_async"):
            fault = self._fault(self.start_faults, request)
            if fault is not None:
                return fault
            self.sessions += 1
            session_id = f"sess_{self.sessions}"
            return httpx.Response(
                202,
                json={
                    "session_id": session_id,
                    "events_url": f"https://api.scoutos.test/v1/agent-sessions/{session_id}/events",
                },
            )
        if path.endswith("/_interact"):
            fault = self._fault(self.stream_faults, request)
            if fault is not None:
                return fault
            self.sessions += 1
            end = {"name": "interaction_completed", "session_id": f"sess_{self.sessions}"}
            datas = [json.dumps(self._event(i)) for i in range(self.events)]
            body = "".join(f"data: {data}\n\n" for data in [*datas, json.dumps(end), "[DONE]"])
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body.encode()
            )
        if path.endswith("/events"):
            fault = self._fault(self.events_faults, request)
            if fault is not None:
                return fault
            lines = (json.dumps(self._event(i)) + "\n" for i in range(self.events))
            return httpx.Response(
                200,
                headers={"content-type": "application/x-ndjson"},
                content="".join(lines).encode(),
            )
        return httpx.Response(404, json={"detail": f"no route {path}"})

    @staticmethod
    def _event(index: int) -> dict[str, Any]:
        return {"id": f"e{index}", "name": "message", "data": {"text": f"t{index}"}}

    def start_requests(self) -> list[httpx.Request]:
        """The async-start requests received so far."""
        return [r for r in self.requests if r.url.path.endswith("/_interact_async")]

    def install(self) -> Callable[[], ScoutClient]:
        """Make django-scout's services use this mock; returns the previous factory."""
        previous = common.client_factory
        transport = httpx.MockTransport(self.handle)
        common.client_factory = lambda: ScoutClient.from_settings(
            transport=transport, sleep=lambda _s: None
        )
        return previous
