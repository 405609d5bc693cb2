"""Celery tasks: thin wrappers that call :mod:`django_scout.services`.

Each task only translates a service's outcome into Celery terms: :class:`~.services.RetryLater`
becomes a retry with backoff, or, once ``TASK_MAX_RETRIES`` retries have run, the call of its
``give_up`` (:func:`retry_or_give_up`), carrying an :class:`~.services.OutcomeNotStored`'s outcome
into the retry; transient database errors become retries too. The rules
themselves, when to retry and how a row ends when retrying stops, live in the services (see
:func:`~.services.perform_start`, :func:`~.services.perform_run` and
:func:`~.services.attempt_delivery`). Importing this module registers its tasks with the
services (:mod:`django_scout.services.registry`).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task

from . import services
from .conf import scout_settings
from .services.registry import ScoutTasks, register

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


def retry_or_give_up(task: Task[Any, Any], later: services.RetryLater, what: str) -> str:
    """Retry ``task`` with backoff (and Scout's ``Retry-After``) while it has retries left;
    then end the work with the service's decision, :meth:`~.services.RetryLater.give_up`.

    The retry is given the service's :attr:`~.services.RetryLater.retry_kwargs` on top of the
    task's own: an :class:`~.services.OutcomeNotStored` carries the outcome an attempt could not
    store, so the next one stores it instead of sending the request again.
    """
    if _retries_left(task):
        _log_retry(what, later)
        delay = _countdown(task.request.retries, later.retry_after)
        kwargs = {**(task.request.kwargs or {}), **later.retry_kwargs}
        raise task.retry(kwargs=kwargs, countdown=delay, exc=later.error) from later
    return later.give_up()


def _log_retry(what: str, later: services.RetryLater) -> None:
    error = later.error
    logger.warning("django-scout: %s will be retried: %s: %s", what, type(error).__name__, later)


@shared_task(bind=True, name="django_scout.start_interaction", max_retries=None, acks_late=True)
@retry_database_errors
def start_interaction_task(
    self: Task[Any, Any], interaction_id: str, outcome: dict[str, Any] | None = None
) -> str:
    """Start an interaction at Scout (:func:`~.services.perform_start`).

    ``outcome`` is set only on a retry whose earlier attempt got Scout's answer (or read a
    streamed interaction's stream) but could not store it: it is stored, and the request is
    never sent again.
    """
    answer = services.outcome_from_dict(outcome) if outcome is not None else None
    try:
        return services.perform_start(interaction_id, answer)
    except services.RetryLater as later:
        return retry_or_give_up(self, later, f"start of {interaction_id}")


@shared_task(bind=True, name="django_scout.process_callback", max_retries=None, acks_late=True)
@retry_database_errors
def process_callback_task(self: Task[Any, Any], delivery_id: int) -> str:
    """Apply a stored callback (:func:`~.services.attempt_delivery`), retrying with backoff."""
    try:
        return services.attempt_delivery(delivery_id)
    except services.RetryLater as later:
        return retry_or_give_up(self, later, f"delivery {delivery_id}")


@shared_task(name="django_scout.process_callbacks", acks_late=True)
def process_callbacks_task(delivery_ids: list[int]) -> dict[str, str]:
    """Apply several stored callbacks, each on its own: what one does never touches the others.

    The callback view publishes the deliveries a web process received within a few
    milliseconds as one message of this task. A delivery whose attempt fails in a way a retry
    may fix continues alone, as a :func:`process_callback_task` retry with backoff; when even
    that cannot be published it waits for reconcile. Returns each id's outcome.
    """
    retries_left = scout_settings().TASK_MAX_RETRIES > 0
    return {
        str(delivery_id): _attempt_in_batch(delivery_id, retries_left)
        for delivery_id in delivery_ids
    }


def _attempt_in_batch(delivery_id: int, retries_left: bool) -> str:
    """One delivery of a :func:`process_callbacks_task` batch; never raises."""
    try:
        try:
            return services.attempt_delivery(delivery_id)
        except services.RetryLater as later:
            if retries_left:
                _log_retry(f"delivery {delivery_id}", later)
                return _retry_alone(delivery_id, later.error)
            return later.give_up()
    except TRANSIENT_DATABASE_ERRORS as exc:
        return _retry_alone(delivery_id, exc)
    except Exception:
        logger.exception("django-scout: delivery %s left to reconcile", delivery_id)
        return "left_to_reconcile"


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
def run_workflow_task(
    self: Task[Any, Any], run_id: str, outcome: dict[str, Any] | None = None
) -> str:
    """Run a workflow, webhook trigger or app (:func:`~.services.perform_run`).

    ``outcome`` is set only on a retry whose earlier attempt got Scout's answer (or read the
    run's stream) but could not store it: it is stored, and the request is never sent again.
    """
    answer = services.RunOutcome.from_dict(outcome) if outcome is not None else None
    try:
        return services.perform_run(run_id, answer)
    except services.RetryLater as later:
        return retry_or_give_up(self, later, f"run {run_id}")


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


register(
    ScoutTasks(
        start_interaction=start_interaction_task,
        process_callback=process_callback_task,
        process_callbacks=process_callbacks_task,
        run_workflow=run_workflow_task,
        fetch_events=fetch_events_task,
    )
)
