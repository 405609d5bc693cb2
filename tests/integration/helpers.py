"""What the integration tests share: the worker's settings and polling for an outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

#: ``settings.SCOUT`` overrides of the integration session, shared by this process and the
#: Celery worker: short task back-offs and timeouts so that failures show within seconds.
WORKER_SCOUT = {
    "TASK_MAX_RETRIES": 4,
    "TASK_RETRY_BACKOFF": 0.2,
    "TASK_RETRY_BACKOFF_MAX": 2.0,
    "MAX_RETRIES": 1,
    "TIMEOUT": 10.0,
}


def wait_for(predicate: Callable[[], Any], timeout: float = 20, message: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
