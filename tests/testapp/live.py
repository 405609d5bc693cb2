"""The test project's live-relay pieces: a permission hook and the changes a test makes.

The changes go through the services, as a Celery worker's would, so they are announced the way
the settings say. ``python -m tests.testapp.live <function> [args]`` runs one of them in a
process of its own (for a server whose database this test process cannot reach: a SQLite file)
and prints what it returns.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def viewer_header(request: Any, obj: Any) -> bool:
    """``LIVE_PERMISSION`` of the servers under test: requests with ``X-Viewer: allowed``.

    With ``X-Viewer-Delay: <seconds>`` it takes that long to answer (a slow hook, such as one
    that reads the viewer's permissions from the database).
    """
    time.sleep(float(request.headers.get("X-Viewer-Delay") or 0))
    return bool(request.headers.get("X-Viewer") == "allowed")


#: Hook calls recorded by :func:`record_and_allow`.
CALLS: list[tuple[Any, Any]] = []


def record_and_allow(request: Any, obj: Any) -> bool:
    """A ``LIVE_PERMISSION`` that lets anyone watch and records what it was asked."""
    CALLS.append((request, obj))
    return True


def deny(request: Any, obj: Any) -> bool:
    """A ``LIVE_PERMISSION`` that lets nobody watch, staff included."""
    return False


NOT_CALLABLE = 42


def create_interaction() -> str:
    """An accepted interaction; returns its id."""
    from django_scout.models import Interaction

    interaction = Interaction.objects.create(agent_id="agent-live", messages=[{"content": "x"}])
    from django_scout.services import accept_interaction

    accept_interaction(interaction.pk, f"sess-{interaction.pk}", "")
    return str(interaction.pk)


def add_event(interaction_id: str, sequence: str, name: str) -> str:
    """Store one event of the interaction (announced like any stored batch)."""
    from django_scout.client.streams import SessionEvent
    from django_scout.models import Interaction
    from django_scout.services import store_events

    interaction = Interaction.objects.get(pk=interaction_id)
    event = SessionEvent(int(sequence), name, {"name": name}, None, None)
    return str(store_events(interaction, [event]))


def complete(interaction_id: str) -> str:
    """Move the interaction to ``succeeded``."""
    from django_scout.services import complete_interaction

    return str(complete_interaction(interaction_id, "succeeded"))


def create_streamed(agent_id: str) -> str:
    """A pending streamed interaction, its start not enqueued (see :func:`run_start`)."""
    from django_scout.models import Interaction

    interaction = Interaction.objects.create(
        agent_id=agent_id, messages=[{"content": "triage this"}], stream=True
    )
    return str(interaction.pk)


def run_start(interaction_id: str) -> str:
    """Run the interaction's start task here and now (a streamed one: until its stream ends)."""
    from django_scout.tasks import start_interaction_task

    return str(start_interaction_task.apply(args=(interaction_id,)).get())


if __name__ == "__main__":
    import django

    django.setup()
    function, *arguments = sys.argv[1:]
    print(globals()[function](*arguments))
