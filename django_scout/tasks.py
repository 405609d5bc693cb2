"""Celery tasks: thin wrappers that call :mod:`django_scout.services`.

Each task translates a service's outcome into Celery terms: :class:`~.services.RetryLater`
(Scout provably started nothing) and transient database errors become retries with backoff;
the rules themselves live in the services (see :func:`~.services.perform_start` and
:mod:`django_scout.services.workflows`).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task

from . import services
from .client import ScoutError, UntrustedURLError
from .conf import scout_settings

logger = logging.getLogger("django_scout")


def _countdown(retries: int, retry_after: float | None = None) -> float:
    conf = scout_settings()
    delay: float = min(conf.TASK_RETRY_BACKOFF * (2**retries), conf.TASK_RETRY_BACKOFF_MAX)
    delay *= random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), conf.TASK_RETRY_BACKOFF_MAX))
    return delay


R = TypeVar("R")

#: Database errors that are worth retrying (a locked SQLite file, a dropped connection).
TRANSIENT_DATABASE_ERRORS = services.TRANSIENT_DATABASE_ERRORS


def _retries_left(task: Task[Any, Any]) -> bool:
    return bool(task.request.retries < scout_settings().TASK_MAX_RETRIES)


def retry_database_errors(func: Callable[..., R]) -> Callable[..., R]:
    """Retry a bound task with backoff when the database fails transiently.

    Every task is idempotent (claims, conditional updates, unique constraints), so running it
    again after a database error is safe; what the retries cannot fix, reconcile finds.
    """

    @functools.wraps(func)
    def wrapper(self: Task[Any, Any], *args: Any, **kwargs: Any) -> R:
        try:
            return func(self, *args, **kwargs)
        except TRANSIENT_DATABASE_ERRORS as exc:
            if not _retries_left(self):
                raise
            logger.warning("django-scout: %s hit a database error, retrying: %s", self.name, exc)
            raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc

    return wrapper


@shared_task(bind=True, name="django_scout.start_interaction", max_retries=None, acks_late=True)
@retry_database_errors
def start_interaction_task(
    self: Task[Any, Any], interaction_id: str, outcome: dict[str, Any] | None = None
) -> str:
    """Start an interaction at Scout (:func:`~.services.perform_start`).

    ``outcome`` is set only on a retry whose earlier attempt got Scout's answer but could not
    store it: the answer is stored, and the request is never sent again.
    """
    try:
        if outcome is not None:
            return services.store_start_outcome(
                interaction_id, services.StartOutcome.from_dict(outcome)
            )
        return services.perform_start(interaction_id)
    except services.RetryLater as exc:
        if _retries_left(self):
            logger.warning("django-scout: start of %s will be retried: %s", interaction_id, exc)
            delay = _countdown(self.request.retries, exc.retry_after)
            raise self.retry(countdown=delay, exc=exc.error) from exc
        services.give_up_start(interaction_id, exc.error)
        return "failed"
    except services.OutcomeNotStored as exc:
        if not _retries_left(self):
            raise
        logger.warning("django-scout: %s; retrying with the answer", exc)
        raise self.retry(
            args=(interaction_id,),
            kwargs={"outcome": exc.outcome.as_dict()},
            countdown=_countdown(self.request.retries),
            exc=exc,
        ) from exc


class _TryAgain(Exception):
    """An attempt at a delivery failed in a way another attempt may fix."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _apply_delivery(delivery_id: int, retries_left: bool) -> str:
    """One attempt at a stored callback (:func:`~.services.process_delivery`).

    Event-fetch failures and unexpected errors raise :class:`_TryAgain` while ``retries_left``;
    after that the interaction completes without its events, or the delivery is given up
    (:func:`~.services.give_up_delivery`), so it never stays pending forever. Transient database
    errors propagate.
    """
    try:
        try:
            return services.process_delivery(delivery_id)
        except ScoutError as exc:
            if not isinstance(exc, UntrustedURLError) and retries_left:
                logger.warning(
                    "django-scout: event fetch for delivery %s failed: %s", delivery_id, exc
                )
                raise _TryAgain(exc) from exc
            logger.error("django-scout: events for delivery %s are missing: %s", delivery_id, exc)
            return services.process_delivery(delivery_id, events_error=f"event fetch failed: {exc}")
    except (*TRANSIENT_DATABASE_ERRORS, _TryAgain):
        raise
    except Exception as exc:
        if retries_left:
            logger.warning(
                "django-scout: processing delivery %s failed, retrying: %s: %s",
                delivery_id,
                type(exc).__name__,
                exc,
            )
            raise _TryAgain(exc) from exc
        logger.exception(
            "django-scout: processing delivery %s failed on every attempt", delivery_id
        )
        return services.give_up_delivery(delivery_id, exc)


