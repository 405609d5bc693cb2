"""The example host app: support tickets that ask a Scout agent for help."""

from __future__ import annotations

from django.apps import AppConfig


class TicketsConfig(AppConfig):
    """Connects the signal receivers that write Scout's outcome back onto tickets."""

    name = "tickets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Import the receivers module for its ``@receiver`` side effects."""
        from . import receivers

        del receivers
