"""What the integration tests share: the worker's settings and waiting for an outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from django.utils import timezone

from django_scout.api import start_interaction
from django_scout.models import Interaction, WorkflowRun
from django_scout.testing import AgentBehaviour, FakeScout
from tests.testapp.models import SignalRecord

#: ``settings.SCOUT`` overrides of the integration session, shared by this process and the
#: Celery worker: short task back-offs and timeouts so that failures show within seconds.
WORKER_SCOUT = {
    "TASK_MAX_RETRIES": 4,
    "TASK_RETRY_BACKOFF": 0.2,
    "TASK_RETRY_BACKOFF_MAX": 2.0,
    "MAX_RETRIES": 1,
    "TIMEOUT": 10.0,
}

#: An interaction or a workflow run: what the worker finishes and the signals are sent for.
Row = TypeVar("Row", Interaction, WorkflowRun)


def wait_for(predicate: Callable[[], Any], timeout: float = 20, message: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")


def terminal(row: Row, timeout: float = 30) -> Row:
    """Wait until the worker has finished ``row``; return it refreshed."""

    def done() -> Row | None:
        row.refresh_from_db()
        return row if row.is_terminal else None

    finished: Row = wait_for(done, timeout, f"{type(row).__name__} {row.pk} to finish")
    return finished


def progress_until_terminal(row: Row, timeout: float = 30) -> list[tuple[str, int, int]]:
    """Poll ``row`` until the worker has finished it (``row`` is then refreshed); return
    ``(status, event_count, events stored)`` as each poll saw them."""
    seen: list[tuple[str, int, int]] = []

    def finished() -> bool:
        row.refresh_from_db()
        seen.append((row.status, row.event_count, row.events.count()))
        return row.is_terminal

    wait_for(finished, timeout, f"the streamed {type(row).__name__} {row.pk} to finish")
    return seen


def signal_names(row: Interaction | WorkflowRun) -> list[str]:
    """The names of the signals recorded for ``row`` so far, in order."""
    return list(SignalRecord.objects.filter(object_id=str(row.pk)).values_list("name", flat=True))


def wait_signals(row: Interaction | WorkflowRun, count: int) -> list[str]:
    """``row``'s signals once ``count`` arrived, re-read after a pause to catch duplicates."""
    wait_for(lambda: len(signal_names(row)) >= count, 15, f"{count} signals for {row.pk}")
    time.sleep(0.3)  # a duplicate would arrive now
    return signal_names(row)


def accepted_awaiting_callback(stack: FakeScout, agent_id: str) -> Interaction:
    """An interaction with ``agent_id`` that Scout accepted and will not call back by itself."""
    stack.agent(agent_id, AgentBehaviour(auto_callback=False, events=2))
    interaction = start_interaction(agent_id, "go")

    def accepted() -> bool:
        interaction.refresh_from_db()
        return interaction.status == "accepted"

    wait_for(accepted, 20, "accepted")
    return interaction


def past_reconcile_grace(scout_settings: dict[str, Any]) -> datetime:
    """A moment just after ``RECONCILE_GRACE`` (of ``settings.SCOUT``): reconcile then treats
    what is still pending now as lost."""
    return timezone.now() + timedelta(seconds=scout_settings.get("RECONCILE_GRACE", 60) + 1)
