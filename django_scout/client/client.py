"""``ScoutClient`` and ``AsyncScoutClient``: the entry points, grouped by resource.

Both hold one connection pool (close it with :meth:`ScoutClient.close` /
:meth:`AsyncScoutClient.aclose`, or use them as (async) context managers). Nothing here imports
Django; :meth:`ScoutClient.from_settings` imports ``django_scout.conf`` only when called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_STREAM_READ_TIMEOUT,
    DEFAULT_TIMEOUT,
    AsyncInteractEndpoint,
    ClientConfig,
)
from ._http import AsyncHTTP, SyncHTTP
from ._retry import ExponentialBackoff, RetryPolicy
from .resources import (
    Agents,
    Apps,
    AsyncAgents,
    AsyncApps,
    AsyncSessions,
    AsyncWorkflows,
    Sessions,
    Workflows,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncScoutClient", "ScoutClient"]

#: Delay (seconds) before retry number ``n`` (1-based).
Backoff = Callable[[int], float]


def _settings_kwargs() -> dict[str, Any]:
    """Client arguments from ``settings.SCOUT`` (imports Django lazily)."""
    from django_scout.conf import scout_settings

    settings = scout_settings()
    return {
        "api_key": settings.require("API_KEY"),
        "base_url": settings.API_BASE_URL,
        "timeout": settings.TIMEOUT,
        "max_retries": settings.MAX_RETRIES,
        "trusted_hosts": settings.trusted_events_hosts,
        "async_interact_endpoint": settings.ASYNC_INTERACT_ENDPOINT,
    }


class _ClientBase:
    """Argument checking and ``repr`` shared by both clients."""

    _config: ClientConfig
    _policy: RetryPolicy

    def _configure(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        trusted_hosts: Iterable[str] | None,
        async_interact_endpoint: str,
        backoff: Backoff | None,
        stream_read_timeout: float | None,
    ) -> None:
        self._config = ClientConfig.build(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            trusted_hosts=trusted_hosts,
            async_interact_endpoint=async_interact_endpoint,
            stream_read_timeout=stream_read_timeout,
        )
        self._policy = RetryPolicy(
            max_retries=max_retries,
            backoff=backoff if backoff is not None else ExponentialBackoff(),
        )

    @property
    def base_url(self) -> str:
        """The API base URL (always ends with ``/``)."""
        return str(self._config.base_url)

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """Hosts the API key may be sent to (the base URL's host first)."""
        return self._config.trust.hosts

    @property
    def max_retries(self) -> int:
        """How many times a retry-safe request is repeated at most."""
        return self._policy.max_retries

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='***')"


class ScoutClient(_ClientBase):
    """Blocking client of the Scout API.

    ``ScoutClient(api_key="sk_...")`` talks to ``https://api.scoutos.com``. ``timeout`` (s)
    bounds every phase of ordinary calls and the connect phase of streams (which may stay silent
    up to ``stream_read_timeout``, ``None`` for no limit). ``max_retries`` retry-safe failures
    are retried with ``backoff`` (``backoff(n)`` = seconds before retry ``n``) and ``sleep``.
    The API key is sent only to ``base_url``'s origin and ``trusted_hosts``. ``transport`` is
    passed to httpx (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        trusted_hosts: Iterable[str] | None = None,
        *,
        async_interact_endpoint: AsyncInteractEndpoint = "world",
        transport: httpx.BaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stream_read_timeout: float | None = DEFAULT_STREAM_READ_TIMEOUT,
    ) -> None:
        self._configure(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            trusted_hosts=trusted_hosts,
            async_interact_endpoint=async_interact_endpoint,
            backoff=backoff,
            stream_read_timeout=stream_read_timeout,
        )
        self._http = SyncHTTP(self._config, self._policy, transport=transport, sleep=sleep)
        # The resources; their methods are listed in .resources.
        self.agents = Agents(self._http)
        self.sessions = Sessions(self._http)
        self.workflows = Workflows(self._http)
        self.apps = Apps(self._http)

    @classmethod
    def from_settings(
        cls,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ScoutClient:
        """A client configured from ``settings.SCOUT`` (``API_KEY``, ``API_BASE_URL``,
        ``TIMEOUT``, ``MAX_RETRIES``, ``TRUSTED_EVENTS_HOSTS``, ``ASYNC_INTERACT_ENDPOINT``).

        Raises :class:`django.core.exceptions.ImproperlyConfigured` when ``API_KEY`` is unset.
        """
        return cls(**_settings_kwargs(), transport=transport, backoff=backoff, sleep=sleep)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncScoutClient(_ClientBase):
    """Asynchronous client of the Scout API; same arguments and resources as
    :class:`ScoutClient`, with ``async`` methods and async iterators (``sleep`` is awaited)."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        trusted_hosts: Iterable[str] | None = None,
        *,
        async_interact_endpoint: AsyncInteractEndpoint = "world",
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stream_read_timeout: float | None = DEFAULT_STREAM_READ_TIMEOUT,
    ) -> None:
        self._configure(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            trusted_hosts=trusted_hosts,
            async_interact_endpoint=async_interact_endpoint,
            backoff=backoff,
            stream_read_timeout=stream_read_timeout,
        )
        self._http = AsyncHTTP(self._config, self._policy, transport=transport, sleep=sleep)
        # The resources; their methods are listed in .resources.
        self.agents = AsyncAgents(self._http)
        self.sessions = AsyncSessions(self._http)
        self.workflows = AsyncWorkflows(self._http)
        self.apps = AsyncApps(self._http)

    @classmethod
    def from_settings(
        cls,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncScoutClient:
        """A client configured from ``settings.SCOUT`` (see :meth:`ScoutClient.from_settings`)."""
        return cls(**_settings_kwargs(), transport=transport, backoff=backoff, sleep=sleep)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
