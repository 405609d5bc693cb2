"""URLs of django-scout: ``path("scout/", include("django_scout.urls"))``.

- ``callbacks/<interaction id>/`` — the callback URL each interaction is started with;
- ``callbacks/`` — a callback matched by its ``session_id`` alone;
- ``live/interactions/<interaction id>/`` (``live-interaction``) and ``live/runs/<run id>/``
  (``live-run``) — Server-Sent Events streams of one row's status and events, for viewers
  ``LIVE_PERMISSION`` allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import path

from .views import CallbackView, live_interaction, live_run

app_name = "django_scout"


def _public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Exempt the view from Django 5.1+'s ``LoginRequiredMiddleware`` (Scout has no login)."""
    try:
        from django.contrib.auth.decorators import (  # type: ignore[attr-defined,unused-ignore]
            login_not_required,
        )
    except ImportError:  # Django < 5.1 has no LoginRequiredMiddleware
        return view
    return login_not_required(view)  # type: ignore[no-any-return,unused-ignore]


callback_view = _public(CallbackView.as_view())

urlpatterns = [
    path("callbacks/", callback_view, name="callback"),
    path("callbacks/<uuid:interaction_id>/", callback_view, name="interaction-callback"),
    path("live/interactions/<uuid:interaction_id>/", live_interaction, name="live-interaction"),
    path("live/runs/<uuid:run_id>/", live_run, name="live-run"),
]
