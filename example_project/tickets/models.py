"""A support ticket: the host record an interaction is attached to as its ``subject``."""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class Ticket(models.Model):
    """A customer's support ticket, triaged by a Scout agent."""

    class Triage(models.TextChoices):
        NEW = "new", "new"
        WAITING = "waiting", "waiting for Scout"
        TRIAGED = "triaged", "triaged"
        NEEDS_HUMAN = "needs_human", "needs a human"

    subject = models.CharField(max_length=200)
    body = models.TextField()
    customer_email = models.EmailField()
    triage = models.CharField(max_length=16, choices=Triage.choices, default=Triage.NEW)
    scout_summary = models.TextField(blank=True, default="")
    scout_error = models.TextField(blank=True, default="")
    routed_to = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    def get_absolute_url(self) -> str:
        """The ticket page (the admin links it as "View on site")."""
        return reverse("ticket-detail", kwargs={"pk": self.pk})