@shared_task(bind=True, name="django_scout.process_callback", max_retries=None, acks_late=True)
@retry_database_errors
def process_callback_task(self: Task[Any, Any], delivery_id: int) -> str:
    """Apply a stored callback, retrying with backoff (see :func:`_apply_delivery`)."""
    try:
        return _apply_delivery(delivery_id, _retries_left(self))
    except _TryAgain as again:
        raise self.retry(countdown=_countdown(self.request.retries), exc=again.error) from again


@shared_task(name="django_scout.process_callbacks", acks_late=True)
def process_callbacks_task(delivery_ids: list[int]) -> dict[str, str]:
    """Apply several stored callbacks, each on its own: what one does never touches the others.

    The callback view publishes the deliveries a web process received within a few
    milliseconds as one message of this task. A delivery whose attempt fails in a way a retry
    may fix continues alone, as a :func:`process_callback_task` retry with backoff; when even
    that cannot be published it waits for reconcile. Returns each id's outcome.
    """
    outcomes: dict[str, str] = {}
    retries_left = scout_settings().TASK_MAX_RETRIES > 0
    for delivery_id in delivery_ids:
        try:
            outcomes[str(delivery_id)] = _apply_delivery(delivery_id, retries_left)
        except (_TryAgain, *TRANSIENT_DATABASE_ERRORS) as exc:
            error = exc.error if isinstance(exc, _TryAgain) else exc
            outcomes[str(delivery_id)] = _retry_alone(delivery_id, error)
        except Exception:
            logger.exception("django-scout: delivery %s left to reconcile", delivery_id)
            outcomes[str(delivery_id)] = "left_to_reconcile"
    return outcomes


def _retry_alone(delivery_id: int, error: Exception) -> str:
    """Publish the first retry of one delivery of a batch; its attempt there was the first."""
    try:
        # ``retries=1``: the message counts as a retry, so the task's limit holds as before.
        process_callback_task.apply_async(  # type: ignore[call-arg]  # Celery takes it; stubs lag
            args=(delivery_id,), countdown=_countdown(0), retries=1
        )
    except Exception:
        logger.exception(
            "django-scout: could not publish the retry of delivery %s (%s); left to reconcile",
            delivery_id,
            error,
        )
        return "left_to_reconcile"
    return "retrying"


@shared_task(bind=True, name="django_scout.run_workflow", max_retries=None, acks_late=True)
@retry_database_errors
def run_workflow_task(self: Task[Any, Any], run_id: str) -> str:
    """Run a workflow, webhook trigger or app (see :mod:`django_scout.services.workflows`)."""
    try:
        return services.perform_run(run_id)
    except services.RetryLater as exc:
        if _retries_left(self):
            logger.warning("django-scout: run %s will be retried: %s", run_id, exc)
            delay = _countdown(self.request.retries, exc.retry_after)
            raise self.retry(countdown=delay, exc=exc.error) from exc
        services.fail_run(
            run_id, services.error_code_for(exc.error), f"gave up after retries: {exc}"
        )
        return "failed"


@shared_task(bind=True, name="django_scout.fetch_events", max_retries=None)
@retry_database_errors
def fetch_events_task(self: Task[Any, Any], interaction_id: str) -> int:
    """Fetch (or re-fetch) an interaction's events; idempotent."""
    from .models import Interaction

    return services.fetch_events(Interaction.objects.get(pk=interaction_id))


@shared_task(name="django_scout.reconcile")
def reconcile_task() -> dict[str, Any]:
    """Run :func:`django_scout.services.reconcile` (schedule it with Celery beat)."""
    return services.reconcile().as_dict()
