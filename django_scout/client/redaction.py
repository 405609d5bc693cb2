"""Hide credentials that live inside URLs before a URL reaches a log line, repr or error.

A workflow webhook URL (``https://hooks.scoutos.com/v1/workflows/{id}/webhook/{token}``) *is* a
credential: whoever knows it can start the workflow. :func:`mask_webhook_url` keeps enough of it
to recognise (host, workflow id) and replaces the token with ``***``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "install_httpx_log_redaction", "mask_webhook_url"]

#: What a hidden secret is replaced with.
MASK = "***"

_WEBHOOK_MARKER = "/webhook/"


def mask_webhook_url(url: str) -> str:
    """Return ``url`` with its secret parts replaced by ``***``.

    * the path after ``/webhook/`` (the token), or, when the URL has no ``/webhook/`` segment,
      its last path segment (the usual place of a token in other hook URLs);
    * any user:password part and any query string.

    ``mask_webhook_url("https://hooks.scoutos.com/v1/workflows/wf_1/webhook/tok")`` is
    ``"https://hooks.scoutos.com/v1/workflows/wf_1/webhook/***"``. Something that does not parse
    as a URL is masked completely.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    path = parts.path
    marker = path.find(_WEBHOOK_MARKER)
    if marker >= 0:
        path = path[: marker + len(_WEBHOOK_MARKER)] + MASK
    else:
        head, _, last = path.rstrip("/").rpartition("/")
        if last:
            path = f"{head}/{MASK}"
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


class _WebhookURLFilter(logging.Filter):
    """Rewrites httpx's ``HTTP Request: POST <url> ...`` lines so a webhook token never shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_WEBHOOK_MARKER in str(arg) for arg in args):
            record.args = tuple(_mask_arg(arg) for arg in args)
        return True


def _mask_arg(arg: Any) -> Any:
    text = str(arg)
    return mask_webhook_url(text) if _WEBHOOK_MARKER in text else arg


_filter = _WebhookURLFilter()


def install_httpx_log_redaction() -> None:
    """Attach (once) a filter to the ``httpx`` logger that masks webhook URLs in its records.

    httpx logs every request URL at INFO level; without this, turning that logger on would
    print webhook tokens.
    """
    logger = logging.getLogger("httpx")
    if _filter not in logger.filters:
        logger.addFilter(_filter)
