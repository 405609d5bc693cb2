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

#: Scout accepted the interaction; ``interaction.session_id`` and ``events_url`` are set.
interaction_accepted = Signal()
#: The interaction succeeded (with ``FETCH_EVENTS``, after its events are stored).
interaction_succeeded = Signal()
#: The interaction failed: refused at start, failed at Scout, or no callback in time.
interaction_failed = Signal()
#: The interaction reached a terminal status (sent after succeeded/failed).
interaction_completed = Signal()
#: A new distinct callback was stored (not sent again for repeated deliveries).
callback_received = Signal()
#: A workflow run succeeded.
workflow_run_succeeded = Signal()
#: A workflow run failed.
workflow_run_failed = Signal()
#: A workflow run reached a terminal status (sent after succeeded/failed).
workflow_run_completed = Signal()
