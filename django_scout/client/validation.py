"""Check caller input before anything is sent to Scout.

Every function raises :class:`ValueError` with a message naming the bad value and the rule it
breaks, so a mistake is reported at the call site instead of as a 422 from Scout (or not at all).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "build_messages",
    "optional_string",
    "path_segment",
    "validate_callback_url",
    "validate_json_object",
    "validate_json_value",
    "validate_tags",
]

#: Scout accepts at most this many tags on one interaction.
MAX_TAGS = 20
#: Each tag is 1 to this many characters.
MAX_TAG_LENGTH = 32
_TAG_PATTERN = re.compile(r"[a-z0-9:_-]+")
_TAG_RULE = f"1 to {MAX_TAG_LENGTH} characters of lowercase a-z, 0-9, ':', '_' or '-'"

_DRIVE_FILE = "drive_file"
_CONTENT_RULE = (
    "a non-empty string, a drive file {'type': 'drive_file', 'path': '/...'}, "
    "or a non-empty list of those"
)


def validate_tags(tags: Sequence[str] | None) -> list[str]:
    """Return ``tags`` as a list after checking Scout's rules; ``None`` gives ``[]``.

    At most :data:`MAX_TAGS` tags, each 1 to :data:`MAX_TAG_LENGTH` characters of ``a-z``,
    ``0-9``, ``:``, ``_`` and ``-`` (uppercase is rejected, not lowered).
    """
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Sequence):
        raise ValueError(f"tags must be a list of strings, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"too many tags: {len(tags)} given, Scout accepts at most {MAX_TAGS}")
    checked: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"tag {tag!r} is not a string; each tag must be {_TAG_RULE}")
        if len(tag) > MAX_TAG_LENGTH or not _TAG_PATTERN.fullmatch(tag):
            raise ValueError(f"invalid tag {tag!r}: each tag must be {_TAG_RULE}")
        checked.append(tag)
    return checked


def build_messages(message: str | None, messages: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Return the wire ``messages`` list from exactly one of ``message`` or ``messages``.

    ``message`` is one text and becomes ``[{"content": message}]``. ``messages`` is a non-empty
    list whose items are texts (wrapped the same way) or dicts with a ``content`` key holding
    a text, a drive file ``{"type": "drive_file", "path": ...}`` or a list mixing them. Dict
    items are copied as given (extra keys included).
    """
    if (message is None) == (messages is None):
        raise ValueError("pass exactly one of message= (a text) or messages= (a list)")
    if message is not None:
        if not isinstance(message, str) or not message.strip():
            raise ValueError(f"message must be a non-empty string, got {message!r}")
        return validate_json_value([{"content": message}], "message")  # type: ignore[no-any-return]
    assert messages is not None  # for type checkers; checked above
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise ValueError(
            f"messages must be a list of strings or {{'content': ...}} dicts, "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    wire = [_wire_message(item, index) for index, item in enumerate(messages)]
    return validate_json_value(wire, "messages")  # type: ignore[no-any-return]


def _wire_message(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, str):
        _check_content(item, index)
        return {"content": item}
    if isinstance(item, Mapping):
        if "content" not in item:
            raise ValueError(f"messages[{index}] has no 'content' key")
        _check_content(item["content"], index)
        return dict(item)
    raise ValueError(
        f"messages[{index}] must be a string or a dict with 'content', got {type(item).__name__}"
    )


def _check_content(content: Any, index: int) -> None:
    if isinstance(content, list):
        if not content:
            raise ValueError(f"messages[{index}].content must be {_CONTENT_RULE}")
        for part in content:
            _check_content_part(part, index)
        return
    _check_content_part(content, index)


def _check_content_part(part: Any, index: int) -> None:
    if isinstance(part, str):
        if part.strip():
            return
    elif isinstance(part, Mapping):
        path = part.get("path")
        if part.get("type") == _DRIVE_FILE and isinstance(path, str) and path:
            return
    raise ValueError(f"messages[{index}].content {part!r} is not valid: must be {_CONTENT_RULE}")


def validate_json_value(value: Any, name: str) -> Any:
    """Return ``value`` if it is JSON that Scout and every supported database accept.

    That is: what :func:`json.dumps` encodes, without ``NaN`` or ``Infinity`` (not JSON; a
    database refuses them), without a NUL character or an unpaired surrogate in any string
    (PostgreSQL's ``jsonb`` refuses both), and not nested beyond what ``json`` can encode.
    Anything else raises :class:`ValueError` naming ``name``, before anything is saved or sent.
    This is the one check for JSON a caller passes: the client's request bodies and the
    ``django_scout.api`` functions both use it.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{name} must be JSON-serializable: {exc}") from None
    if "\\u0000" in text and _has_nul(value):
        raise ValueError(f"{name} must not contain a NUL character (\\u0000) in a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must not contain an unpaired surrogate in a string") from None
    return value


def _has_nul(value: Any) -> bool:
    """Whether a string in ``value`` (keys included) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


def validate_json_object(value: Any, name: str) -> dict[str, Any] | None:
    """Return ``value`` as a dict when it is a JSON object (string keys, serializable), or None.

    ``metadata``, ``variables`` and ``inputs`` must be JSON objects; a list, a string, or a
    value :func:`validate_json_value` refuses raises :class:`ValueError` naming ``name``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict (a JSON object), got {type(value).__name__}")
    if not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} keys must all be strings")
    validate_json_value(value, name)
    return dict(value)


def path_segment(value: Any, name: str) -> str:
    """Return ``value`` checked for use as one URL path segment (the caller percent-encodes it).

    Rejects anything that is not a non-empty string, and ``.``/``..`` (which would change the
    path instead of naming a resource).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if value in (".", ".."):
        raise ValueError(f"{name} must not be {value!r}")
    return value


def optional_string(value: Any, name: str) -> str | None:
    """Return ``value`` if it is ``None`` or a non-empty string; raise ``ValueError`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
    return value


def validate_callback_url(url: Any) -> str:
    """Return ``url`` when it is an absolute http(s) URL with a host; raise ``ValueError``."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"callback_url must be an absolute http(s) URL, got {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"callback_url is not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"callback_url must be an absolute http(s) URL, got {url!r}")
    return url
