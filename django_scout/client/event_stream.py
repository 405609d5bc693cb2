"""Iterators returned by the streaming methods.

A streaming method checks its arguments and builds its request at once (so ``ValueError`` is
raised at the call), but sends nothing until the first item is asked for. The returned
:class:`EventStream` / :class:`AsyncEventStream` is iterable and a (async) context manager;
leaving the ``with`` block, or :meth:`EventStream.close`, closes the HTTP response early.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterator,
    Sequence,
)
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from ._decoders import END, StreamDecoder, StreamMarker
from ._http import AsyncHTTP, RequestSpec, SyncHTTP
from ._responses import decode_body, is_event_stream
from .streams import aiter_sse, iter_sse

__all__ = [
    "AsyncEventStream",
    "EventStream",
    "aiter_decoded",
    "aopen_stream",
    "iter_decoded",
    "open_stream",
]

T = TypeVar("T")


class EventStream(Generic[T]):
    """An iterator of stream items that can be closed early (``with`` or :meth:`close`).

    :attr:`ended_with_done` is True once the stream ended with Scout's ``[DONE]`` sentinel
    (as opposed to the connection simply closing).
    """

    def __init__(self, items: Generator[T, None, None]) -> None:
        self._items = items
        self.ended_with_done = False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)

    def close(self) -> None:
        """Stop reading and close the HTTP response."""
        self._items.close()

    def __enter__(self) -> EventStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventStream(Generic[T]):
    """An async iterator of stream items that can be closed early (``async with`` or
    :meth:`aclose`); :attr:`ended_with_done` as for :class:`EventStream`."""

    def __init__(self, items: AsyncGenerator[T, None]) -> None:
        self._items = items
        self.ended_with_done = False

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._items.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the HTTP response."""
        await self._items.aclose()

    async def __aenter__(self) -> AsyncEventStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _json_items(decoder: StreamDecoder[T], text: str) -> Sequence[T]:
    body: Any = decode_body(text)
    return () if body is None else decoder.json_items(body)


def open_stream(
    http: SyncHTTP, spec: RequestSpec, read: Callable[[httpx.Response], Iterator[T]]
) -> EventStream[T]:
    """Send ``spec`` on first use; yield what ``read`` makes of the 2xx response."""

    def generate() -> Generator[T, None, None]:
        with http.stream(spec) as response:
            yield from read(response)

    return EventStream(generate())


def aopen_stream(
    http: AsyncHTTP, spec: RequestSpec, read: Callable[[httpx.Response], AsyncIterator[T]]
) -> AsyncEventStream[T]:
    """Send ``spec`` on first use; yield what ``read`` makes of the 2xx response."""

    async def generate() -> AsyncGenerator[T, None]:
        async with http.stream(spec) as response:
            async for item in read(response):
                yield item

    return AsyncEventStream(generate())


def iter_decoded(http: SyncHTTP, spec: RequestSpec, decoder: StreamDecoder[T]) -> EventStream[T]:
    """Stream ``spec``; SSE messages (or a plain JSON answer) go through ``decoder``."""
    streams: list[EventStream[T]] = []

    def read(response: httpx.Response) -> Iterator[T]:
        if not is_event_stream(response):
            response.read()
            yield from _json_items(decoder, response.text)
            return
        for position, message in enumerate(iter_sse(response)):
            item = decoder.message(message, position)
            if isinstance(item, StreamMarker):
                if item is END:
                    streams[0].ended_with_done = True
                    return
                continue
            yield item

    stream = open_stream(http, spec, read)
    streams.append(stream)
    return stream


def aiter_decoded(
    http: AsyncHTTP, spec: RequestSpec, decoder: StreamDecoder[T]
) -> AsyncEventStream[T]:
    """Stream ``spec``; SSE messages (or a plain JSON answer) go through ``decoder``."""
    streams: list[AsyncEventStream[T]] = []

    async def read(response: httpx.Response) -> AsyncIterator[T]:
        if not is_event_stream(response):
            await response.aread()
            for item in _json_items(decoder, response.text):
                yield item
            return
        position = 0
        async for message in aiter_sse(response):
            decoded = decoder.message(message, position)
            position += 1
            if isinstance(decoded, StreamMarker):
                if decoded is END:
                    streams[0].ended_with_done = True
                    return
                continue
            yield decoded

    stream = aopen_stream(http, spec, read)
    streams.append(stream)
    return stream
