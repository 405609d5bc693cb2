"""The bare view's plain table (created with ``migrate --run-syncdb``: no migrations)."""

from __future__ import annotations

from django.db import models


class BareCallback(models.Model):
    """One stored callback: its event id (unique, as a deduplicating receiver needs) and body."""

    event_id = models.CharField(max_length=255, unique=True)
    body = models.TextField()
    received_at = models.DateTimeField()

    class Meta:
        app_label = "bare_callback"

    def __str__(self) -> str:
        return self.event_id
