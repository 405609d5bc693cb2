"""Helpers shared by the services: the Scout client, signals and task enqueueing after commit."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

from asgiref.sync import async_to_sync
from celery import Task
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..client import ScoutAPIError, ScoutClient, ScoutError
from ..payloads import check_instant
from .publishing import publisher
from .scrubbing import scrub_text

logger = logging.getLogger("django_scout")

#: Builds the client every service uses; tests and embedders may replace it.
client_factory: Callable[[], ScoutClient] = ScoutClient.from_settings


def get_client() -> ScoutClient:
    """A client from :data:`client_factory` (looked up at call time, so it can be swapped)."""
    return client_factory()


def send_robust(signal: Signal, sender: type[models.Model], **kwargs: Any) -> None:
    """Send ``signal``; a receiver that raises is logged with its traceback, nothing more.

    Receivers may be ``async def`` functions. Django 5.0+ awaits them itself; Django 4.2 only
    calls them, so the coroutine it hands back is awaited here (see :func:`_await_robust`).
    """
    for receiver, response in signal.send_robust(sender=sender, **kwargs):
        result = _await_robust(response) if inspect.isawaitable(response) else response
        if isinstance(result, Exception):
            logger.error(
                "django-scout signal receiver %r raised; the transition stands",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )


def _await_robust(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` from this synchronous code; its exception is returned, not raised.

    ``async_to_sync`` runs it on an event loop, and the receiver's ``sync_to_async`` database
    calls come back to this thread, so they share its connection, as Django 5's
    ``Signal.send_robust`` does for async receivers.
    """

    async def wait() -> Any:
        try:
            return await awaitable
        except Exception as exc:
            return exc

    return async_to_sync(wait)()


def signal_after_commit(
    queryset: QuerySet[Any], pk: Any, kwarg: str, *signals_to_send: Signal
) -> None:
    """Send ``signals_to_send``, in order, once the transaction commits.

    The row is read from ``queryset`` after the commit, so receivers see the transition; it is
    passed to them as ``kwarg`` (``interaction`` or ``run``) with its model as the sender.
    """

    def send() -> None:
        obj = queryset.get(pk=pk)
        for signal in signals_to_send:
            send_robust(signal, queryset.model, **{kwarg: obj})

    transaction.on_commit(send)


