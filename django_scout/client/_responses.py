"""Turn failed HTTP exchanges into the client's typed errors, and read bodies tolerantly."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from ._json_depth import load_json
from ._retry import parse_retry_after
from .errors import (
    ScoutAPIError,
    ScoutAuthError,
    ScoutError,
    ScoutNotFoundError,
    ScoutRateLimitError,
    ScoutServerError,
    ScoutStreamError,
    ScoutTransportError,
    ScoutValidationError,
)

__all__ = [
    "MAX_ERROR_BODY_CHARS",
    "decode_body",
    "error_from_response",
    "error_from_transport",
    "is_event_stream",
    "summarize_detail",
]

#: Error bodies that are not JSON are kept up to this many characters.
MAX_ERROR_BODY_CHARS = 4096
#: Non-2xx bodies of streamed responses are read up to this many bytes.
MAX_ERROR_BODY_BYTES = 64 * 1024

#: httpx errors raised before any byte of the request left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_event_stream(response: httpx.Response) -> bool:
    """True when the response is Server-Sent Events (``text/event-stream``)."""
    return "text/event-stream" in response.headers.get("content-type", "").lower()


def decode_body(text: str) -> Any:
    """Return ``text`` decoded as JSON, the text itself when it is not JSON, ``None`` if empty.

    JSON nested more than ``MAX_JSON_DEPTH`` levels deep counts as not JSON.
    """
    if not text.strip():
        return None
    try:
        return load_json(text)
    except ValueError:
        return text


def summarize_detail(body: Any) -> str:
    """A one-line summary of an error body: FastAPI ``detail`` items as ``loc: msg``, a string
    ``detail``, or the start of the body."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        items = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc") or ())
                msg = str(item.get("msg", "invalid"))
                items.append(f"{loc}: {msg}" if loc else msg)
            else:
                items.append(str(item))
        if items:
            return "; ".join(items)
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    if body is None:
        return ""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= 200 else f"{text[:200]}..."


def error_from_response(
    response: httpx.Response,
    *,
    method: str,
    shown_url: str,
    body_text: str,
    secrets: Iterable[str] = (),
) -> ScoutAPIError:
    """Build the typed error for a non-2xx ``response`` (its body given as ``body_text``).

    ``shown_url`` is the URL as it may appear in messages (webhook tokens masked). The message
    and the kept body are scrubbed of credentials and of each of ``secrets`` (the API key):
    Scout, or a proxy, may echo the request's ``Authorization`` header in an error body.
    """
    status = response.status_code
    body = decode_body(body_text)
    if isinstance(body, str) and len(body) > MAX_ERROR_BODY_CHARS:
        body = body[:MAX_ERROR_BODY_CHARS]
    path = _path_of(shown_url)
    summary = summarize_detail(body) or response.reason_phrase
    verb = "failed on" if status >= 500 else "rejected"
    message = f"Scout {verb} {method} {path} with {status}: {summary}"
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        message = (
            f"Scout redirected {method} {path} with {status} to {location!r}; "
            "redirects are not followed (the API key must not leave trusted hosts)"
        )
    kwargs: dict[str, Any] = {
        "status_code": status,
        "body": body,
        "headers": dict(response.headers),
        "method": method,
        "url": shown_url,
        "secrets": tuple(secrets),
    }
    if status in (401, 403):
        return ScoutAuthError(message, **kwargs)
    if status == 404:
        return ScoutNotFoundError(message, **kwargs)
    if status == 422:
        return ScoutValidationError(message, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return ScoutRateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ScoutServerError(message, **kwargs)
    return ScoutAPIError(message, **kwargs)


def error_from_transport(
    exc: httpx.HTTPError,
    *,
    method: str,
    shown_url: str,
    after_response: bool = False,
    secrets: Iterable[str] = (),
) -> ScoutError:
    """Map an httpx exception to :class:`ScoutTransportError` (or :class:`ScoutStreamError`
    for a body that cannot be decoded); its text is scrubbed like :func:`error_from_response`.

    ``request_sent`` is False only for connect errors and connect/pool timeouts raised before
    a response started.
    """
    path = _path_of(shown_url)
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.DecodingError):
        return ScoutStreamError(
            f"cannot decode the body of {method} {path}: {reason}", secrets=secrets
        )
    sent = after_response or not isinstance(exc, _NOT_SENT)
    when = "after sending" if sent else "before sending"
    return ScoutTransportError(
        f"{type(exc).__name__} {when} {method} {path}: {reason}",
        request_sent=sent,
        secrets=secrets,
    )


def _path_of(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return url
    return parsed.raw_path.decode("ascii", "replace").split("?", 1)[0] or "/"
