"""Work that is due again: what reconcile enqueues and what it ends, in bounded batches.

Every query here is served by an index and reads at most :data:`BATCH` rows, so a reconcile run
costs a few queries when nothing is due and grows with the work that is due, never with the
history.

- :func:`requeue_due` enqueues the task of each row whose ``next_attempt_at`` has come and
  pushes the row back by :func:`requeue_delay` (a pause that doubles with the row's age, at
  most an hour), so a backlog is republished after ever longer pauses, never on every run;
- :func:`fail_overdue` moves rows past their deadline to ``failed`` in batches: the batch is
  locked (``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it), updated with one
  statement, and its signals are sent after the commit with the rows read in one query;
- :func:`fail_idle_streams` is the idle deadline of a stream a worker reads to its end: a row
  whose ``stream_progress_at`` (written by the claim, :func:`progress_at_claim`, and with each
  stored event) is older than ``STREAM_IDLE_TIMEOUT`` has lost its worker, and is failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from django.db import transaction
from django.db.models import Case, F, Model, QuerySet, Value, When
from django.dispatch import Signal

from ..conf import scout_settings
from ..models import OPEN_STREAM
from .common import STREAM_INTERRUPTED, enqueue_after_commit, send_robust
from .live import notify_changed

__all__ = [
    "BATCH",
    "MAX_REQUEUE_INTERVAL",
    "fail_idle_streams",
    "fail_overdue",
    "progress_at_claim",
    "requeue_delay",
    "requeue_due",
]

#: Rows read, updated or enqueued per query.
BATCH = 500

#: The longest pause between two enqueues of work that is still due.
MAX_REQUEUE_INTERVAL = timedelta(hours=1)


def requeue_delay(age: timedelta) -> timedelta:
    """How long work of ``age`` waits before reconcile enqueues it again.

    ``RECONCILE_GRACE`` doubled until it reaches the work's age, at most an hour: work is
    enqueued again after about as long as it has already waited.
    """
    delay = max(timedelta(seconds=scout_settings().RECONCILE_GRACE), timedelta(seconds=1))
    while delay < age and delay < MAX_REQUEUE_INTERVAL:
        delay *= 2
    return min(delay, MAX_REQUEUE_INTERVAL)


def requeue_due(
    queryset: QuerySet[Any],
    since_field: str,
    now: datetime,
    task: Task[..., Any],
    as_arg: Callable[[Any], Any] = str,
    index_order: Sequence[str] = ("next_attempt_at",),
) -> list[Any]:
    """Enqueue ``task`` for every row of ``queryset`` whose ``next_attempt_at`` has come.

    ``since_field`` is when the work began (its age sets the next pause); ``as_arg`` turns a
    primary key into the task's argument. Returns the primary keys enqueued. Two queries per
    :data:`BATCH` rows, plus one per distinct pause.

    ``index_order`` is the columns of the index that holds the due rows, ending with
    ``next_attempt_at``: the batches are read in that order so that the database reads the
    index in order and stops after a batch. A column before it that ``queryset`` pins with
    ``IS NULL`` must be named, since PostgreSQL does not count that as fixing its value (and
    then sorts every due row for every batch).
    """
    requeued: list[Any] = []
    seen: set[Any] = set()
    due = queryset.filter(next_attempt_at__lte=now).order_by(*index_order)
    while True:
        rows = list(due.values_list("pk", since_field)[:BATCH])
        # A task run inline (eager mode) may make a row due again; each goes once per run.
        batch = [(pk, since) for pk, since in rows if pk not in seen]
        if not batch:
            return requeued
        seen.update(pk for pk, _ in batch)
        by_delay: dict[timedelta, list[Any]] = {}
        for pk, since in batch:
            by_delay.setdefault(requeue_delay(now - since), []).append(pk)
        for delay, pks in by_delay.items():
            queryset.model.objects.filter(pk__in=pks).update(next_attempt_at=now + delay)
        for pk, _ in batch:
            requeued.append(pk)
            enqueue_after_commit(task, as_arg(pk))
        if len(rows) < BATCH:
            return requeued


def fail_overdue(
    *candidates: QuerySet[Any],
    signal_queryset: QuerySet[Any],
    kwarg: str,
    signals_to_send: Iterable[Signal],
    **fields: Any,
) -> list[str]:
    """Set ``fields`` (a ``failed`` status and its error) on every row of each of ``candidates``.

    Each queryset must select rows that ``fields`` takes out of it (their status changes), so
    each batch is new, and be ordered by its deadline column, so that the database reads the
    deadline index in order rather than the whole table. Each batch is one transaction: lock,
    one ``UPDATE``, and ``signals_to_send`` sent after the commit with the rows read from
    ``signal_queryset`` in one query.
    Returns the primary keys changed, as strings.
    """
    changed: list[str] = []
    to_send = tuple(signals_to_send)
    for queryset in candidates:
        while True:
            with transaction.atomic():
                pks = list(
                    queryset.select_for_update(skip_locked=True).values_list("pk", flat=True)[
                        :BATCH
                    ]
                )
                if not pks:
                    break
                queryset.filter(pk__in=pks).update(**fields)
                notify_changed(queryset.model, *pks)
                _signal_each_after_commit(signal_queryset, pks, kwarg, to_send)
            changed.extend(str(pk) for pk in pks)
    return changed


def progress_at_claim(now: datetime) -> Case:
    """What a claim writes to ``stream_progress_at``: ``now`` for a streamed row, whose worker
    is about to read its stream (the idle deadline runs from here until the first event), and
    nothing for another row."""
    return Case(When(stream=True, then=Value(now)), default=F("stream_progress_at"))


def idle_cutoff(now: datetime) -> datetime:
    """The last ``stream_progress_at`` of an open streamed row that reconcile fails as idle at
    ``now`` (``STREAM_IDLE_TIMEOUT`` before it)."""
    return now - timedelta(seconds=scout_settings().STREAM_IDLE_TIMEOUT)


def fail_idle_streams(
    model: type[Model],
    now: datetime,
    *,
    signal_queryset: QuerySet[Any],
    kwarg: str,
    signals_to_send: Iterable[Signal],
    **fields: Any,
) -> list[str]:
    """Fail the streamed rows of ``model`` (``Interaction`` or ``WorkflowRun``) that no worker
    has stored an event of for ``STREAM_IDLE_TIMEOUT`` seconds: the worker reading the stream
    has most likely died.

    A row that has not ended (:data:`~django_scout.models.OPEN_STREAM`, read through the
    model's ``*_stream_idle`` partial index) whose ``stream_progress_at`` is older than the
    timeout is failed with ``error_code="stream_interrupted"`` and ``completed_at=now``, plus
    ``fields`` (the ``failed`` status and what else the model needs), by :func:`fail_overdue`.
    A worker still reading such a row changes nothing afterwards: every transition it would
    make is conditional on a status the row has left. Returns the primary keys changed, as
    strings.
    """
    timeout = scout_settings().STREAM_IDLE_TIMEOUT
    idle = model._default_manager.filter(OPEN_STREAM, stream_progress_at__lte=idle_cutoff(now))
    return fail_overdue(
        idle.order_by("stream_progress_at"),
        signal_queryset=signal_queryset,
        kwarg=kwarg,
        signals_to_send=signals_to_send,
        error_code=STREAM_INTERRUPTED,
        error_message=(
            f"no event arrived for STREAM_IDLE_TIMEOUT ({timeout}s); "
            "the worker reading the stream may have died"
        ),
        completed_at=now,
        **fields,
    )


def _signal_each_after_commit(
    queryset: QuerySet[Any], pks: list[Any], kwarg: str, to_send: tuple[Signal, ...]
) -> None:
    def send() -> None:
        for obj in queryset.filter(pk__in=pks):
            for signal in to_send:
                send_robust(signal, queryset.model, **{kwarg: obj})

    transaction.on_commit(send)
