"""When reconcile last ran and what it did, kept in Django's default cache (no table, no migration).

:func:`record_reconcile` is called at the end of every :func:`~.housekeeping.reconcile`; the
admin dashboard reads it back with :func:`last_reconcile`. The record is only as shared as the
cache: with the default per-process ``LocMemCache`` a reconcile run by Celery beat or
``scout_reconcile`` in another process is not seen by the web process (the dashboard says so).
Recording never makes reconcile fail: a cache error is logged and ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .common import ReconcileReport

__all__ = ["LAST_RECONCILE_KEY", "ReconcileRecord", "last_reconcile", "record_reconcile"]

logger = logging.getLogger("django_scout")

#: The default cache's key holding the last reconcile's record.
LAST_RECONCILE_KEY = "django_scout:last_reconcile"


@dataclass(frozen=True)
class ReconcileRecord:
    """When a reconcile finished and how much it did."""

    at: datetime
    requeued: int
    timed_out: int
    abandoned: int

    def as_dict(self) -> dict[str, Any]:
        """The cached form: plain JSON types, whatever serializer the cache uses."""
        return {
            "at": self.at.isoformat(),
            "requeued": self.requeued,
            "timed_out": self.timed_out,
            "abandoned": self.abandoned,
        }

    @classmethod
    def from_report(cls, report: ReconcileReport, at: datetime) -> ReconcileRecord:
        """The counts of ``report``, finished at ``at``."""
        return cls(
            at=at,
            requeued=len(report.requeued_starts)
            + len(report.requeued_deliveries)
            + len(report.requeued_runs),
            timed_out=len(report.timed_out) + len(report.timed_out_runs),
            abandoned=report.abandoned_deliveries,
        )


def record_reconcile(report: ReconcileReport) -> None:
    """Remember that a reconcile just finished with ``report`` (never raises)."""
    record = ReconcileRecord.from_report(report, timezone.now())
    try:
        cache.set(LAST_RECONCILE_KEY, record.as_dict(), timeout=None)
    except Exception:  # the cache is a convenience; reconcile's work is done either way
        logger.warning("django-scout: could not record the reconcile in the cache", exc_info=True)


def last_reconcile() -> ReconcileRecord | None:
    """The last recorded reconcile, or ``None`` if the cache holds none (or cannot be read)."""
    try:
        value = cache.get(LAST_RECONCILE_KEY)
    except Exception:
        logger.warning("django-scout: could not read the last reconcile", exc_info=True)
        return None
    if not isinstance(value, dict):
        return None
    try:
        at = parse_datetime(value["at"])
        counts = [int(value[key]) for key in ("requeued", "timed_out", "abandoned")]
    except (KeyError, TypeError, ValueError):
        return None
    if at is None:
        return None
    return ReconcileRecord(at, *counts)
