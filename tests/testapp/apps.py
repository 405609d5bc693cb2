"""Connects the signal recorder."""

from __future__ import annotations

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Records signals so tests can count them even when a Celery worker sent them."""

    name = "tests.testapp"
    label = "scout_testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect a recorder to each django-scout signal."""
        from . import receivers

        receivers.connect_all()
