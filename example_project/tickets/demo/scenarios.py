"""The demo's tickets: each exercises one behaviour of Scout's at-least-once delivery."""

from __future__ import annotations

from dataclasses import dataclass

from django_scout.testing import AgentBehaviour, WorkflowBehaviour


@dataclass(frozen=True)
class Scenario:
    """A ticket, the fake agent that answers it, and the outcome the demo expects."""

    key: str
    subject: str
    body: str
    agent_id: str
    behaviour: AgentBehaviour
    expected_status: str
    #: Run it through Scout's streaming endpoint (events stored as they arrive, no callback).
    stream: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "success",
        "Cannot access billing portal",
        "I keep getting a 403 when I log in to the billing portal.",
        "demo-triage",
        AgentBehaviour(events=25, events_format="sse"),
        "succeeded",
    ),
    Scenario(
        "many-events",
        "Export of all invoices is slow",
        "Exporting 10k invoices takes forever.",
        "demo-research",
        AgentBehaviour(events=2_000, events_format="ndjson", callback_delay=0.5),
        "succeeded",
    ),
    Scenario(
        "json-events",
        "Change my plan",
        "Please move us to the annual plan.",
        "demo-json",
        AgentBehaviour(events=40, events_format="json-object"),
        "succeeded",
    ),
    Scenario(
        "fails",
        "Refund for order 1234",
        "The refund tool must be called for this one.",
        "demo-broken-tool",
        AgentBehaviour(
            outcome="failed",
            error={"code": "tool_error", "message": "The refunds tool timed out."},
            events=3,
        ),
        "failed",
    ),
    Scenario(
        "duplicates",
        "Password reset email never arrives",
        "Tried three times, nothing in spam either.",
        "demo-duplicates",
        AgentBehaviour(events=10, duplicates=3, concurrent_duplicates=True),
        "succeeded",
    ),
    Scenario(
        "callback-first",
        "Invoice shows wrong VAT",
        "The VAT number on invoice INV-77 is wrong.",
        "demo-early-callback",
        AgentBehaviour(events=8, callback_before_accept=True),
        "succeeded",
    ),
    Scenario(
        "live",
        "Dashboard charts are empty",
        "Since this morning every chart on the dashboard shows no data.",
        "demo-live",
        AgentBehaviour(events=12, event_interval=0.25),
        "succeeded",
        stream=True,
    ),
)


@dataclass(frozen=True)
class WorkflowScenario:
    """A workflow run the demo starts for a ticket, and the outcome it expects."""

    key: str
    workflow_id: str
    behaviour: WorkflowBehaviour
    stream: bool
    expected_status: str


WORKFLOW_SCENARIOS: tuple[WorkflowScenario, ...] = (
    WorkflowScenario(
        "workflow-plain",
        "demo-routing",
        WorkflowBehaviour(
            shape="docs", outputs={"routed_to": "billing-support", "urgency": "high"}
        ),
        False,
        "succeeded",
    ),
    WorkflowScenario(
        "workflow-stream",
        "demo-routing-live",
        WorkflowBehaviour(
            blocks=3,
            updates_per_block=3,
            stream_interval=0.05,
            outputs={"routed_to": "account-team", "urgency": "normal"},
        ),
        True,
        "succeeded",
    ),
)
