"""System checks: ``manage.py check`` reports a broken ``settings.SCOUT`` before anything runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import build_settings


@checks.register(checks.Tags.compatibility)
def check_scout_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``settings.SCOUT`` and report each problem as ``django_scout.E001``."""
    try:
        build_settings(getattr(settings, "SCOUT", None))
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="See the django-scout settings documentation.",
                id="django_scout.E001",
            )
        ]
    return []
