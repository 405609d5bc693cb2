"""Which URLs the API key may be sent to.

The key goes only to the origin (host and port) of ``base_url`` and to the ``trusted_hosts``.
A URL Scout hands us (an ``events_url``) is checked before a single byte is sent: another
host, another port, a scheme other than http(s), credentials in the URL, or ``http`` while
``base_url`` is ``https`` raise :class:`~django_scout.client.errors.UntrustedURLError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import UntrustedURLError

__all__ = ["HostTrust", "parse_http_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _effective_port(url: httpx.URL) -> int:
    return url.port if url.port is not None else _DEFAULT_PORTS[url.scheme]


def parse_http_url(url: object, *, what: str, shown: str | None = None) -> httpx.URL:
    """Parse ``url`` as an absolute http(s) URL without credentials, or raise
    :class:`UntrustedURLError` (``shown`` replaces the URL in the message, e.g. when masked)."""
    display = shown if shown is not None else repr(url)
    if not isinstance(url, (str, httpx.URL)):
        raise UntrustedURLError(f"{what} must be a URL string, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UntrustedURLError(f"{what} is not a valid URL: {display}") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise UntrustedURLError(f"{what} must use http or https, got {display}")
    if not parsed.host:
        raise UntrustedURLError(f"{what} has no host: {display}")
    if parsed.userinfo:
        raise UntrustedURLError(f"{what} must not contain credentials: {display}")
    return parsed


def _parse_host_entry(entry: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(f"//{entry.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"trusted host {entry!r} is not a host name") from None
    if not host or parts.path or parts.query or parts.username:
        raise ValueError(
            f"trusted host {entry!r} is not a host name (expected 'host' or 'host:port')"
        )
    return host.lower(), port


@dataclass(frozen=True)
class HostTrust:
    """The origins the API key may be sent to."""

    base_url: httpx.URL
    trusted: frozenset[tuple[str, int | None]]

    @classmethod
    def build(cls, base_url: httpx.URL, trusted_hosts: Iterable[str] | None) -> HostTrust:
        """Trust ``base_url``'s origin plus each ``host`` or ``host:port`` in ``trusted_hosts``.

        A host given without a port is trusted on the default port of the URL's scheme only.
        """
        if isinstance(trusted_hosts, str):
            raise ValueError("trusted_hosts must be a list of host names, not a single string")
        entries = frozenset(_parse_host_entry(entry) for entry in trusted_hosts or ())
        return cls(base_url=base_url, trusted=entries)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Trusted host names (for display), base host first."""
        names = [self.base_url.host, *sorted({host for host, _ in self.trusted})]
        return tuple(dict.fromkeys(names))

    def _is_trusted_origin(self, url: httpx.URL) -> bool:
        host = url.host.lower()
        if host == self.base_url.host.lower() and _effective_port(url) == _effective_port(
            self.base_url
        ):
            return True
        return (host, url.port) in self.trusted

    def check(self, url: object, *, what: str = "URL") -> httpx.URL:
        """Return ``url`` parsed when the API key may be sent to it; raise
        :class:`UntrustedURLError` otherwise."""
        parsed = parse_http_url(url, what=what)
        self.check_no_downgrade(parsed, what=what)
        if not self._is_trusted_origin(parsed):
            port = f":{parsed.port}" if parsed.port is not None else ""
            raise UntrustedURLError(
                f"{what} points at {parsed.host}{port}, which is not a trusted host "
                f"(trusted: {', '.join(self.hosts)}); the API key is not sent there. "
                "Add the host to trusted_hosts (settings.SCOUT['TRUSTED_EVENTS_HOSTS']) "
                "if it really belongs to Scout."
            )
        return parsed

    def check_no_downgrade(self, url: httpx.URL, *, what: str, shown: str | None = None) -> None:
        """Raise :class:`UntrustedURLError` when ``url`` is ``http`` while ``base_url`` is
        ``https``."""
        if self.base_url.scheme == "https" and url.scheme != "https":
            display = shown if shown is not None else str(url)
            raise UntrustedURLError(
                f"{what} uses {url.scheme}:// while the API uses https://; refusing {display}"
            )
