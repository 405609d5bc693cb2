"""Hide credentials before text reaches a log line, an error, a stored field or the admin.

* :func:`mask_webhook_url`: a workflow webhook URL
  (``https://hooks.scoutos.com/v1/workflows/{id}/webhook/{token}``) *is* a credential: whoever
  knows it can start the workflow. It keeps the host and workflow id and masks the token.
* :func:`scrub`: masks secrets inside free text (an error body Scout echoed, a proxy's error
  page): given secret values (the API key), ``Bearer``/``Basic`` credentials, webhook tokens,
  ``user:password@`` in URLs, and values of credential-named keys (``api_key=``,
  ``"token": "..."``, ``X-Scout-Token: ...``, ``password``, ``secret``, ``authorization``...).
  :func:`scrub_data` does the same for parsed JSON.
* :func:`redact_headers`: the request headers worth storing: an allow-list keeps its values,
  every other header keeps only its name.

Nothing here imports Django.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = [
    "KEPT_HEADERS",
    "MASK",
    "MIN_SECRET_LENGTH",
    "install_httpx_log_redaction",
    "is_secret_name",
    "mask_webhook_url",
    "redact_headers",
    "scrub",
    "scrub_data",
    "webhook_secrets",
]

#: What a hidden secret is replaced with.
MASK = "***"

#: Secret values shorter than this are not searched for: they would mask ordinary words.
MIN_SECRET_LENGTH = 8

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
    split = _split_token(path)
    if split is not None:
        path = split[0] + MASK
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def webhook_secrets(url: str) -> tuple[str, ...]:
    """The parts of ``url`` that :func:`mask_webhook_url` hides (token, user info, query), to
    pass as ``secrets`` to :func:`scrub` when text about this URL may echo them bare."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return (str(url),)
    split = _split_token(parts.path)
    token = split[1] if split is not None else ""
    found = (token, unquote(token), parts.username, parts.password, parts.query)
    return tuple(part for part in found if part)


def _split_token(path: str) -> tuple[str, str] | None:
    """``(path up to the token, token)``: what follows ``/webhook/``, else the last segment;
    ``None`` for a path with neither."""
    marker = path.find(_WEBHOOK_MARKER)
    if marker >= 0:
        cut = marker + len(_WEBHOOK_MARKER)
        return path[:cut], path[cut:]
    head, _, last = path.rstrip("/").rpartition("/")
    return (f"{head}/", last) if last else None


# Names whose values are credentials: an ``api_key``, a ``client_secret``, an ``X-Scout-Token``,
# a ``password``... A name must *end* with one of these words, so ``max_tokens``,
# ``token_count`` or ``X-Scout-Signature-Alg`` are not credentials.
_CREDENTIAL_WORDS = (
    r"token|secret|passw(?:or)?d|pwd|api[_\s-]?key|apikey|(?:private|access|secret|signing)[_-]?key"
    r"|authorization|auth|credentials?|cookie|signature"
)
_SECRET_NAME = re.compile(rf"[\w.-]*?(?:{_CREDENTIAL_WORDS})", re.IGNORECASE)

