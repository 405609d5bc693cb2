"""Django signals sent by django-scout, each once per transition and after the commit.

Receivers get the row as it is after the transition. A receiver that raises is logged with its
traceback; it neither undoes nor repeats the transition.

| signal | sender | kwargs |
|---|---|---|
| ``interaction_accepted`` | ``Interaction`` | ``interaction`` |
| ``interaction_succeeded`` / ``interaction_failed`` | ``Interaction`` | ``interaction`` |
| ``interaction_completed`` | ``Interaction`` | ``interaction`` (after either of the two above) |
| ``callback_received`` | ``CallbackDelivery`` | ``delivery`` (once per ``callback_event_id``) |
| ``workflow_run_succeeded`` / ``_failed`` / ``_completed`` | ``WorkflowRun`` | ``run`` |
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "callback_received",
    "interaction_accepted",
    "interaction_completed",
    "interaction_failed",
    "interaction_succeeded",
    "workflow_run_completed",
    "workflow_run_failed",
    "workflow_run_succeeded",
]

interaction_accepted = Signal()
"""Scout accepted the interaction; ``interaction.session_id`` and ``events_url`` are set.

Sender ``Interaction``; keyword argument ``interaction``. Sent by the start task (a worker).
"""
interaction_succeeded = Signal()
"""The interaction succeeded (with ``FETCH_EVENTS``, after its events are stored).

Sender ``Interaction``; keyword argument ``interaction``. Sent by the callback's processing
(a worker).
"""
interaction_failed = Signal()
"""The interaction failed: refused at start, failed at Scout, or no callback in time.

Sender ``Interaction``; keyword argument ``interaction`` (see its ``error_code``).
"""
interaction_completed = Signal()
"""The interaction reached a terminal status (sent after succeeded/failed).

Sender ``Interaction``; keyword argument ``interaction`` (read its ``status``).
"""
callback_received = Signal()
"""A new distinct callback was stored (not sent again for repeated deliveries).

Sender ``CallbackDelivery``; keyword argument ``delivery``. Sent in the web process that
answered the callback, after its commit.
"""
workflow_run_succeeded = Signal()
"""A workflow run succeeded. Sender ``WorkflowRun``; keyword argument ``run``."""
workflow_run_failed = Signal()
"""A workflow run failed. Sender ``WorkflowRun``; keyword argument ``run``."""
workflow_run_completed = Signal()
"""A workflow run reached a terminal status (sent after succeeded/failed).

Sender ``WorkflowRun``; keyword argument ``run``.
"""
