"""What the client tests share: a harness that drives ``ScoutClient`` or ``AsyncScoutClient``
over ``httpx.MockTransport``, and builders of responses and bodies.

``await h.call("agents.get", "a1")`` calls the sync method directly or awaits the async one, and
``await h.collect("workflows.stream", ...)`` drains the sync or async iterator. ``h.calls``
records every request the transport saw; ``h.delays`` every back-off sleep. The ``make``
fixture (``conftest.py``) builds harnesses for both flavours.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from django_scout.client import AsyncScoutClient, ExponentialBackoff, ScoutClient

API_KEY = "sk-test-0123456789-secret"
BASE_URL = "https://api.scoutos.test"

Handler = Callable[[httpx.Request], httpx.Response]


class Harness:
    """One client (sync or async) wired to a recording mock transport."""

    def __init__(self, mode: str, handler: Handler, **client_kwargs: Any) -> None:
        self.mode = mode
        self.calls: list[httpx.Request] = []
        self.delays: list[float] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.calls.append(request)
            return handler(request)

        transport = httpx.MockTransport(record)
        kwargs: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": BASE_URL,
            "transport": transport,
            "backoff": ExponentialBackoff(jitter=0),
        }
        kwargs.update(client_kwargs)
        self.client: ScoutClient | AsyncScoutClient
        if mode == "sync":
            self.client = ScoutClient(sleep=self.delays.append, **kwargs)
        else:

            async def sleep(delay: float) -> None:
                self.delays.append(delay)

            self.client = AsyncScoutClient(sleep=sleep, **kwargs)

    def _method(self, dotted: str) -> Any:
        target: Any = self.client
        for part in dotted.split("."):
            target = getattr(target, part)
        return target

    async def call(self, dotted: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``client.<dotted>(...)``, awaiting it for the async client."""
        result = self._method(dotted)(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def collect(self, dotted: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call a streaming method and drain the iterator it returns."""
        return await self.collect_into([], dotted, *args, **kwargs)

    async def collect_into(
        self, seen: list[Any], dotted: str, *args: Any, **kwargs: Any
    ) -> list[Any]:
        """Like :meth:`collect`, appending to ``seen`` as items arrive (kept if it raises)."""
        stream = self._method(dotted)(*args, **kwargs)
        if self.mode == "sync":
            for item in stream:
                seen.append(item)
        else:
            async for item in stream:
                seen.append(item)
        return seen

    async def close(self) -> None:
        if isinstance(self.client, ScoutClient):
            self.client.close()
        else:
            await self.client.aclose()

    @property
    def last(self) -> httpx.Request:
        assert self.calls, "no request was sent"
        return self.calls[-1]


def json_response(status: int = 200, body: Any = None, **kwargs: Any) -> httpx.Response:
    """A JSON response."""
    return httpx.Response(status, json=body, **kwargs)


def sse_body(*events: tuple[str | None, str]) -> bytes:
    """Encode ``(event name or None, data)`` pairs as an SSE body."""
    lines: list[str] = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}")
        lines.extend(f"data: {line}" for line in data.split("\n"))
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def sse_response(*events: tuple[str | None, str], status: int = 200) -> httpx.Response:
    """A ``text/event-stream`` response carrying ``events``."""
    return httpx.Response(
        status, headers={"content-type": "text/event-stream"}, content=sse_body(*events)
    )


def sse_json(*objects: Any) -> httpx.Response:
    """An SSE response with one unnamed event per JSON-encoded object."""
    return sse_response(*((None, json.dumps(obj)) for obj in objects))


def body_of(request: httpx.Request) -> Any:
    """The request's JSON body."""
    return json.loads(request.content)


class SyncChunks(httpx.SyncByteStream):
    """A response body that yields ``chunks`` then raises ``error`` (if any)."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error


class AsyncChunks(httpx.AsyncByteStream):
    """Async twin of :class:`SyncChunks`."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error


def failing_stream(
    mode: str, chunks: list[bytes], error: Exception
) -> httpx.SyncByteStream | httpx.AsyncByteStream:
    """A body stream for the given client flavour that fails after ``chunks``."""
    return SyncChunks(chunks, error) if mode == "sync" else AsyncChunks(chunks, error)
