"""Sending requests: one connection pool per client, auth only where trusted, retries, errors.

:class:`RequestSpec` describes a call (built by ``_requests``, shared by sync and async);
:class:`SyncHTTP` and :class:`AsyncHTTP` carry it out. They differ only in I/O: the retry loop
asks the same :class:`~._retry.RetryPolicy`, errors come from the same ``_responses`` functions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import __version__
from ._config import ClientConfig
from ._responses import MAX_ERROR_BODY_BYTES, error_from_response, error_from_transport
from ._retry import RetryPolicy
from .errors import ScoutError
from .redaction import install_httpx_log_redaction

__all__ = ["USER_AGENT", "AsyncHTTP", "RequestSpec", "SyncHTTP"]

logger = logging.getLogger("django_scout.client")

USER_AGENT = f"django-scout/{__version__}"


@dataclass(frozen=True)
class RequestSpec:
    """One call to make: where, what, and whether the API key goes with it.

    ``shown_url`` is the URL as logs and errors may show it (a webhook token masked), and
    ``secrets`` what errors about this request must never show besides the API key (the
    webhook token). ``json_body`` is sent as JSON unless it is ``None``; ``content`` is an
    already encoded JSON body (used when ``null`` itself must be sent).
    """

    method: str
    url: httpx.URL
    shown_url: str
    params: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: bytes | None = None
    authenticated: bool = True
    stream: bool = False
    accept: str = "application/json"
    secrets: tuple[str, ...] = ()

    def headers(self, api_key: str) -> dict[str, str]:
        """Headers of this request; ``Authorization`` only when ``authenticated``."""
        headers = {"Accept": self.accept}
        if self.content is not None:
            headers["Content-Type"] = "application/json"
        if self.authenticated:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers


def _client_options(config: ClientConfig) -> dict[str, Any]:
    install_httpx_log_redaction()
    return {
        "timeout": config.request_timeout,
        "follow_redirects": False,
        "headers": {"User-Agent": USER_AGENT},
    }


class _Sender:
    """What the sync and async senders share: building requests, deciding retries, logging."""

    def __init__(self, config: ClientConfig, policy: RetryPolicy) -> None:
        self.config = config
        self.policy = policy

    def _build(self, client: httpx.Client | httpx.AsyncClient, spec: RequestSpec) -> httpx.Request:
        timeout = self.config.stream_timeout if spec.stream else self.config.request_timeout
        return client.build_request(
            spec.method,
            spec.url,
            params=dict(spec.params) or None,
            json=spec.json_body,
            content=spec.content,
            headers=spec.headers(self.config.api_key),
            timeout=timeout,
        )

    def _error_context(self, spec: RequestSpec) -> dict[str, Any]:
        """How errors about ``spec`` are built: its method, its shown URL, what to mask."""
        secrets = (self.config.api_key, *spec.secrets)
        return {"method": spec.method, "shown_url": spec.shown_url, "secrets": secrets}

    def _error_for(self, spec: RequestSpec, response: httpx.Response, body: str) -> ScoutError:
        return error_from_response(response, body_text=body, **self._error_context(spec))

    def _transport_error(
        self, spec: RequestSpec, exc: httpx.HTTPError, *, after_response: bool = False
    ) -> ScoutError:
        context = self._error_context(spec)
        return error_from_transport(exc, after_response=after_response, **context)

    def _retry_delay(self, spec: RequestSpec, error: ScoutError, retries_done: int) -> float | None:
        delay = self.policy.delay_before_retry(spec.method, error, retries_done)
        if delay is not None:
            logger.warning(
                "Retrying Scout call %s %s in %.2f s (retry %d of %d) after: %s",
                spec.method,
                spec.shown_url,
                delay,
                retries_done + 1,
                self.policy.max_retries,
                error,
            )
        return delay


class SyncHTTP(_Sender):
    """Blocking sender over one :class:`httpx.Client`."""

    def __init__(
        self,
        config: ClientConfig,
        policy: RetryPolicy,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config, policy)
        self._sleep = sleep
        self._client = httpx.Client(transport=transport, **_client_options(config))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _open(self, spec: RequestSpec) -> httpx.Response:
        """Send with retries until a 2xx response starts; raise the typed error otherwise."""
        retries_done = 0
        while True:
            error: ScoutError
            try:
                response = self._client.send(self._build(self._client, spec), stream=spec.stream)
            except httpx.HTTPError as exc:
                error = self._transport_error(spec, exc)
                delay = self._retry_delay(spec, error, retries_done)
                if delay is None:
                    raise error from exc
            else:
                if response.is_success:
                    return response
                error = self._error_for(spec, response, _read_error_body(response))
                delay = self._retry_delay(spec, error, retries_done)
                if delay is None:
                    raise error
            retries_done += 1
            self._sleep(delay)

    def send(self, spec: RequestSpec) -> httpx.Response:
        """Send ``spec`` and return the 2xx response with its body read."""
        return self._open(spec)

    @contextmanager
    def stream(self, spec: RequestSpec) -> Iterator[httpx.Response]:
        """Open ``spec`` as a stream; network errors while reading become
        :class:`ScoutTransportError` (``request_sent=True``). The response is closed on exit."""
        response = self._open(spec)
        try:
            yield response
        except httpx.HTTPError as exc:
            raise self._transport_error(spec, exc, after_response=True) from exc
        finally:
            response.close()


class AsyncHTTP(_Sender):
    """Asynchronous sender over one :class:`httpx.AsyncClient`."""

    def __init__(
        self,
        config: ClientConfig,
        policy: RetryPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(config, policy)
        self._sleep = sleep
        self._client = httpx.AsyncClient(transport=transport, **_client_options(config))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _open(self, spec: RequestSpec) -> httpx.Response:
        """Send with retries until a 2xx response starts; raise the typed error otherwise."""
        retries_done = 0
        while True:
            error: ScoutError
            try:
                response = await self._client.send(
                    self._build(self._client, spec), stream=spec.stream
                )
            except httpx.HTTPError as exc:
                error = self._transport_error(spec, exc)
                delay = self._retry_delay(spec, error, retries_done)
                if delay is None:
                    raise error from exc
            else:
                if response.is_success:
                    return response
                error = self._error_for(spec, response, await _aread_error_body(response))
                delay = self._retry_delay(spec, error, retries_done)
                if delay is None:
                    raise error
            retries_done += 1
            await self._sleep(delay)

    async def send(self, spec: RequestSpec) -> httpx.Response:
        """Send ``spec`` and return the 2xx response with its body read."""
        return await self._open(spec)

    @asynccontextmanager
    async def stream(self, spec: RequestSpec) -> AsyncIterator[httpx.Response]:
        """Open ``spec`` as a stream; network errors while reading become
        :class:`ScoutTransportError` (``request_sent=True``). The response is closed on exit."""
        response = await self._open(spec)
        try:
            yield response
        except httpx.HTTPError as exc:
            raise self._transport_error(spec, exc, after_response=True) from exc
        finally:
            await response.aclose()


def _read_error_body(response: httpx.Response) -> str:
    """The (bounded) text of a non-2xx response; closes a streamed response."""
    if not response.is_stream_consumed:
        chunks = bytearray()
        try:
            for chunk in response.iter_bytes():
                chunks.extend(chunk)
                if len(chunks) >= MAX_ERROR_BODY_BYTES:
                    break
        except httpx.HTTPError:
            pass
        finally:
            response.close()
        return _text(response, bytes(chunks))
    return response.text


async def _aread_error_body(response: httpx.Response) -> str:
    """The (bounded) text of a non-2xx async response; closes a streamed response."""
    if not response.is_stream_consumed:
        chunks = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                chunks.extend(chunk)
                if len(chunks) >= MAX_ERROR_BODY_BYTES:
                    break
        except httpx.HTTPError:
            pass
        finally:
            await response.aclose()
        return _text(response, bytes(chunks))
    return response.text


def _text(response: httpx.Response, content: bytes) -> str:
    encoding = response.encoding or "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")
