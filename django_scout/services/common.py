"""Helpers shared by the services: the Scout client, signals and task enqueueing after commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import signals
from ..client import ScoutAPIError, ScoutClient, ScoutError
from ..payloads import check_instant
from .publishing import publisher

logger = logging.getLogger("django_scout")

#: Builds the client every service uses; tests and embedders may replace it.
client_factory: Callable[[], ScoutClient] = ScoutClient.from_settings


def get_client() -> ScoutClient:
    """A client from :data:`client_factory` (looked up at call time, so it can be swapped)."""
    return client_factory()


def send_robust(signal: Signal, sender: type[models.Model], **kwargs: Any) -> None:
    """Send ``signal``; a receiver that raises is logged with its traceback, nothing more."""
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "django-scout signal receiver %r raised; the transition stands",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )


def signal_after_commit(queryset: QuerySet[Any], pk: Any, kwarg: str, *names: str) -> None:
    """Send the named :mod:`django_scout.signals`, in order, once the transaction commits.

    The row is read from ``queryset`` after the commit, so receivers see the transition; it is
    passed to them as ``kwarg`` (``interaction`` or ``run``) with its model as the sender.
    """

    def send() -> None:
        obj = queryset.get(pk=pk)
        for name in names:
            send_robust(getattr(signals, name), queryset.model, **{kwarg: obj})

    transaction.on_commit(send)


class RetryLater(Exception):
    """A request to Scout provably started nothing; the task may send it again later."""

    def __init__(self, error: ScoutError) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after: float | None = getattr(error, "retry_after", None)


#: Database errors worth retrying (a locked SQLite file, a dropped connection).
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)


#: ``error_code`` for the HTTP statuses Scout refuses a request with.
_STATUS_ERROR_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    422: "validation_error",
    429: "rate_limited",
}


def error_code_for(exc: ScoutError) -> str:
    """The ``error_code`` stored when a Scout request fails with ``exc``."""
    if isinstance(exc, ScoutAPIError):
        return _STATUS_ERROR_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return "scout_unavailable"


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string (or a datetime).

    ``None`` when it is neither, or lies outside the range a database column can take without
    overflowing (see :func:`django_scout.payloads.check_instant`).
    """
    candidate: datetime | None = None
    if isinstance(value, datetime):
        candidate = value
    elif isinstance(value, str) and value:
        try:
            candidate = parse_datetime(value)
        except ValueError:
            return None
    if candidate is None:
        return None
    try:
        check_instant(candidate)
    except ValueError:
        return None
    return aware(candidate)


def enqueue_after_commit(task_name: str, *args: Any) -> None:
    """Enqueue a task once the transaction commits, never waiting long on the broker.

    Goes through :data:`.publishing.publisher`: a broker failure is logged, not raised, and the
    work it would have done is found again by reconcile.
    """

    def send() -> None:
        from .. import tasks

        publisher.publish(getattr(tasks, task_name), args)

    transaction.on_commit(send)


def aware(value: datetime | None) -> datetime | None:
    """``value`` made timezone-aware (UTC) when it is naive."""
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, dt_timezone.utc)
    return value


#: Rows deleted per statement by :func:`delete_in_batches`.
DELETE_BATCH = 2000


def delete_in_batches(queryset: QuerySet[Any]) -> int:
    """Delete every row of ``queryset``, :data:`DELETE_BATCH` at a time; returns how many.

    Each batch is one ``SELECT`` of primary keys and one ``DELETE``, so a large prune never
    holds one huge transaction, and a prune with nothing to delete is one query.
    """
    deleted: int = 0
    model = queryset.model
    while True:
        pks = list(queryset.order_by().values_list("pk", flat=True)[:DELETE_BATCH])
        if not pks:
            return deleted
        count: int = model.objects.filter(pk__in=pks).delete()[0]
        deleted += count
        if len(pks) < DELETE_BATCH:
            return deleted


@dataclass
class ReconcileReport:
    """What reconcile found and did (ids as strings, delivery ids as ints)."""

    requeued_starts: list[str] = field(default_factory=list)
    requeued_deliveries: list[int] = field(default_factory=list)
    abandoned_deliveries: int = 0
    timed_out: list[str] = field(default_factory=list)
    requeued_runs: list[str] = field(default_factory=list)
    timed_out_runs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "requeued_starts": self.requeued_starts,
            "requeued_deliveries": self.requeued_deliveries,
            "abandoned_deliveries": self.abandoned_deliveries,
            "timed_out": self.timed_out,
            "requeued_runs": self.requeued_runs,
            "timed_out_runs": self.timed_out_runs,
        }
