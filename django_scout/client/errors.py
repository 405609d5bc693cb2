"""Typed errors raised by the Scout client.

Every error is a :class:`ScoutError`. Errors carrying an HTTP answer are :class:`ScoutAPIError`
(with ``status_code``, ``body`` and ``headers``; the ``Authorization`` header is never kept).

Every message (and a kept body) is scrubbed when the error is built (see
:func:`~.redaction.scrub`), so whatever shows an error — ``str()``, a log line, a traceback, a
stored ``error_message`` — never shows a credential Scout or the network echoed back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .redaction import scrub, scrub_data

__all__ = [
    "ScoutAPIError",
    "ScoutAuthError",
    "ScoutError",
    "ScoutNotFoundError",
    "ScoutProtocolError",
    "ScoutRateLimitError",
    "ScoutServerError",
    "ScoutStreamError",
    "ScoutTransportError",
    "ScoutValidationError",
    "UntrustedURLError",
]


class ScoutError(Exception):
    """Base class of every error the client raises.

    ``message`` is scrubbed of credentials, and of each of ``secrets`` (the client passes its
    API key), before it is stored as :attr:`message` and the exception's argument.
    """

    #: True when repeating the same request cannot start work twice at Scout.
    retry_safe: bool = False

    def __init__(self, message: str = "", *, secrets: Iterable[str] = ()) -> None:
        self.message = scrub(str(message), secrets)
        super().__init__(self.message)


class ScoutAPIError(ScoutError):
    """Scout answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = tuple(secrets)
        super().__init__(message, secrets=secrets)
        self.status_code = status_code
        self.body = scrub_data(body, secrets)
        self.headers: dict[str, str] = {
            k.lower(): v for k, v in (headers or {}).items() if k.lower() != "authorization"
        }
        self.method = method
        self.url = url

    @property
    def detail(self) -> Any:
        """Scout's ``detail`` (a string, a list of errors, or ``None``)."""
        if isinstance(self.body, dict):
            return self.body.get("detail")
        return None


class ScoutAuthError(ScoutAPIError):
    """401 or 403: the API key is missing, wrong, or not allowed to do this."""


class ScoutValidationError(ScoutAPIError):
    """422: Scout rejected the request body; :attr:`errors` lists ``{loc, msg, type}`` items."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The validation errors in ``detail`` (empty when Scout sent none or a plain string)."""
        detail = self.detail
        if isinstance(detail, list):
            return [item for item in detail if isinstance(item, dict)]
        return []


class ScoutNotFoundError(ScoutAPIError):
    """404: the agent, workflow, app or session does not exist."""


class ScoutRateLimitError(ScoutAPIError):
    """429: too many requests; :attr:`retry_after` is Scout's ``Retry-After`` in seconds."""

    retry_safe = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ScoutServerError(ScoutAPIError):
    """5xx: Scout failed. Only 502/503/504 are known not to have started work."""

    @property
    def retry_safe(self) -> bool:  # type: ignore[override]
        """502, 503 and 504 mean the request never reached a worker."""
        return self.status_code in (502, 503, 504)


class ScoutTransportError(ScoutError):
    """The request failed on the network (connection refused, reset, timeout).

    :attr:`request_sent` is False when the failure happened before any byte of the request
    reached Scout (so repeating it cannot start work twice).
    """

    def __init__(self, message: str, *, request_sent: bool, secrets: Iterable[str] = ()) -> None:
        super().__init__(message, secrets=secrets)
        self.request_sent = request_sent

    @property
    def retry_safe(self) -> bool:  # type: ignore[override]
        """Safe to repeat only when the request was never sent."""
        return not self.request_sent


class ScoutStreamError(ScoutError):
    """A streamed body (SSE, NDJSON, JSON) held something that does not parse."""


class ScoutProtocolError(ScoutError):
    """Scout answered 2xx, but the body lacks what the API promises (e.g. no ``session_id``).

    :attr:`status_code` and :attr:`body` (parsed JSON, or text) are kept for debugging.
    """

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = scrub_data(body)


class UntrustedURLError(ScoutError, ValueError):
    """A URL points at a host the API key must not be sent to; nothing was sent."""
