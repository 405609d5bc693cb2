"""The host-facing API of django-scout.

```python
from django_scout.api import run_workflow, start_interaction

interaction = start_interaction("agent_123", "Summarise ticket 42", subject=ticket)
run = run_workflow("wf_triage", {"ticket_id": 42}, environment="staging", stream=True)
```

Every function validates synchronously (``ValueError``, nothing saved), saves a ``pending`` row
and enqueues its Celery task when the transaction commits.
"""

from __future__ import annotations

from .services import (
    execute_app,
    rerun,
    run_workflow,
    run_workflow_with_config,
    start_interaction,
    trigger_workflow_webhook,
)

__all__ = [
    "execute_app",
    "rerun",
    "run_workflow",
    "run_workflow_with_config",
    "start_interaction",
    "trigger_workflow_webhook",
]
