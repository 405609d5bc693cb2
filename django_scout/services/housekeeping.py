"""Housekeeping across interactions and workflow runs: reconcile and prune."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils import timezone

from .common import ReconcileReport
from .interactions import prune_interactions, reconcile_interactions
from .reconcile_record import record_reconcile
from .workflows import prune_runs, reconcile_runs

__all__ = ["ReconcileReport", "prune", "reconcile"]

logger = logging.getLogger("django_scout")


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """Repair what a down broker, a dead worker or a lost callback left behind.

    - pending interactions and runs never claimed, and callback deliveries not processed,
      whose ``next_attempt_at`` has come (``RECONCILE_GRACE`` after they were created or
      received, then after pauses that double up to an hour): their task is enqueued again
      (the broker was down, or an orphan callback's interaction has since been accepted);
    - callback deliveries still unprocessed ``CALLBACK_DEADLINE`` after they arrived:
      abandoned;
    - streamed interactions and runs not finished whose worker has stored no event (nor, before
      the first, claimed them) for ``STREAM_IDLE_TIMEOUT``: failed with
      ``error_code="stream_interrupted"`` (the worker reading the stream has most likely died;
      the stream cannot be resumed nor sent again);
    - interactions accepted (or started but unconfirmed) longer than ``CALLBACK_DEADLINE`` ago
      and not finished: failed with ``error_code="callback_timeout"``;
    - runs started longer than ``RUN_DEADLINE`` ago with no outcome: failed with
      ``error_code="run_timeout"``.

    Every query is indexed and reads a bounded batch: a run with nothing due is a handful of
    queries whatever the history. The two halves, interactions and runs, are independent: an
    error in one is logged and raised once the other has run, so it never keeps the other's
    rows from ending.
    """
    now = now or timezone.now()
    report = ReconcileReport()
    halves = (("interactions", reconcile_interactions), ("runs", reconcile_runs))
    errors = [
        error
        for what, half in halves
        if (error := _reconcile_half(what, half, now, report)) is not None
    ]
    if errors:
        raise errors[0]
    record_reconcile(report)
    return report


def _reconcile_half(
    what: str,
    half: Callable[[datetime, ReconcileReport], None],
    now: datetime,
    report: ReconcileReport,
) -> Exception | None:
    """Reconcile ``what`` with ``half``; an error it raises is logged and returned, not raised."""
    try:
        half(now, report)
    except Exception as exc:
        logger.error(
            "django-scout: reconciling %s failed; the rest of reconcile still runs",
            what,
            exc_info=exc,
        )
        return exc
    return None


def prune(older_than_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete the events of interactions and runs finished more than ``older_than_days`` ago
    (events stored before then) and the callback deliveries that ended before then
    (processed, failed or abandoned).

    Interactions and runs themselves are kept (they are the host's record); pending
    deliveries are never deleted. The cost follows what is deleted, not the history kept.
    Returns how many ``events``, ``run_events`` and ``deliveries`` went.
    """
    if older_than_days < 0:
        raise ValueError("older_than_days must be zero or more")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    counts = prune_interactions(cutoff)
    return {
        "events": counts["events"],
        "run_events": prune_runs(cutoff),
        "deliveries": counts["deliveries"],
    }