class RetryLater(Exception):
    """An attempt failed in a way a later attempt may fix; the task retries it or gives it up.

    Raised by the services a Celery task retries (:func:`.perform_start`, :func:`.perform_run`,
    :func:`.attempt_delivery`), which decide both halves of the rule: when another attempt may
    help (a request to Scout that provably started nothing, a failed event fetch, an unexpected
    error while applying a callback), and what :meth:`give_up` does once the task's retries have
    run out (end the row, so nothing stays pending forever). :attr:`error` is what failed;
    :attr:`retry_after` is Scout's ``Retry-After`` when it sent one.
    """

    def __init__(self, error: Exception, give_up: Callable[[], str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after: float | None = getattr(error, "retry_after", None)
        #: Keyword arguments the next attempt is given (see :class:`OutcomeNotStored`).
        self.retry_kwargs: dict[str, Any] = {}
        self._give_up = give_up

    def give_up(self) -> str:
        """End the work for good (no retries are left); returns the outcome the task reports."""
        return self._give_up()


class Outcome(Protocol):
    """How a row is to end (or move on), as decided once Scout answered: kept until it is
    stored, and carried in a retried task's arguments meanwhile."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for a Celery task's arguments)."""
        ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


class OutcomeNotStored(RetryLater):
    """Scout answered (or a stream ran to its end, or was cut off), but storing the outcome hit
    a transient database error.

    The request is never sent again: the task retries with :attr:`outcome` (its ``as_dict()``
    as the ``outcome`` keyword argument, :attr:`~RetryLater.retry_kwargs`), and the next attempt
    stores it without sending anything. Once no retries are left, :meth:`~RetryLater.give_up`
    stores it one last time, waiting out a brief lock in place (:func:`waiting_out_locks`).
    """

    def __init__(self, outcome: Outcome, error: Exception, give_up: Callable[[], str]) -> None:
        super().__init__(error, give_up)
        self.outcome = outcome
        self.retry_kwargs = {"outcome": outcome.as_dict()}

    def __str__(self) -> str:
        return f"could not store the outcome, kept for the next attempt: {self.error}"


def store_outcome(store: Callable[[OutcomeT], str], outcome: OutcomeT) -> str:
    """``store(outcome)``, or :class:`OutcomeNotStored` carrying ``outcome`` when the database
    fails transiently: the one rule for an outcome learned from a request that must not be sent
    again (interactions' starts and streams, workflow runs). Returns what ``store`` returns."""
    try:
        return store(outcome)
    except TRANSIENT_DATABASE_ERRORS as exc:
        last_try = functools.partial(waiting_out_locks, store, outcome)
        raise OutcomeNotStored(outcome, exc, last_try) from exc


#: Attempts at one idempotent write that cannot simply be retried later (a write while a stream
#: is open, the last attempt at storing an outcome), and the first pause between them.
STREAM_WRITE_ATTEMPTS = 12
STREAM_WRITE_PAUSE = 0.05

R = TypeVar("R")


def waiting_out_locks(write: Callable[..., R], *args: Any) -> R:
    """Run ``write`` (idempotent), retrying it in place on a transient database error.

    For a write that a later task attempt cannot make instead: a stream cannot be resumed once
    its request is sent, so a briefly locked database (SQLite under concurrent writers,
    especially on Django < 5.1 without ``transaction_mode``) is waited out here, with doubling
    pauses (about 3 s in all), before the error propagates.
    """
    pause = STREAM_WRITE_PAUSE
    for attempt in range(STREAM_WRITE_ATTEMPTS):
        try:
            return write(*args)
        except TRANSIENT_DATABASE_ERRORS:
            if attempt == STREAM_WRITE_ATTEMPTS - 1:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
    raise AssertionError("unreachable")


E = TypeVar("E")


class StoredStream(Generic[E]):
    """A stream whose request went to Scout, read so that each event is stored before the next.

    Iterating yields ``(sequence, event)`` (``sequence``: the event's position, from 0) once
    ``store(sequence, event)`` has written it, waiting out a brief lock
    (:func:`waiting_out_locks`). Reading stops early, with :attr:`cut` saying why, when:

    - the stream breaks off after its first event (a :class:`~django_scout.client.ScoutError`;
      one raised before any event propagates, as the start rule decides what it means);
    - the database still refuses an event's writes: that event is yielded all the same (it may
      be the one that ends the stream), then reading stops, since nothing more could be stored.

    :attr:`arrived` counts the events read. Other errors of ``store`` propagate.
    """

    def __init__(self, events: Iterable[E], store: Callable[[int, E], object]) -> None:
        self._events = events
        self._store = store
        self.arrived = 0
        self.cut = ""

    def __iter__(self) -> Iterator[tuple[int, E]]:
        events = iter(self._events)
        while True:
            try:
                event = next(events)
            except StopIteration:
                return
            except ScoutError as exc:
                if not self.arrived:
                    raise
                self.cut = f"the stream broke off: {exc}"
                return
            sequence = self.arrived
            self.arrived += 1
            try:
                waiting_out_locks(self._store, sequence, event)
            except TRANSIENT_DATABASE_ERRORS as exc:
                self.cut = (
                    f"the database refused writes mid-stream ({type(exc).__name__}: {exc}); "
                    "the rest of the stream was not read"
                )
                yield sequence, event
                return
            yield sequence, event


#: ``error_code`` of a row ended because django-scout raised an unexpected error handling it.
PROCESSING_ERROR = "processing_error"

#: ``error_code`` of a streamed row whose stream stopped before its end: it broke off, the
#: database refused its events, or no event arrived for ``STREAM_IDLE_TIMEOUT``.
STREAM_INTERRUPTED = "stream_interrupted"


def unexpected_error_note(what: str, error: BaseException) -> str:
    """The error text stored when ``what`` raised the unexpected ``error`` (scrubbed, bounded)."""
    return scrub_text(f"{what}: {type(error).__name__}: {error}")[:2000]


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


def classify_start_failure(error: ScoutError) -> Literal["retry", "refused", "ambiguous"]:
    """How a request that starts work at Scout (an interaction, a run) failed: the start rule.

    Scout has no idempotency keys, so such a request is sent again only when sending it again
    cannot start the work twice:

    - ``retry``: provably nothing started (the connection failed before the request was sent,
      or Scout answered 429, 502, 503 or 504): the claim is given back and the task sends it
      again later (:class:`RetryLater`);
    - ``refused``: Scout answered another 4xx: the row fails with :func:`error_code_for`;
    - ``ambiguous``: the request may have reached Scout (a read timeout, a connection dropped
      after sending, a 500): it is never sent again.
    """
    if error.retry_safe:
        return "retry"
    if isinstance(error, ScoutAPIError) and 400 <= error.status_code < 500:
        return "refused"
    return "ambiguous"


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string (or a datetime); naive ones are read as UTC.

    ``None`` when it is neither, or lies outside the range a database column can take without
    overflowing (see :func:`django_scout.payloads.check_instant`).
    """
    if isinstance(value, str):
        try:
            candidate = parse_datetime(value) if value else None
        except ValueError:
            return None
        if candidate is None:
            return None
        if candidate.tzinfo is None:  # a parsed time has no zone, or a fixed offset
            candidate = candidate.replace(tzinfo=dt_timezone.utc)
    elif isinstance(value, datetime):
        candidate = aware(value)
    else:
        return None
    # Called for every stored event: the years far from both ends are in range whatever the
    # time zone, and need no conversion to tell.
    if 1 < candidate.year < 9999:
        return candidate
    try:
        check_instant(candidate)
    except ValueError:
        return None
    return candidate


def enqueue_after_commit(task: Task[..., Any], *args: Any) -> None:
    """Enqueue ``task`` (one of :func:`.registry.scout_tasks`) once the transaction commits.

    Never waits long on the broker: the publish goes through :data:`.publishing.publisher`, so a
    broker failure is logged, not raised, and the work it would have done is found again by
    reconcile.
    """
    transaction.on_commit(lambda: publisher.publish(task, args))


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
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
