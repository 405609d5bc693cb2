"""The host-facing API of django-scout.

```python
from django_scout.api import run_workflow, start_interaction

interaction = start_interaction("agent_123", "Summarise ticket 42", subject=ticket)
run = run_workflow("wf_triage", {"ticket_id": 42}, environment="staging", stream=True)
```

Every function validates synchronously (``ValueError``, nothing saved), saves a ``pending`` row
and enqueues its Celery task when the transaction commits.

Each has an ``a``-prefixed twin for async code (``await astart_interaction(...)``) with the
same arguments, validation, rows and enqueue-on-commit: the twin runs the function itself
through ``sync_to_async(thread_sensitive=True)``, as Django's own async ORM methods do.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async

from .services import (
    execute_app,
    rerun,
    run_workflow,
    run_workflow_with_config,
    start_interaction,
    trigger_workflow_webhook,
)

__all__ = [
    "aexecute_app",
    "arerun",
    "arun_workflow",
    "arun_workflow_with_config",
    "astart_interaction",
    "atrigger_workflow_webhook",
    "execute_app",
    "rerun",
    "run_workflow",
    "run_workflow_with_config",
    "start_interaction",
    "trigger_workflow_webhook",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _async_twin(func: Callable[_P, _R]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """The ``async`` twin of ``func``: the same call, awaited.

    ``func`` runs in the thread Django keeps for synchronous work (``thread_sensitive=True``),
    so it uses that thread's database connection: when the caller is inside a transaction there
    (``async_to_sync`` under ``atomic()``), the task is enqueued when that transaction commits;
    otherwise (autocommit) right after the save, before the ``await`` returns.
    """
    run = sync_to_async(func, thread_sensitive=True)

    @functools.wraps(func)
    async def twin(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await run(*args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"a{func.__name__}"
    twin.__module__ = __name__
    summary = f"Async twin of ``{func.__name__}``: ``await`` it with the same arguments."
    twin.__doc__ = f"{summary}\n\n{inspect.cleandoc(func.__doc__ or '')}".rstrip()
    return twin


astart_interaction = _async_twin(start_interaction)
"""Async twin of [start_interaction][django_scout.api.start_interaction].

``await astart_interaction(...)`` returns the saved ``pending`` ``Interaction``.
"""

arun_workflow = _async_twin(run_workflow)
"""Async twin of [run_workflow][django_scout.api.run_workflow].

``await arun_workflow(...)`` returns the saved ``pending`` ``WorkflowRun``.
"""

arun_workflow_with_config = _async_twin(run_workflow_with_config)
"""Async twin of [run_workflow_with_config][django_scout.api.run_workflow_with_config].

``await arun_workflow_with_config(...)`` returns the saved ``pending`` ``WorkflowRun``.
"""

atrigger_workflow_webhook = _async_twin(trigger_workflow_webhook)
"""Async twin of [trigger_workflow_webhook][django_scout.api.trigger_workflow_webhook].

``await atrigger_workflow_webhook(...)`` returns the saved ``pending`` ``WorkflowRun``.
"""

aexecute_app = _async_twin(execute_app)
"""Async twin of [execute_app][django_scout.api.execute_app].

``await aexecute_app(...)`` returns the saved ``pending`` ``WorkflowRun``.
"""

arerun = _async_twin(rerun)
"""Async twin of [rerun][django_scout.api.rerun].

``await arerun(run)`` returns the new ``pending`` ``WorkflowRun``.
"""
