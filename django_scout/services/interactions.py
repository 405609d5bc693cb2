"""Interactions: start, accept, apply callbacks, store events, reconcile, prune."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from .. import signals
from ..client.streams import SessionEvent
from ..client.validation import build_messages, validate_tags
from ..conf import scout_settings
from ..models import (
    CallbackDelivery,
    Interaction,
    InteractionEvent,
    InteractionStatus,
    Session,
)
from ..payloads import CallbackPayload
from .common import (
    ReconcileReport,
    aware,
    check_json_object,
    chunks,
    enqueue_after_commit,
    get_client,
    parse_timestamp,
    send_robust,
    signal_after_commit,
)
from .scrubbing import scrub_text

logger = logging.getLogger("django_scout")

__all__ = [
    "ProcessOutcome",
    "accept_interaction",
    "callback_url_for",
    "claim_start",
    "complete_interaction",
    "fail_start",
    "fetch_events",
    "mark_start_unconfirmed",
    "process_delivery",
    "prune_interactions",
    "reconcile_interactions",
    "record_callback",
    "release_start_claim",
    "start_interaction",
    "store_events",
]

PENDING = InteractionStatus.PENDING.value
ACCEPTED = InteractionStatus.ACCEPTED.value
SUCCEEDED = InteractionStatus.SUCCEEDED.value
FAILED = InteractionStatus.FAILED.value


def _signal_interaction_after_commit(interaction_id: UUID, *names: str) -> None:
    """Send the named interaction signals, in order, once the transaction commits."""
    queryset = Interaction.objects.select_related("session")
    signal_after_commit(queryset, interaction_id, "interaction", *names)


# --- starting ------------------------------------------------------------------------------


def start_interaction(
    agent_id: str,
    message: str | None = None,
    *,
    messages: list[Any] | None = None,
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    subject: models.Model | None = None,
) -> Interaction:
    """Validate, save a ``pending`` interaction and enqueue its start task on commit.

    Raises ``ValueError`` (nothing saved) for an empty agent id, an empty message, bad tags, or
    metadata/variables that are not JSON objects; ``ImproperlyConfigured`` when ``API_KEY`` or
    ``CALLBACK_BASE_URL`` is not set.
    """
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise ValueError("agent_id must be a non-empty string")
    if session_id is not None and (not isinstance(session_id, str) or not session_id.strip()):
        raise ValueError("session_id must be a non-empty string when given")
    built_messages = build_messages(message, messages)
    clean_tags = validate_tags(tags) if tags is not None else []
    clean_metadata = check_json_object(metadata, "metadata")
    clean_variables = check_json_object(variables, "variables")
    conf = scout_settings()
    conf.require("API_KEY")
    conf.require("CALLBACK_BASE_URL")

    interaction = Interaction(
        agent_id=agent_id.strip(),
        requested_session_id=(session_id or "").strip(),
        messages=built_messages,
        metadata=clean_metadata,
        variables=clean_variables,
        tags=clean_tags,
    )
    interaction.set_subject(subject)
    with transaction.atomic():
        interaction.save()
        enqueue_after_commit("start_interaction_task", str(interaction.pk))
    return interaction


def callback_url_for(interaction: Interaction) -> str:
    """The absolute callback URL for ``interaction`` (it names the interaction's id)."""
    base = scout_settings().require("CALLBACK_BASE_URL")
    path = reverse("django_scout:interaction-callback", kwargs={"interaction_id": interaction.pk})
    return f"{base}{path}"


def claim_start(interaction_id: UUID | str) -> Interaction | None:
    """Claim the right to send ``interaction_id``'s start request.

    Returns the interaction when this caller won the claim, ``None`` when the interaction is no
    longer pending or another attempt may already have sent the request (never send twice).
    """
    claimed = Interaction.objects.filter(
        pk=interaction_id, status=PENDING, start_claimed_at__isnull=True
    ).update(start_claimed_at=timezone.now(), start_attempts=F("start_attempts") + 1)
    if not claimed:
        return None
    return Interaction.objects.get(pk=interaction_id)


def release_start_claim(interaction_id: UUID | str, reason: str) -> None:
    """Give the claim back after a failure that proves Scout did not start anything."""
    Interaction.objects.filter(pk=interaction_id, status=PENDING).update(
        start_claimed_at=None, error_message=scrub_text(reason)
    )


def accept_interaction(interaction_id: UUID | str, session_id: str, events_url: str) -> bool:
    """Move a pending interaction to ``accepted`` with Scout's session id and events URL.

    Sends ``interaction_accepted`` and enqueues any callback that arrived early. Returns False
    (and does nothing) when the interaction was not pending.
    """
    with transaction.atomic():
        interaction = Interaction.objects.get(pk=interaction_id)
        session, _ = Session.objects.get_or_create(
            session_id=session_id, defaults={"agent_id": interaction.agent_id}
        )
        changed = Interaction.objects.filter(pk=interaction_id, status=PENDING).update(
            status=ACCEPTED,
            session=session,
            events_url=events_url or "",
            accepted_at=timezone.now(),
            error_code="",
            error_message="",
        )
        if not changed:
            return False
        _signal_interaction_after_commit(interaction.pk, "interaction_accepted")
        early = CallbackDelivery.objects.filter(processed_at__isnull=True).filter(
            Q(target_interaction_id=interaction.pk) | Q(session_id=session_id)
        )
        for delivery_id in early.values_list("pk", flat=True):
            enqueue_after_commit("process_callback_task", delivery_id)
    return True


def fail_start(interaction_id: UUID | str, code: str, message: str) -> bool:
    """End a pending interaction as ``failed`` because Scout refused to start it."""
    with transaction.atomic():
        changed = Interaction.objects.filter(pk=interaction_id, status=PENDING).update(
            status=FAILED,
            error_code=code,
            error_message=scrub_text(message),
            completed_at=timezone.now(),
        )
        if changed:
            _signal_interaction_after_commit(
                UUID(str(interaction_id)), "interaction_failed", "interaction_completed"
            )
    return bool(changed)


def mark_start_unconfirmed(interaction_id: UUID | str, message: str) -> None:
    """Record that the start request may have reached Scout but no answer came back.

    The interaction stays ``pending`` and claimed, so it is never sent again. Its callback URL
    names it, so Scout's callback still completes it; otherwise reconcile fails it after
    ``CALLBACK_DEADLINE``.
    """
    Interaction.objects.filter(pk=interaction_id, status=PENDING).update(
        error_code="start_unconfirmed", error_message=scrub_text(message)
    )


# --- callbacks -----------------------------------------------------------------------------


def record_callback(
    payload: CallbackPayload,
    raw_body: str,
    headers: dict[str, str],
    target_interaction_id: UUID | None = None,
) -> tuple[CallbackDelivery, bool]:
    """Store a verified callback once per ``callback_event_id``.

    Returns ``(delivery, created)``. A repeat only increments ``delivery_count``. A new delivery
    sends ``callback_received`` and enqueues its processing after the commit.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery = CallbackDelivery.objects.create(
                callback_event_id=payload.callback_event_id,
                target_interaction_id=target_interaction_id,
                session_id=payload.session_id,
                status=payload.status,
                payload=payload.model_dump(mode="json", exclude_unset=True),
                raw_body=raw_body,
                headers=headers,
                last_received_at=now,
            )
    except IntegrityError:
        with transaction.atomic():
            CallbackDelivery.objects.filter(callback_event_id=payload.callback_event_id).update(
                delivery_count=F("delivery_count") + 1, last_received_at=now
            )
            existing = CallbackDelivery.objects.get(callback_event_id=payload.callback_event_id)
        return existing, False

    delivery_pk = delivery.pk

    def announce() -> None:
        fresh = CallbackDelivery.objects.get(pk=delivery_pk)
        send_robust(signals.callback_received, CallbackDelivery, delivery=fresh)

    transaction.on_commit(announce)
    enqueue_after_commit("process_callback_task", delivery_pk)
    return delivery, True


def _match(delivery: CallbackDelivery) -> Interaction | None:
    if delivery.target_interaction_id is not None:
        return Interaction.objects.filter(pk=delivery.target_interaction_id).first()
    in_session = Interaction.objects.filter(session_id=delivery.session_id)
    open_one = in_session.filter(status=ACCEPTED).order_by("accepted_at").first()
    return open_one or in_session.order_by("-accepted_at").first()


class ProcessOutcome:
    """What :func:`process_delivery` did (a string constant)."""

    ALREADY_PROCESSED = "already_processed"
    MISSING = "missing"
    UNMATCHED = "unmatched"
    COMPLETED = "completed"
    ALREADY_TERMINAL = "already_terminal"
    REJECTED = "rejected"


def _finish_delivery(delivery_id: int, note: str = "") -> None:
    CallbackDelivery.objects.filter(pk=delivery_id, processed_at__isnull=True).update(
        processed_at=timezone.now(), processing_error=note
    )


def process_delivery(
    delivery_id: int,
    *,
    fetch: bool | None = None,
    events_error: str | None = None,
) -> str:
    """Apply a stored callback to its interaction.

    Matches the delivery (by the interaction named in its URL, else by session), accepts a
    still-pending interaction from the callback itself, fetches the event stream when
    ``FETCH_EVENTS`` (errors propagate so the task can retry), then moves the interaction to
    Scout's status and marks the delivery processed. ``events_error`` completes the interaction
    without events and records why. Returns a :class:`ProcessOutcome` value.
    """
    delivery = CallbackDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:  # pruned, or a stale task from another database
        logger.warning("django-scout: callback delivery %s no longer exists", delivery_id)
        return ProcessOutcome.MISSING
    if delivery.processed_at is not None:
        return ProcessOutcome.ALREADY_PROCESSED
    CallbackDelivery.objects.filter(pk=delivery_id).update(
        processing_attempts=F("processing_attempts") + 1
    )
    payload = CallbackPayload.model_validate(delivery.payload)
    interaction = _match(delivery)
    if interaction is None:
        CallbackDelivery.objects.filter(pk=delivery_id).update(
            processing_error=f"no interaction for session {delivery.session_id!r} yet; "
            "applied when one is accepted"
        )
        return ProcessOutcome.UNMATCHED
    if delivery.interaction_id != interaction.pk:
        CallbackDelivery.objects.filter(pk=delivery_id).update(interaction=interaction)
    if interaction.session_id and interaction.session_id != payload.session_id:
        note = (
            f"callback session {payload.session_id!r} does not match the interaction's "
            f"session {interaction.session_id!r}; not applied"
        )
        logger.error("django-scout: %s (delivery %s)", note, delivery.callback_event_id)
        _finish_delivery(delivery_id, note)
        return ProcessOutcome.REJECTED
    if interaction.is_terminal:
        _finish_delivery(delivery_id, f"interaction was already {interaction.status}")
        return ProcessOutcome.ALREADY_TERMINAL
    if interaction.status == PENDING:
        # The callback proves Scout accepted the interaction (it may arrive before the 202).
        accept_interaction(interaction.pk, payload.session_id, payload.events_url or "")
        interaction.refresh_from_db()

    should_fetch = scout_settings().FETCH_EVENTS if fetch is None else fetch
    events_url = interaction.events_url or payload.events_url or ""
    if events_error is not None:
        Interaction.objects.filter(pk=interaction.pk).update(
            events_missing=True, events_error=scrub_text(events_error)
        )
    elif should_fetch and events_url and interaction.events_fetched_at is None:
        fetch_events(interaction, events_url)

    complete_interaction(
        interaction.pk,
        payload.status,
        completed_at=payload.completed_at,
        error_code=(payload.error.code if payload.error else None) or "",
        error_message=(payload.error.message if payload.error else None) or "",
    )
    _finish_delivery(delivery_id)
    return ProcessOutcome.COMPLETED


def complete_interaction(
    interaction_id: UUID | str,
    status: str,
    *,
    completed_at: datetime | None = None,
    error_code: str = "",
    error_message: str = "",
) -> bool:
    """Move an accepted interaction to ``succeeded`` or ``failed``; signals once on success."""
    if status not in (SUCCEEDED, FAILED):
        raise ValueError(f"status must be 'succeeded' or 'failed', got {status!r}")
    if status == FAILED and not error_code:
        error_code = "scout_failed"
    with transaction.atomic():
        changed = Interaction.objects.filter(pk=interaction_id, status=ACCEPTED).update(
            status=status,
            completed_at=aware(completed_at) or timezone.now(),
            error_code=error_code if status == FAILED else "",
            error_message=scrub_text(error_message) if status == FAILED else "",
        )
        if changed:
            first = "interaction_succeeded" if status == SUCCEEDED else "interaction_failed"
            _signal_interaction_after_commit(
                UUID(str(interaction_id)), first, "interaction_completed"
            )
    return bool(changed)


# --- events --------------------------------------------------------------------------------


def _event_row(interaction: Interaction, event: SessionEvent) -> InteractionEvent:
    return InteractionEvent(
        interaction=interaction,
        sequence=event.sequence,
        name=(event.name or "")[:255],
        event_id=(event.id or "")[:255],
        data=event.data,
        timestamp=parse_timestamp(event.timestamp),
    )


def store_events(interaction: Interaction, events: Iterable[SessionEvent]) -> int:
    """Insert ``events`` in batches, skipping sequences already stored; returns how many came.

    Idempotent: a re-fetch of the same stream never duplicates a row.
    """
    batch_size = scout_settings().EVENTS_BATCH_SIZE
    batch: list[InteractionEvent] = []
    seen = 0
    for event in events:
        batch.append(_event_row(interaction, event))
        seen += 1
        if len(batch) >= batch_size:
            InteractionEvent.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        InteractionEvent.objects.bulk_create(batch, ignore_conflicts=True)
    return seen


def fetch_events(interaction: Interaction, events_url: str | None = None) -> int:
    """Stream ``interaction``'s events from Scout into ``InteractionEvent``; returns the count.

    Raises the client's errors (the caller decides whether to retry). On success the
    interaction's ``event_count`` and ``events_fetched_at`` are set and ``events_missing``
    cleared.
    """
    url = events_url or interaction.events_url
    if not url:
        raise ValueError(f"interaction {interaction.pk} has no events_url")
    with get_client() as client:
        count = store_events(interaction, client.sessions.events(url))
    Interaction.objects.filter(pk=interaction.pk).update(
        event_count=count,
        events_fetched_at=timezone.now(),
        events_missing=False,
        events_error="",
    )
    return count


# --- housekeeping --------------------------------------------------------------------------


def reconcile_interactions(now: datetime, report: ReconcileReport) -> None:
    """Reconcile interactions and deliveries (see :func:`.housekeeping.reconcile`)."""
    conf = scout_settings()
    grace_cutoff = now - timedelta(seconds=conf.RECONCILE_GRACE)
    deadline_cutoff = now - timedelta(seconds=conf.CALLBACK_DEADLINE)

    stale_starts = Interaction.objects.filter(
        status=PENDING, start_claimed_at__isnull=True, created_at__lte=grace_cutoff
    ).values_list("pk", flat=True)
    for interaction_id in stale_starts.iterator():
        report.requeued_starts.append(str(interaction_id))
        enqueue_after_commit("start_interaction_task", str(interaction_id))

    stale_deliveries = CallbackDelivery.objects.filter(
        processed_at__isnull=True, received_at__lte=grace_cutoff
    ).values_list("pk", flat=True)
    for delivery_id in stale_deliveries.iterator():
        report.requeued_deliveries.append(delivery_id)
        enqueue_after_commit("process_callback_task", delivery_id)

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
                _signal_interaction_after_commit(
                    interaction_id, "interaction_failed", "interaction_completed"
                )


def prune_interactions(cutoff: datetime) -> dict[str, int]:
    """Delete events of interactions finished before ``cutoff`` and deliveries processed
    before it (see :func:`.housekeeping.prune`)."""
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
