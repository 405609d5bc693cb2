"""URLs of django-scout: ``path("scout/", include("django_scout.urls"))``.

- ``callbacks/<interaction id>/`` — the callback URL each interaction is started with;
- ``callbacks/`` — a callback matched by its ``session_id`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import path

from .views import CallbackView

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
]
