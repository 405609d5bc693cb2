"""The client's settings, checked once at construction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

import httpx

from ._trust import HostTrust, parse_http_url
from .errors import UntrustedURLError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_STREAM_READ_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncInteractEndpoint",
    "ClientConfig",
    "quote_segment",
]

DEFAULT_BASE_URL = "https://api.scoutos.com"
DEFAULT_TIMEOUT = 30.0
#: Seconds a stream may stay silent before it fails (connect timeout stays ``timeout``).
DEFAULT_STREAM_READ_TIMEOUT: float | None = 300.0

#: ``"world"``: ``POST /world/{agent_id}[/{session_id}]/_interact_async`` (API reference, SDK);
#: ``"v1"``: ``POST /v1/agents/{agent_id}/interact`` (the async-interactions guide).
AsyncInteractEndpoint = Literal["world", "v1"]


def quote_segment(value: str) -> str:
    """Percent-encode ``value`` for use as one path segment (``/`` included)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs besides its connection pool. The key is left out of ``repr``."""

    api_key: str = field(repr=False)
    base_url: httpx.URL
    timeout: float
    max_retries: int
    trust: HostTrust
    async_interact_endpoint: AsyncInteractEndpoint
    stream_read_timeout: float | None

    @classmethod
    def build(
        cls,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        trusted_hosts: Iterable[str] | None,
        async_interact_endpoint: str,
        stream_read_timeout: float | None,
    ) -> ClientConfig:
        """Check every argument and return the config; raise ``ValueError`` naming the bad one."""
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key must be a non-empty string")
        if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise ValueError("api_key must be printable ASCII without spaces")
        try:
            base = _parse_base_url(base_url)
        except UntrustedURLError as exc:
            raise ValueError(str(exc)) from None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if async_interact_endpoint not in ("world", "v1"):
            raise ValueError(
                f"async_interact_endpoint must be 'world' or 'v1', got {async_interact_endpoint!r}"
            )
        if stream_read_timeout is not None and stream_read_timeout <= 0:
            raise ValueError("stream_read_timeout must be positive or None (no limit)")
        return cls(
            api_key=api_key,
            base_url=base,
            timeout=float(timeout),
            max_retries=max_retries,
            trust=HostTrust.build(base, trusted_hosts),
            async_interact_endpoint=async_interact_endpoint,  # type: ignore[arg-type]
            stream_read_timeout=stream_read_timeout,
        )

    def api_url(self, path: str) -> httpx.URL:
        """Join ``path`` (relative, segments already encoded) onto ``base_url``."""
        return httpx.URL(f"{self.base_url}{path.lstrip('/')}")

    @property
    def request_timeout(self) -> httpx.Timeout:
        """Timeout of ordinary calls: ``timeout`` for every phase."""
        return httpx.Timeout(self.timeout)

    @property
    def stream_timeout(self) -> httpx.Timeout:
        """Timeout of streaming calls: ``timeout`` to connect, ``stream_read_timeout`` between
        chunks."""
        return httpx.Timeout(self.timeout, read=self.stream_read_timeout)


def _parse_base_url(base_url: str) -> httpx.URL:
    """Parse ``base_url`` and make sure it ends with ``/`` so relative paths join under it."""
    parsed = parse_http_url(base_url, what="base_url")
    if parsed.query or parsed.fragment:
        raise UntrustedURLError(f"base_url must not have a query or fragment: {base_url!r}")
    text = str(parsed)
    return httpx.URL(text if text.endswith("/") else f"{text}/")
