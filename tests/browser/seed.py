"""A small, realistic history for the browser suite to look at (and to screenshot).

Interactions in every status with their events and callback deliveries (one delivered three
times), a stray delivery that never found its interaction, workflow runs of each kind including
a failed one and its re-run. Every id is fixed, so tests can search for and name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from django_scout.models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    Session,
    WorkflowRun,
    WorkflowRunEvent,
)
from tests.testapp.models import Document

#: The superuser the ``admin`` fixture logs in as, through the login form.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "correct horse battery staple"

AGENT = "agent_support_triage"
ROUTER = "wf_ticket_routing"


@dataclass
class AdminData:
    """The seeded rows, by role."""

    ticket: Document
    session: Session
    pending: Interaction
    accepted: Interaction
    succeeded: Interaction
    failed: Interaction
    delivery: CallbackDelivery
    duplicate_delivery: CallbackDelivery
    failed_delivery: CallbackDelivery
    stray_delivery: CallbackDelivery
    run: WorkflowRun
    streamed_run: WorkflowRun
    failed_run: WorkflowRun
    rerun: WorkflowRun
    webhook_run: WorkflowRun


def _at(obj: Interaction | WorkflowRun, created: datetime, **times: datetime) -> None:
    """Backdate ``created_at`` (set on insert) and set the other timestamps."""
    type(obj).objects.filter(pk=obj.pk).update(created_at=created, **times)
    obj.refresh_from_db()


def _events(interaction: Interaction, start: datetime, texts: list[str]) -> None:
    names = ["interaction_started", *["message"] * len(texts), "interaction_completed"]
    payloads: list[Any] = [{"agent": AGENT}, *({"text": t} for t in texts), {"ok": True}]
    for sequence, (name, data) in enumerate(zip(names, payloads, strict=True)):
        InteractionEvent.objects.create(
            interaction=interaction,
            sequence=sequence,
            name=name,
            event_id=f"evt_{interaction.pk.hex[:8]}_{sequence}",
            data=data,
            timestamp=start + timedelta(seconds=sequence * 1.5),
        )
    Interaction.objects.filter(pk=interaction.pk).update(event_count=len(names))
    interaction.refresh_from_db()


def _delivery(
    callback_event_id: str,
    session_id: str,
    status: str,
    interaction: Interaction | None,
    received: datetime,
    **extra: Any,
) -> CallbackDelivery:
    payload = {"session_id": session_id, "status": status, "callback_event_id": callback_event_id}
    delivery = CallbackDelivery.objects.create(
        callback_event_id=callback_event_id,
        session_id=session_id,
        status=status,
        interaction=interaction,
        target_interaction_id=interaction.pk if interaction else None,
        payload=payload,
        raw_body=str(payload).replace("'", '"'),
        headers={"content-type": "application/json", "x-scout-signature": "[redacted]"},
        **extra,
    )
    CallbackDelivery.objects.filter(pk=delivery.pk).update(received_at=received)
    delivery.refresh_from_db()
    return delivery


def _processed(
    interaction: Interaction, callback_event_id: str, received: datetime, **extra: Any
) -> CallbackDelivery:
    """A callback for ``interaction`` (its session and status), processed a second later."""
    assert interaction.session is not None
    return _delivery(
        callback_event_id,
        interaction.session.session_id,
        interaction.status,
        interaction,
        received,
        state="processed",
        processed_at=received + timedelta(seconds=1),
        processing_attempts=1,
        **extra,
    )


def seed_admin_data() -> AdminData:
    """Write the history and return its rows."""
    now = timezone.now().replace(microsecond=0)
    ticket = Document.objects.create(title="TKT-4821: refund not received")
    subject = {
        "subject_content_type": ContentType.objects.get_for_model(Document),
        "subject_object_id": str(ticket.pk),
    }
    messages = [{"role": "user", "content": "Triage ticket TKT-4821: refund not received"}]

    pending = Interaction.objects.create(
        agent_id=AGENT, messages=messages, tags=["support"], **subject
    )
    _at(pending, now - timedelta(seconds=20))

    running = Session.objects.create(session_id="sess_running_7f3a", agent_id=AGENT)
    accepted = Interaction.objects.create(
        agent_id=AGENT,
        session=running,
        status="accepted",
        messages=messages,
        events_url="https://api.scoutos.com/v1/agent-sessions/sess_running_7f3a/events",
        start_attempts=1,
    )
    _at(accepted, now - timedelta(minutes=2), accepted_at=now - timedelta(minutes=2))

    session = Session.objects.create(session_id="sess_done_19c2", agent_id=AGENT)
    succeeded = Interaction.objects.create(
        agent_id=AGENT,
        session=session,
        status="succeeded",
        messages=messages,
        metadata={"ticket": "TKT-4821", "priority": "high"},
        variables={"customer_tier": "gold"},
        tags=["support", "refunds"],
        events_url="https://api.scoutos.com/v1/agent-sessions/sess_done_19c2/events",
        start_attempts=1,
        **subject,
    )
    start = now - timedelta(minutes=15)
    _at(
        succeeded,
        start,
        accepted_at=start + timedelta(seconds=1),
        completed_at=start + timedelta(seconds=12.4),
        events_fetched_at=start + timedelta(seconds=13),
    )
    _events(
        succeeded, start, ["Looking up the order", "Refund issued on 3 Nov", "Routed to billing"]
    )

    failed_session = Session.objects.create(
        session_id="sess_failed_5be0", agent_id="agent_crm_lookup"
    )
    failed = Interaction.objects.create(
        agent_id="agent_crm_lookup",
        session=failed_session,
        status="failed",
        messages=[{"role": "user", "content": "Find the customer's last order"}],
        events_url="https://api.scoutos.com/v1/agent-sessions/sess_failed_5be0/events",
        error_code="tool_error",
        error_message="The CRM lookup tool timed out after 30s",
        start_attempts=1,
    )
    start = now - timedelta(hours=1)
    _at(
        failed,
        start,
        accepted_at=start + timedelta(seconds=1),
        completed_at=start + timedelta(seconds=31.8),
    )
    _events(failed, start, ["Calling the CRM"])

    delivery = _processed(succeeded, "cb_done_0001", now - timedelta(minutes=14, seconds=47))
    duplicate_delivery = _processed(
        succeeded,
        "cb_done_0002",
        now - timedelta(minutes=14, seconds=47),
        delivery_count=3,
        last_received_at=now - timedelta(minutes=14, seconds=20),
    )
    failed_delivery = _processed(failed, "cb_failed_0001", now - timedelta(minutes=59, seconds=28))
    stray_delivery = _delivery(
        "cb_stray_0001",
        "sess_unknown_0000",
        "succeeded",
        None,
        now - timedelta(hours=3),
        state="abandoned",
        processed_at=now - timedelta(minutes=40),
        next_attempt_at=None,
        processing_attempts=8,
        processing_error="no interaction has session sess_unknown_0000",
    )

    run = WorkflowRun.objects.create(
        workflow_id=ROUTER,
        environment="production",
        inputs={"ticket_id": "TKT-4821"},
        status="succeeded",
        scout_run_id="run_plain_3d1e",
        outputs={"queue": "billing-support"},
        duration_ms=2140.0,
        start_attempts=1,
        **subject,
    )
    start = now - timedelta(minutes=14)
    _at(run, start, started_at=start, completed_at=start + timedelta(seconds=2.2))

    streamed_run = WorkflowRun.objects.create(
        workflow_id=ROUTER,
        environment="production",
        inputs={"ticket_id": "TKT-4822"},
        stream=True,
        status="succeeded",
        scout_run_id="run_stream_8a20",
        outputs={"queue": "account-team"},
        start_attempts=1,
    )
    start = now - timedelta(minutes=10)
    _at(streamed_run, start, started_at=start, completed_at=start + timedelta(seconds=4.6))
    for sequence, name in enumerate(
        ["workflow_run_started", "block_started", "block_completed", "workflow_run_completed"]
    ):
        WorkflowRunEvent.objects.create(
            run=streamed_run,
            sequence=sequence,
            name=name,
            data={"block": "classify"} if "block" in name else {"run_id": "run_stream_8a20"},
            timestamp=start + timedelta(seconds=sequence),
        )
    WorkflowRun.objects.filter(pk=streamed_run.pk).update(event_count=4)
    streamed_run.refresh_from_db()

    failed_run = WorkflowRun.objects.create(
        workflow_id="wf_escalation",
        environment="staging",
        inputs={"ticket_id": "TKT-4823"},
        status="failed",
        error_code="workflow_error",
        error_message="Block 'classify' raised KeyError: 'priority'",
        start_attempts=1,
    )
    start = now - timedelta(minutes=40)
    _at(failed_run, start, started_at=start, completed_at=start + timedelta(seconds=1.3))

    rerun = WorkflowRun.objects.create(
        workflow_id="wf_escalation",
        environment="staging",
        inputs={"ticket_id": "TKT-4823"},
        status="succeeded",
        scout_run_id="run_rerun_c611",
        outputs={"escalated": True},
        rerun_of=failed_run,
        start_attempts=1,
    )
    start = now - timedelta(minutes=30)
    _at(rerun, start, started_at=start, completed_at=start + timedelta(seconds=1.9))

    webhook_run = WorkflowRun.objects.create(
        kind="webhook",
        webhook_url="https://api.scoutos.com/v2/workflows/wf_notify/webhook/sEcReT-ToKeN",
        inputs={"webhook_body": {"ticket_id": "TKT-4821"}},
    )
    _at(webhook_run, now - timedelta(seconds=5))

    return AdminData(
        ticket=ticket,
        session=session,
        pending=pending,
        accepted=accepted,
        succeeded=succeeded,
        failed=failed,
        delivery=delivery,
        duplicate_delivery=duplicate_delivery,
        failed_delivery=failed_delivery,
        stray_delivery=stray_delivery,
        run=run,
        streamed_run=streamed_run,
        failed_run=failed_run,
        rerun=rerun,
        webhook_run=webhook_run,
    )
