"""The baseline: ``reconcile`` and ``prune`` as they were before they were rewritten (d10c214).

Copied from ``django_scout/services/{housekeeping,interactions,workflows}.py`` at d10c214 and
adapted only as far as today's code requires: tasks are enqueued (and signals sent) through
today's :func:`~django_scout.services.common.enqueue_after_commit` and
:func:`~django_scout.services.common.signal_after_commit`, runs are failed with today's
:func:`~django_scout.services.workflows.fail_run`, and ``chunks`` (since removed) is copied
here. Import it after Django is set up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from django_scout import signals
from django_scout.conf import scout_settings
from django_scout.models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    InteractionStatus,
    WorkflowRun,
    WorkflowRunEvent,
    WorkflowRunStatus,
)
from django_scout.services.common import ReconcileReport, enqueue_after_commit, signal_after_commit
from django_scout.services.registry import scout_tasks
from django_scout.services.workflows import fail_run

PENDING = InteractionStatus.PENDING.value
ACCEPTED = InteractionStatus.ACCEPTED.value
FAILED = InteractionStatus.FAILED.value


def chunks(values: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    """``values`` in lists of at most ``size`` (to keep ``IN (...)`` queries bounded)."""
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """The baseline ``django_scout.services.reconcile``."""
    now = now or timezone.now()
    report = ReconcileReport()
    reconcile_interactions(now, report)
    reconcile_runs(now, report)
    return report


def prune(older_than_days: int, now: datetime | None = None) -> dict[str, int]:
    """The baseline ``django_scout.services.prune``."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be zero or more")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    counts = prune_interactions(cutoff)
    return {
        "events": counts["events"],
        "run_events": prune_runs(cutoff),
        "deliveries": counts["deliveries"],
    }


def reconcile_interactions(now: datetime, report: ReconcileReport) -> None:
    """The baseline's reconcile of interactions and deliveries."""
    conf = scout_settings()
    grace_cutoff = now - timedelta(seconds=conf.RECONCILE_GRACE)
    deadline_cutoff = now - timedelta(seconds=conf.CALLBACK_DEADLINE)

    stale_starts = Interaction.objects.filter(
        status=PENDING, start_claimed_at__isnull=True, created_at__lte=grace_cutoff
    ).values_list("pk", flat=True)
    for interaction_id in stale_starts.iterator():
        report.requeued_starts.append(str(interaction_id))
        enqueue_after_commit(scout_tasks().start_interaction, str(interaction_id))

    stale_deliveries = CallbackDelivery.objects.filter(
        processed_at__isnull=True, received_at__lte=grace_cutoff
    ).values_list("pk", flat=True)
    for delivery_id in stale_deliveries.iterator():
        report.requeued_deliveries.append(delivery_id)
        enqueue_after_commit(scout_tasks().process_callback, delivery_id)

    overdue = Interaction.objects.filter(
        Q(status=ACCEPTED, accepted_at__lte=deadline_cutoff)
        | Q(status=PENDING, start_claimed_at__lte=deadline_cutoff)
    ).values_list("pk", "status")
    message = f"no callback from Scout within CALLBACK_DEADLINE ({conf.CALLBACK_DEADLINE}s)"
    for interaction_id, status in list(overdue):
        has_pending_delivery = CallbackDelivery.objects.filter(
            Q(interaction_id=interaction_id) | Q(target_interaction_id=interaction_id),
            processed_at__isnull=True,
        ).exists()
        if has_pending_delivery:
            continue
        with transaction.atomic():
            changed = Interaction.objects.filter(pk=interaction_id, status=status).update(
                status=FAILED,
                error_code="callback_timeout",
                error_message=message,
                completed_at=now,
            )
            if changed:
                report.timed_out.append(str(interaction_id))
                signal_after_commit(
                    Interaction.objects.select_related("session"),
                    interaction_id,
                    "interaction",
                    signals.interaction_failed,
                    signals.interaction_completed,
                )


def prune_interactions(cutoff: datetime) -> dict[str, int]:
    """The baseline's prune of interaction events and deliveries."""
    finished = Interaction.objects.filter(
        status__in=InteractionStatus.terminal(), completed_at__lt=cutoff
    ).values_list("pk", flat=True)
    events_deleted = 0
    for chunk in chunks(finished.iterator()):
        deleted, _ = InteractionEvent.objects.filter(interaction_id__in=chunk).delete()
        events_deleted += deleted
    deliveries_deleted, _ = CallbackDelivery.objects.filter(
        processed_at__isnull=False, processed_at__lt=cutoff
    ).delete()
    return {"events": events_deleted, "deliveries": deliveries_deleted}


def reconcile_runs(now: datetime, report: ReconcileReport) -> None:
    """The baseline's reconcile of workflow runs."""
    conf = scout_settings()
    grace_cutoff = now - timedelta(seconds=conf.RECONCILE_GRACE)
    deadline_cutoff = now - timedelta(seconds=conf.RUN_DEADLINE)
    never_started = WorkflowRun.objects.filter(
        status=WorkflowRunStatus.PENDING,
        start_claimed_at__isnull=True,
        created_at__lte=grace_cutoff,
    ).values_list("pk", flat=True)
    for run_id in never_started.iterator():
        report.requeued_runs.append(str(run_id))
        enqueue_after_commit(scout_tasks().run_workflow, str(run_id))
    stuck = WorkflowRun.objects.filter(
        Q(status=WorkflowRunStatus.RUNNING, started_at__lte=deadline_cutoff)
        | Q(status=WorkflowRunStatus.PENDING, start_claimed_at__lte=deadline_cutoff)
    ).values_list("pk", flat=True)
    for run_id in list(stuck):
        if fail_run(
            run_id,
            "run_timeout",
            f"no outcome within RUN_DEADLINE ({conf.RUN_DEADLINE}s); the worker may have died",
        ):
            report.timed_out_runs.append(str(run_id))


def prune_runs(cutoff: datetime) -> int:
    """The baseline's prune of run events."""
    finished = WorkflowRun.objects.filter(
        status__in=(WorkflowRunStatus.SUCCEEDED, WorkflowRunStatus.FAILED), completed_at__lt=cutoff
    ).values_list("pk", flat=True)
    deleted_total = 0
    for chunk in chunks(finished.iterator()):
        deleted, _ = WorkflowRunEvent.objects.filter(run_id__in=chunk).delete()
        deleted_total += deleted
    return deleted_total
