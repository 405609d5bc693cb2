"""Request validation the way Scout (a FastAPI service) reports it: 422 ``{"detail": [...]}``.

Each validator appends FastAPI-style items ``{"loc": [...], "msg": ..., "type": ...}`` to a list
of errors, so one answer reports every problem at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ENVIRONMENTS",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "ValidationErrors",
    "parse_json_object",
    "validate_agent_body",
    "validate_callback_url",
    "validate_environment",
    "validate_optional_bool",
    "validate_optional_object",
    "validate_optional_string",
]

ENVIRONMENTS = frozenset({"production", "staging", "development", "console"})
"""The ``environment`` query values Scout documents for workflow execution."""

MAX_TAGS = 20
MAX_TAG_LENGTH = 32
_TAG_RE = re.compile(r"^[a-z0-9:_-]+$")

Loc = list[str | int]


class ValidationErrors:
    """An accumulator of FastAPI-style validation error items."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, loc: Loc, msg: str, type_: str, **ctx: Any) -> None:
        """Record one problem at ``loc``."""
        item: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
        if ctx:
            item["ctx"] = ctx
        self.items.append(item)

    def missing(self, loc: Loc) -> None:
        """Record a missing required field."""
        self.add(loc, "field required", "value_error.missing")

    def __bool__(self) -> bool:
        return bool(self.items)

    def body(self) -> dict[str, Any]:
        """The 422 answer body."""
        return {"detail": self.items}


def parse_json_object(raw: bytes, errors: ValidationErrors, *, allow_empty: bool = False) -> Any:
    """Parse a request body that must be a JSON object; return ``None`` after an error.

    An empty body counts as ``{}`` when ``allow_empty`` is set, as a missing body otherwise.
    """
    if not raw.strip():
        if allow_empty:
            return {}
        errors.missing(["body"])
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        errors.add(["body", 0], f"JSON decode error: {exc}", "value_error.jsondecode")
        return None
    if not isinstance(value, dict):
        errors.add(["body"], "value is not a valid dict", "type_error.dict")
        return None
    return value


def validate_optional_object(body: Mapping[str, Any], key: str, errors: ValidationErrors) -> None:
    """``body[key]`` may be absent or null, else it must be a JSON object."""
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        errors.add(["body", key], "value is not a valid dict", "type_error.dict")


def validate_optional_string(body: Mapping[str, Any], key: str, errors: ValidationErrors) -> None:
    """``body[key]`` may be absent or null, else it must be a string."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        errors.add(["body", key], "str type expected", "type_error.str")


def validate_optional_bool(body: Mapping[str, Any], key: str, errors: ValidationErrors) -> None:
    """``body[key]`` may be absent or null, else it must be a boolean."""
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        errors.add(["body", key], "value could not be parsed to a boolean", "type_error.bool")


def validate_callback_url(
    value: Any,
    errors: ValidationErrors,
    *,
    allowed_hosts: frozenset[str] | None,
) -> None:
    """A callback URL must be an absolute http(s) URL to a host the fake may call."""
    loc: Loc = ["body", "callback_url"]
    if not isinstance(value, str):
        errors.add(loc, "str type expected", "type_error.str")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.add(loc, "invalid or missing URL scheme", "value_error.url.scheme")
        return
    if allowed_hosts is not None and parts.hostname.lower() not in allowed_hosts:
        errors.add(
            loc,
            f"the fake Scout only calls back to {sorted(allowed_hosts)}, not {parts.hostname!r}",
            "value_error.url.host",
        )


def _validate_content(content: Any, loc: Loc, errors: ValidationErrors) -> None:
    if isinstance(content, str):
        return
    if isinstance(content, dict):
        if content.get("type", "drive_file") != "drive_file":
            errors.add([*loc, "type"], "unexpected value; permitted: 'drive_file'", "value_error")
        if not isinstance(content.get("path"), str):
            errors.missing([*loc, "path"])
        return
    if isinstance(content, list):
        for index, part in enumerate(content):
            if isinstance(part, list):
                errors.add([*loc, index], "str or drive_file expected", "type_error")
            else:
                _validate_content(part, [*loc, index], errors)
        return
    errors.add(loc, "str, drive_file or a list of them expected", "type_error")


def _validate_messages(value: Any, errors: ValidationErrors) -> None:
    loc: Loc = ["body", "messages"]
    if not isinstance(value, list):
        errors.add(loc, "value is not a valid list", "type_error.list")
        return
    if not value:
        errors.add(
            loc, "ensure this value has at least 1 items", "value_error.list.min_items", limit=1
        )
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            errors.add([*loc, index], "value is not a valid dict", "type_error.dict")
        elif "content" not in message:
            errors.missing([*loc, index, "content"])
        else:
            _validate_content(message["content"], [*loc, index, "content"], errors)


def _validate_tags(value: Any, errors: ValidationErrors) -> None:
    loc: Loc = ["body", "tags"]
    if value is None:
        return
    if not isinstance(value, list):
        errors.add(loc, "value is not a valid list", "type_error.list")
        return
    if len(value) > MAX_TAGS:
        errors.add(
            loc,
            f"ensure this value has at most {MAX_TAGS} items",
            "value_error.list.max_items",
            limit_value=MAX_TAGS,
        )
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            errors.add([*loc, index], "str type expected", "type_error.str")
        elif len(tag) > MAX_TAG_LENGTH:
            errors.add(
                [*loc, index],
                f"ensure this value has at most {MAX_TAG_LENGTH} characters",
                "value_error.any_str.max_length",
                limit_value=MAX_TAG_LENGTH,
            )
        elif not _TAG_RE.match(tag):
            errors.add(
                [*loc, index],
                'string does not match regex "^[a-z0-9:_-]+$"',
                "value_error.str.regex",
                pattern="^[a-z0-9:_-]+$",
            )


def validate_agent_body(
    body: Mapping[str, Any],
    errors: ValidationErrors,
    *,
    callback_required: bool,
    allow_message: bool,
    allowed_callback_hosts: frozenset[str] | None,
) -> None:
    """Validate an interaction request body (``messages`` or, with ``allow_message``, the
    guide's single ``message`` string; ``callback_url``; ``metadata``; ``variables``; ``tags``).
    """
    if allow_message and "messages" not in body:
        message = body.get("message")
        if "message" not in body:
            errors.missing(["body", "message"])
        elif not isinstance(message, str):
            errors.add(["body", "message"], "str type expected", "type_error.str")
        elif not message.strip():
            errors.add(
                ["body", "message"],
                "ensure this value has at least 1 characters",
                "value_error.any_str.min_length",
                limit_value=1,
            )
    elif "messages" not in body:
        errors.missing(["body", "messages"])
    else:
        _validate_messages(body["messages"], errors)
    if "callback_url" in body and (body["callback_url"] is not None or callback_required):
        validate_callback_url(body["callback_url"], errors, allowed_hosts=allowed_callback_hosts)
    elif callback_required:
        errors.missing(["body", "callback_url"])
    validate_optional_object(body, "metadata", errors)
    validate_optional_object(body, "variables", errors)
    _validate_tags(body.get("tags"), errors)


def validate_environment(environment: str | None, errors: ValidationErrors) -> None:
    """The ``environment`` query parameter, when given, must be a documented environment."""
    if environment is not None and environment not in ENVIRONMENTS:
        errors.add(
            ["query", "environment"],
            "value is not a valid enumeration member; permitted: "
            + ", ".join(f"'{name}'" for name in sorted(ENVIRONMENTS)),
            "type_error.enum",
            enum_values=sorted(ENVIRONMENTS),
        )
