"""How the admin shows values: times, durations, status badges, JSON and links — one way each.

Every page uses these, so a time or a duration reads the same in a list, on a detail page and
in an event timeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import formatting
from ..services.scrubbing import scrub_json

__all__ = [
    "EMPTY",
    "JSON_PREVIEW_CHARS",
    "admin_link",
    "admin_url",
    "badge",
    "format_duration",
    "format_time",
    "json_column",
    "pretty_json",
    "short_text",
    "time_column",
]

#: What an empty value looks like everywhere.
EMPTY = "—"

#: JSON longer than this is shown folded, and cut to this length on pages listing many values.
JSON_PREVIEW_CHARS = 4000

#: Status and state values and the badge colour each gets (the text is always shown too).
BADGE_TONES = {
    "pending": "waiting",
    "accepted": "active",
    "running": "active",
    "succeeded": "good",
    "processed": "good",
    "failed": "bad",
    "abandoned": "bad",
}


def format_time(value: datetime | None, *, milliseconds: bool = False) -> str:
    """``value`` in the current time zone, to the second (or millisecond).

    ``2026-11-28 14:03:09`` (``2026-11-28 14:03:09.250`` with ``milliseconds``).
    """
    if value is None:
        return EMPTY
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if milliseconds:
        text += f".{local.microsecond // 1000:03d}"
    return text


def time_column(
    field: str, description: str, *, milliseconds: bool = False, ordering: str | None = None
) -> Callable[[Any, Any], str]:
    """An admin column (or read-only field) showing ``field`` with :func:`format_time`."""

    def show(model_admin: Any, obj: Any) -> str:
        return format_time(getattr(obj, field), milliseconds=milliseconds)

    show.__doc__ = f"``{field}``, to the {'millisecond' if milliseconds else 'second'}."
    return admin.display(description=description, ordering=ordering)(show)


def json_column(field: str, description: str) -> Callable[[Any, Any], SafeString]:
    """A read-only field showing ``field`` with :func:`pretty_json` (scrubbed, folded if long)."""

    def show(model_admin: Any, obj: Any) -> SafeString:
        return pretty_json(getattr(obj, field))

    show.__doc__ = f"``{field}`` as indented JSON."
    return admin.display(description=description)(show)


def format_duration(seconds: float | None) -> str:
    """A duration rounded the same way everywhere, or ``—``.

    See :func:`django_scout.formatting.format_duration`.
    """
    return EMPTY if seconds is None else formatting.format_duration(seconds)


def badge(value: str, label: str | None = None) -> SafeString:
    """A status badge: colour *and* text, so it reads without colour too."""
    tone = BADGE_TONES.get(value, "neutral")
    return format_html(
        '<span class="scout-badge scout-badge--{}">{}</span>', tone, label or value or EMPTY
    )


def pretty_json(value: Any, *, limit: int | None = None) -> SafeString:
    """``value`` as indented JSON, scrubbed of credentials (what Scout sent is stored verbatim).

    Longer than :data:`JSON_PREVIEW_CHARS` it is folded in a ``<details>``; with ``limit`` it is
    also cut to that many characters (the page that shows it whole is linked by the caller).
    """
    if value is None:
        return format_html("<span>{}</span>", EMPTY)
    text = json.dumps(scrub_json(value), indent=2, sort_keys=True, ensure_ascii=False)
    cut = limit is not None and len(text) > limit
    shown = text[:limit] + "\n…" if cut and limit is not None else text
    block = format_html('<pre class="scout-json">{}</pre>', shown)
    if len(text) <= JSON_PREVIEW_CHARS and not cut:
        return block
    summary = f"{_json_summary(value)} · {len(text):,} characters" + (" (cut)" if cut else "")
    return format_html(
        '<details class="scout-json-fold"><summary>{}</summary>{}</details>', summary, block
    )


def _json_summary(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:5])
        return f"object: {keys}{', …' if len(value) > 5 else ''}"
    if isinstance(value, list):
        return f"list of {len(value)}"
    return type(value).__name__


def short_text(text: str, length: int) -> SafeString | str:
    """``text`` cut to ``length`` characters, whole in its tooltip when cut."""
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: length - 1])


def admin_url(obj: models.Model, view: str = "change") -> str | None:
    """The admin URL of ``obj`` (``None`` when its model is not in the admin)."""
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[quote(obj.pk)])
    except NoReverseMatch:
        return None


def admin_link(obj: models.Model | None, text: str | None = None) -> SafeString | str:
    """A link to ``obj``'s admin page, or its text when it has none."""
    if obj is None:
        return EMPTY
    label = text if text is not None else str(obj)
    url = admin_url(obj)
    return format_html('<a href="{}">{}</a>', url, label) if url else label


def link_list(items: list[tuple[str, str]]) -> SafeString:
    """``[(url, text), …]`` as a comma-separated list of links."""
    return format_html_join(", ", '<a href="{}">{}</a>', items)
