"""Rows written by the signal recorder, and a host record used as a ``subject``."""

from __future__ import annotations

from django.db import models


class SignalRecord(models.Model):
    """One signal sent: its name and the pk of the object it carried."""

    name = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    status = models.CharField(max_length=32, blank=True, default="")
    event_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name}({self.object_id})"


class Document(models.Model):
    """A host record to attach interactions to."""

    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
