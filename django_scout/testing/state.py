"""The fake Scout's mutable state: registered behaviours, fault rules and recordings.

Shared by the request handlers (server threads) and the test (main thread); every access goes
through one lock. :class:`~django_scout.testing.FakeScout` is the public face of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from .behaviours import AgentBehaviour, AppBehaviour, WorkflowBehaviour
from .faults import Fault, SlowRule
from .records import (
    AppExecution,
    CallbackAttempt,
    FakeSession,
    Interaction,
    RecordedRequest,
    WorkflowRunRecord,
)

__all__ = ["ScoutState"]

T = TypeVar("T")


@dataclass
class ScoutState:
    """Everything the fake server knows; guard every access with :attr:`lock`."""

    api_key: str | None
    organization_id: str
    callback_hosts: frozenset[str] | None
    before_accept_timeout: float
    latency: float = 0.0
    default_agent: AgentBehaviour | None = field(default_factory=AgentBehaviour)
    default_workflow: WorkflowBehaviour | None = field(default_factory=WorkflowBehaviour)
    default_app: AppBehaviour | None = None
    agents: dict[str, AgentBehaviour] = field(default_factory=dict)
    agent_registered_at: dict[str, datetime] = field(default_factory=dict)
    workflows: dict[str, WorkflowBehaviour] = field(default_factory=dict)
    apps: dict[str, AppBehaviour] = field(default_factory=dict)
    webhook_tokens: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    slow_rules: list[SlowRule] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    callbacks: list[CallbackAttempt] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    workflow_runs: list[WorkflowRunRecord] = field(default_factory=list)
    app_executions: list[AppExecution] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    changed: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    # ------------------------------------------------------------------ lookups

    def agent_behaviour(self, agent_id: str) -> AgentBehaviour | None:
        """The registered behaviour of an agent, else the default one (``None``: unknown)."""
        with self.lock:
            return self.agents.get(agent_id, self.default_agent)

    def workflow_behaviour(self, workflow_id: str) -> WorkflowBehaviour | None:
        """The registered behaviour of a workflow, else the default one (``None``: unknown)."""
        with self.lock:
            return self.workflows.get(workflow_id, self.default_workflow)

    def app_behaviour(self, app_id: str) -> AppBehaviour | None:
        """The registered behaviour of an app, else the default one (``None``: unknown)."""
        with self.lock:
            return self.apps.get(app_id, self.default_app)

    def delay_for(self, method: str, path: str) -> float:
        """Seconds a request waits: the global latency plus every matching slow rule."""
        with self.lock:
            return self.latency + sum(
                rule.seconds for rule in self.slow_rules if rule.matches(method, path)
            )

    def claim_fault(self, method: str, path: str) -> Fault | None:
        """Use up and return the first pending fault that matches the request."""
        with self.lock:
            for fault in self.faults:
                if fault.claim(method, path):
                    if fault.exhausted:
                        self.faults.remove(fault)
                    return fault
            return None

    # ------------------------------------------------------------------ recording

    def add(self, items: list[T], item: T) -> T:
        """Append ``item`` to one of the recording lists and wake waiters."""
        with self.changed:
            items.append(item)
            self.changed.notify_all()
        return item

    def record_callback(self, attempt: CallbackAttempt) -> None:
        """Record a finished callback attempt."""
        self.add(self.callbacks, attempt)

    def notify(self) -> None:
        """Wake every :meth:`wait_until` waiter (e.g. after a record was updated)."""
        with self.changed:
            self.changed.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (evaluated under the lock) is true; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            return True

    def clear_recordings(self) -> None:
        """Forget every request, callback attempt, session and run."""
        with self.changed:
            for items in (
                self.requests,
                self.callbacks,
                self.interactions,
                self.workflow_runs,
                self.app_executions,
            ):
                items.clear()
            self.sessions.clear()
            self.changed.notify_all()
