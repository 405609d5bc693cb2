"""Celery tasks: thin wrappers that call :mod:`django_scout.services`.

Retry rule for starting an interaction (Scout has no idempotency keys, so a repeated POST could
start the agent twice):

- a worker first *claims* the interaction (one conditional UPDATE); a task that cannot claim it
  (a redelivered or duplicated task, or one whose earlier attempt may have sent the request)
  does nothing;
- the claim is given back and the task retried with backoff only when the failure proves
  Scout did not start anything: the connection failed before the request was sent, or Scout
  answered 429, 502, 503 or 504;
- 401/403/404/422 and other 4xx end the interaction ``failed`` with ``error_code`` and
  ``error_message``;
- anything ambiguous (a read timeout, a dropped connection after sending, a 500) is never
  repeated: the interaction stays ``pending`` with ``error_code="start_unconfirmed"``; Scout's
  callback still completes it (its URL names the interaction), otherwise ``scout_reconcile``
  fails it after ``CALLBACK_DEADLINE``.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import services
from .client import (
    ScoutAPIError,
    ScoutError,
    UntrustedURLError,
)
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
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)


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
            if self.request.retries >= scout_settings().TASK_MAX_RETRIES:
                raise
            logger.warning("django-scout: %s hit a database error, retrying: %s", self.name, exc)
            raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc

    return wrapper


@shared_task(bind=True, name="django_scout.start_interaction", max_retries=None, acks_late=True)
@retry_database_errors
def start_interaction_task(self: Task[Any, Any], interaction_id: str) -> str:
    """Send an interaction's start request to Scout (see the module docstring's retry rule)."""
    interaction = services.claim_start(interaction_id)
    if interaction is None:
        return "skipped"
    try:
        with services.get_client() as client:
            accepted = client.agents.interact_async(
                interaction.agent_id,
                messages=interaction.messages,
                callback_url=services.callback_url_for(interaction),
                session_id=interaction.requested_session_id or None,
                metadata=interaction.metadata or None,
                variables=interaction.variables or None,
                tags=interaction.tags or None,
            )
    except ScoutError as exc:
        return _handle_start_error(self, interaction_id, exc)
    services.accept_interaction(interaction_id, accepted.session_id, accepted.events_url)
    return "accepted"


def _handle_start_error(task: Task[Any, Any], interaction_id: str, exc: ScoutError) -> str:
    if exc.retry_safe:
        services.release_start_claim(interaction_id, f"retrying: {exc}")
        if task.request.retries < scout_settings().TASK_MAX_RETRIES:
            retry_after = getattr(exc, "retry_after", None)
            logger.warning("django-scout: start of %s will be retried: %s", interaction_id, exc)
            raise task.retry(countdown=_countdown(task.request.retries, retry_after), exc=exc)
        services.fail_start(
            interaction_id, services.error_code_for(exc), f"gave up after retries: {exc}"
        )
        return "failed"
    if isinstance(exc, ScoutAPIError) and 400 <= exc.status_code < 500:
        services.fail_start(interaction_id, services.error_code_for(exc), str(exc))
        return "failed"
    logger.error(
        "django-scout: start of %s may have reached Scout (%s); not repeating it",
        interaction_id,
        exc,
    )
    services.mark_start_unconfirmed(interaction_id, str(exc))
    return "unconfirmed"


@shared_task(bind=True, name="django_scout.process_callback", max_retries=None, acks_late=True)
@retry_database_errors
def process_callback_task(self: Task[Any, Any], delivery_id: int) -> str:
    """Apply a stored callback; event-fetch failures retry, then complete without events."""
    try:
        return services.process_delivery(delivery_id)
    except ScoutError as exc:
        retryable = not isinstance(exc, UntrustedURLError)
        if retryable and self.request.retries < scout_settings().TASK_MAX_RETRIES:
            logger.warning("django-scout: event fetch for delivery %s failed: %s", delivery_id, exc)
            raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc
        logger.error("django-scout: events for delivery %s are missing: %s", delivery_id, exc)
        return services.process_delivery(delivery_id, events_error=f"event fetch failed: {exc}")


@shared_task(bind=True, name="django_scout.run_workflow", max_retries=None, acks_late=True)
@retry_database_errors
def run_workflow_task(self: Task[Any, Any], run_id: str) -> str:
    """Run a workflow, webhook trigger or app (see :mod:`django_scout.services.workflows`)."""
    try:
        return services.perform_run(run_id)
    except services.RetryLater as exc:
        if self.request.retries < scout_settings().TASK_MAX_RETRIES:
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
