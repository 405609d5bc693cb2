"""Django app configuration for django-scout."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoScoutConfig(AppConfig):
    """Registers django-scout; settings are validated lazily on first use."""

    name = "django_scout"
    verbose_name = "Scout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the settings cache to ``setting_changed`` so ``override_settings`` works."""
        from . import checks, conf

        conf.connect_signals()
        del checks  # imported for its @register side effect
