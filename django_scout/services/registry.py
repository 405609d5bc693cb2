"""The Celery tasks the services enqueue, registered by :mod:`django_scout.tasks` as it loads.

The tasks module imports the services, so the services cannot import it as they load; and
looking a task up by its name would turn a misspelt name into a silent failure inside
``transaction.on_commit``. So the services name the tasks they enqueue as the fields of
:class:`ScoutTasks`, and :mod:`django_scout.tasks` registers one instance when it is imported.
A task left out is a ``TypeError`` at that import; a misspelt field is a mypy error, and an
``AttributeError`` where the task is enqueued, before anything is committed; a registry nothing
filled is a ``RuntimeError`` there too (:func:`scout_tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Task

__all__ = ["ScoutTasks", "register", "scout_tasks"]


@dataclass(frozen=True)
class ScoutTasks:
    """The tasks the services enqueue, and the arguments each is enqueued with."""

    #: ``(interaction_id: str)``: send an interaction's start request.
    start_interaction: Task[..., Any]
    #: ``(delivery_id: int)``: apply one stored callback.
    process_callback: Task[..., Any]
    #: ``(delivery_ids: list[int])``: apply several stored callbacks, each on its own.
    process_callbacks: Task[..., Any]
    #: ``(run_id: str)``: run a workflow, webhook trigger or app.
    run_workflow: Task[..., Any]
    #: ``(interaction_id: str)``: fetch an interaction's events again.
    fetch_events: Task[..., Any]


_registered: ScoutTasks | None = None


def register(tasks: ScoutTasks) -> None:
    """Make ``tasks`` the ones the services enqueue (:mod:`django_scout.tasks` calls it)."""
    global _registered
    _registered = tasks


def scout_tasks() -> ScoutTasks:
    """The registered tasks, importing :mod:`django_scout.tasks` (which registers them) first
    when nothing has yet.

    :raises RuntimeError: the tasks module is loaded but registered nothing.
    """
    if _registered is None:
        from .. import tasks

        del tasks  # imported for its register() call
    if _registered is None:
        raise RuntimeError(
            "django_scout.tasks registered no tasks: django-scout cannot enqueue its work"
        )
    return _registered