# ``name`` then ``:`` or ``=`` (JSON, Python reprs, query strings, header lines, escaped JSON),
# then a quoted value (up to the matching quote) or a bare one (an auth scheme and its
# credential, or one word). A name starts only where a run of name characters starts, and a
# quoted value is bounded, so the time stays linear in the text whatever Scout sends.
_KEY_VALUE = re.compile(
    rf"""(?P<name>(?<![\w.-])[\w.-]*?(?:{_CREDENTIAL_WORDS})(?![\w-]))
    (?P<sep>\\*["']?\s*[:=]\s*)
    (?:
        (?P<quote>\\*["'])(?P<quoted>(?:\\.|[^\\\n]){{0,4096}}?)(?P=quote)
      | (?P<bare>(?:(?:bearer|basic|token|digest)\s+)?[^\s"'\\,;&<>(){{}}\[\]]+)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_BEARER = re.compile(r"\b(bearer\s+)[\w.~+/-]+=*", re.IGNORECASE)
# ``Basic`` is an ordinary word too: only a base64 ``user:password`` after it is a credential.
_BASIC = re.compile(r"\b(basic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_WEBHOOK_TOKEN = re.compile(rf"(?<={re.escape(_WEBHOOK_MARKER)})[^\s?#\"'<>]+")


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a JSON key, query parameter or header) names a credential."""
    return _SECRET_NAME.fullmatch(name) is not None


def _mask_value(match: re.Match[str]) -> str:
    if match["quote"] is not None:
        return f"{match['name']}{match['sep']}{match['quote']}{MASK}{match['quote']}"
    return f"{match['name']}{match['sep']}{MASK}"


def _mask_basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match[2], validate=True)
    except (binascii.Error, ValueError):
        return match[0]
    return f"{match[1]}{MASK}" if b":" in decoded else match[0]


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    forms: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH:
            forms.update((secret, quote(secret, safe="")))
    # Longest first, so a secret that contains another is masked whole.
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every credential in it replaced by ``***``.

    Masks each of ``secrets`` (e.g. the API key; also percent-encoded; values shorter than
    :data:`MIN_SECRET_LENGTH` are skipped), ``Bearer <token>``, ``Basic <base64 user:password>``,
    the token of a ``/webhook/<token>`` URL, ``user:password@`` in URLs, and the value of every
    credential-named key (see :func:`is_secret_name`) written as ``name=value``,
    ``name: value`` or ``"name": "value"``. Scrubbing twice changes nothing more.
    """
    return _scrub_text(text, _secret_forms(secrets))


def scrub_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`scrub` for parsed JSON: every string is scrubbed, and the value of a
    credential-named key is masked whatever its type (an object or a list is scrubbed in turn).
    Returns a new value; ``value`` is not changed."""
    return _scrub_value(value, _secret_forms(secrets))


def _scrub_text(text: str, forms: list[str]) -> str:
    for form in forms:
        text = text.replace(form, MASK)
    text = _WEBHOOK_TOKEN.sub(MASK, text)
    text = _URL_USERINFO.sub(f"{MASK}@", text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    text = _BASIC.sub(_mask_basic, text)
    return _KEY_VALUE.sub(_mask_value, text)


def _scrub_value(value: Any, forms: list[str]) -> Any:
    if isinstance(value, str):
        return _scrub_text(value, forms)
    if isinstance(value, list | tuple):
        return [_scrub_value(item, forms) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_item(str(key), item, forms) for key, item in value.items()}
    return value


def _scrub_item(key: str, value: Any, forms: list[str]) -> Any:
    if is_secret_name(key) and value is not None and not isinstance(value, dict | list):
        return MASK
    return _scrub_value(value, forms)


#: Request headers stored with their value; any other header is stored as ``name: ***``.
KEPT_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "content-encoding",
        "content-length",
        "content-type",
        "forwarded",
        "host",
        "traceparent",
        "tracestate",
        "user-agent",
        "via",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "x-request-id",
        "x-scout-signature-alg",
    }
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` fit to store: the values of :data:`KEPT_HEADERS`, ``***`` for the others.

    An allow-list rather than a list of known credentials: a header nobody thought of (a
    proxy's ``X-Scout-Token``, a vendor's ``X-Partner-Key``) cannot leak, and its name still
    shows that it was sent.
    """
    return {
        name: value if name.lower() in KEPT_HEADERS else MASK for name, value in headers.items()
    }


class _CredentialFilter(logging.Filter):
    """Rewrites httpx's ``HTTP Request: POST <url> ...`` lines so no credential in a URL shows
    (a webhook token, ``user:password@``, a ``?token=`` query parameter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(arg) for arg in record.args)
        return True


def _mask_arg(arg: Any) -> Any:
    if arg is None or isinstance(arg, int | float):
        return arg
    text = str(arg)
    if _WEBHOOK_MARKER in text:
        return mask_webhook_url(text)
    scrubbed = scrub(text)
    return arg if scrubbed == text else scrubbed


_filter = _CredentialFilter()


def install_httpx_log_redaction() -> None:
    """Attach (once) a filter to the ``httpx`` logger that masks credentials in request URLs.

    httpx logs every request URL at INFO level; without this, turning that logger on would
    print webhook tokens or a token passed in an ``events_url`` query.
    """
    logger = logging.getLogger("httpx")
    if _filter not in logger.filters:
        logger.addFilter(_filter)
