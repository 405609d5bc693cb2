"""``{% load scout_live %}``: a drop-in live progress widget for an interaction or a run.

``{% scout_live obj %}`` renders, on the server, ``obj``'s status badge, its last stored events
and (once terminal) its outcome; the static script ``django_scout/live.js`` then follows the
live relay (``live/interactions/<id>/``, ``live/runs/<id>/``) with ``EventSource``: it appends
each new event, updates the badge, shows the outcome on ``end`` and stops. Without JavaScript
the server-rendered part stays, with a link that reloads the page.

The tag asks ``LIVE_PERMISSION(request, obj)`` with the template context's ``request``; a viewer
it refuses (or a context without ``request``) gets the status badge alone: no events, no live
URL. Event data are untrusted: the template escapes them, and the script only sets
``textContent``. Neither the markup nor the script holds inline JavaScript or styles, so a
Content-Security-Policy of ``script-src 'self'`` suffices.

* ``{% scout_live obj %}`` — the widget, with its stylesheet and script tags;
* ``{% scout_live obj events=20 %}`` — show at most the last 20 events (default
  :data:`DEFAULT_EVENTS`; the live timeline keeps the same bound);
* ``{% scout_live obj assets=False %}`` — without the stylesheet and script tags, for a page
  that puts ``{% scout_live_assets %}`` in its ``<head>`` once.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from ..live import may_watch, target_of
from ..models import Interaction, WorkflowRun

__all__ = ["DEFAULT_EVENTS", "SUMMARY_LENGTH", "event_summary", "scout_live", "scout_live_assets"]

register = template.Library()

#: Events the widget shows unless the tag says otherwise.
DEFAULT_EVENTS = 50
#: Characters of an event's summary (``live.js`` cuts at the same length).
SUMMARY_LENGTH = 160
#: Keys whose string value is an event's summary, looked up in ``data`` then ``data["data"]``
#: (``live.js`` looks up the same ones).
SUMMARY_KEYS = ("text", "content", "message")


def event_summary(data: Any) -> str:
    """One line describing an event's ``data``: its text, else its compact JSON, cut short."""
    for holder in (data, data.get("data") if isinstance(data, dict) else None):
        if isinstance(holder, dict):
            for key in SUMMARY_KEYS:
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return _cut(value.strip())
    if data is None or data == "":
        return ""
    text = (
        data
        if isinstance(data, str)
        else json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    )
    return _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


def _clock(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%H:%M:%S")


@register.simple_tag(takes_context=True)
def scout_live(
    context: template.Context,
    obj: Interaction | WorkflowRun | None,
    events: int = DEFAULT_EVENTS,
    assets: bool = True,
) -> SafeString:
    """The live progress widget of ``obj`` (an ``Interaction`` or a ``WorkflowRun``; ``None``
    renders nothing). See the module docs for the arguments and who sees what."""
    if obj is None:
        return SafeString("")
    target = target_of(obj)
    limit = max(int(events), 1)
    request = context.get("request")
    allowed = isinstance(request, HttpRequest) and may_watch(request, obj)
    # The status first, then the events: a terminal status comes with every event before it.
    status = target.status(obj.pk) or {"status": obj.status, "error_code": "", "completed_at": None}
    terminal = status["status"] in target.terminal
    rows: list[dict[str, Any]] = []
    if allowed:
        for sequence, name, data, timestamp, created_at in target.last_events(obj.pk, limit):
            moment = timestamp or created_at
            rows.append(
                {
                    "sequence": sequence,
                    "name": name,
                    "summary": event_summary(data),
                    "datetime": moment.isoformat() if moment else "",
                    "clock": _clock(moment),
                }
            )
    widget = {
        "kind": target.kind,
        "id": str(obj.pk),
        "status": status["status"],
        "error_code": status["error_code"] or "",
        "terminal": terminal,
        "allowed": allowed,
        "events": rows,
        "limit": limit,
        "live_url": target.live_url(obj.pk) if allowed and not terminal else "",
        "last_event_id": rows[-1]["sequence"] if rows else "",
    }
    return SafeString(
        render_to_string("django_scout/live_widget.html", {"widget": widget, "assets": assets})
    )


@register.inclusion_tag("django_scout/live_assets.html")
def scout_live_assets() -> dict[str, Any]:
    """The widget's stylesheet and script tags (for ``{% scout_live obj assets=False %}``)."""
    return {}
