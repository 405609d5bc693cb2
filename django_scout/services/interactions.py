"""Interactions: start, accept, apply callbacks, store events, reconcile, prune."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Q, TextField, Value, When
from django.db.models.functions import Coalesce, Concat, Greatest
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from .. import signals
from ..client import EventStream, ScoutError, UntrustedURLError
from ..client.streams import SessionEvent
from ..client.validation import build_messages, validate_json_object, validate_tags
from ..conf import scout_settings
from ..models import (
    DELIVERY_DUE_ORDER,
    CallbackDelivery,
    DeliveryState,
    Interaction,
    InteractionEvent,
    InteractionStatus,
    Session,
)
from ..payloads import CallbackPayload
from .batching import batch_publisher
from .common import (
    PROCESSING_ERROR,
    STREAM_INTERRUPTED,
    TRANSIENT_DATABASE_ERRORS,
    ReconcileReport,
    RetryLater,
    StoredStream,
    aware,
    classify_start_failure,
    delete_in_batches,
    enqueue_after_commit,
    error_code_for,
    get_client,
    parse_timestamp,
    send_robust,
    signal_after_commit,
    store_outcome,
    unexpected_error_note,
)
from .deliveries import upsert_delivery
from .due import fail_idle_streams, fail_overdue, progress_at_claim, requeue_delay, requeue_due
from .event_store import store_event_stream
from .live import notify_changed
from .registry import scout_tasks
from .scrubbing import scrub_text
from .storable import storable_fields

logger = logging.getLogger("django_scout")

__all__ = [
    "MAY_HAVE_RUN",
    "STREAM_FAILED_EVENTS",
    "STREAM_SUCCEEDED_EVENTS",
    "ProcessOutcome",
    "StartOutcome",
    "StreamOutcome",
    "accept_interaction",
    "attach_session",
    "attempt_delivery",
    "callback_url_for",
    "claim_start",
    "complete_interaction",
    "consume_stream",
    "fail_start",
    "fetch_events",
    "give_up_delivery",
    "give_up_start",
    "mark_start_unconfirmed",
    "outcome_from_dict",
    "perform_start",
    "perform_stream",
    "process_delivery",
    "prune_interactions",
    "reconcile_interactions",
    "record_callback",
    "release_start_claim",
    "reprocess_delivery",
    "retry_start",
    "start_interaction",
    "store_events",
    "store_start_outcome",
]

PENDING = InteractionStatus.PENDING.value
ACCEPTED = InteractionStatus.ACCEPTED.value
SUCCEEDED = InteractionStatus.SUCCEEDED.value
FAILED = InteractionStatus.FAILED.value


def _signal_interaction_after_commit(interaction_id: UUID, *signals_to_send: Signal) -> None:
    """Send ``signals_to_send`` for the interaction, in order, once the transaction commits."""
    queryset = Interaction.objects.select_related("session")
    signal_after_commit(queryset, interaction_id, "interaction", *signals_to_send)


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
    stream: bool = False,
) -> Interaction:
    """Validate, save a ``pending`` interaction and enqueue its start task on commit.

    The start task (on a Celery worker) asks Scout to run the agent asynchronously with a
    callback URL naming this interaction, and moves it to ``accepted``; Scout's callback then
    finishes it. With ``stream=True`` the task instead runs the interaction through Scout's
    streaming endpoint: the interaction is ``accepted`` once the first event arrives, each
    event is stored as it arrives, and the stream's end finishes it (no callback is involved).
    Follow it with the ``interaction_*`` signals.

    :param agent_id: the Scout agent to run.
    :param message: one text, sent as ``[{"content": message}]``. Pass exactly one of
        ``message`` and ``messages``.
    :param messages: several messages: a non-empty list of texts, or of dicts with a
        ``content`` key (a text, a drive file ``{"type": "drive_file", "path": ...}``, or a
        list of both); dicts are sent as given.
    :param session_id: continue this Scout session (its earlier messages are the agent's
        context); ``None`` lets Scout start a new one, whose id is stored when Scout accepts.
    :param metadata: a JSON object stored with the interaction and sent to Scout.
    :param variables: a JSON object of interaction-local variables (values interpolated into
        the agent's tool inputs), sent to Scout.
    :param tags: at most 20 tags of 1 to 32 characters of lowercase ``a-z``, ``0-9``, ``:``,
        ``_`` or ``-``.
    :param subject: any saved model instance to attach (``interaction.subject``), typically
        the record your receiver updates.
    :param stream: run it through Scout's streaming endpoint inside the worker, storing each
        event as it arrives, instead of waiting for a callback.
    :returns: the saved ``Interaction``, still ``pending``.
    :raises ValueError: nothing is saved: an empty agent id or session id, neither or both of
        ``message``/``messages``, an empty message, bad tags, or metadata/variables that are
        not JSON objects.
    :raises ImproperlyConfigured: ``API_KEY`` is not set, or ``CALLBACK_BASE_URL`` is not set
        and ``stream`` is false.
    """
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise ValueError("agent_id must be a non-empty string")
    if session_id is not None and (not isinstance(session_id, str) or not session_id.strip()):
        raise ValueError("session_id must be a non-empty string when given")
    built_messages = build_messages(message, messages)
    clean_tags = validate_tags(tags) if tags is not None else []
    clean_metadata = validate_json_object(metadata, "metadata") or {}
    clean_variables = validate_json_object(variables, "variables") or {}
    conf = scout_settings()
    conf.require("API_KEY")
    if not stream:
        conf.require("CALLBACK_BASE_URL")

    interaction = Interaction(
        agent_id=agent_id.strip(),
        requested_session_id=(session_id or "").strip(),
        messages=built_messages,
        metadata=clean_metadata,
        variables=clean_variables,
        tags=clean_tags,
        stream=bool(stream),
        next_attempt_at=timezone.now() + _grace(),
    )
    interaction.set_subject(subject)
    with transaction.atomic():
        interaction.save()
        enqueue_after_commit(scout_tasks().start_interaction, str(interaction.pk))
    return interaction


def retry_start(interaction: Interaction) -> Interaction:
    """Start a new interaction with the parameters of one whose start Scout refused.

    Terminal rows never change, so the retry is a new row (same agent, messages, session,
    metadata, variables, tags, streaming and subject); raises ``ValueError`` unless
    ``interaction`` failed before Scout accepted it, in a way that proves Scout ran nothing.
    """
    if (
        interaction.status != FAILED
        or interaction.session_id is not None
        or interaction.accepted_at is not None
        or interaction.error_code in MAY_HAVE_RUN
    ):
        raise ValueError(
            f"interaction {interaction.pk} did not fail at its start; "
            "only failed starts are retried"
        )
    copy = Interaction(
        agent_id=interaction.agent_id,
        requested_session_id=interaction.requested_session_id,
        messages=interaction.messages,
        metadata=interaction.metadata,
        variables=interaction.variables,
        tags=interaction.tags,
        stream=interaction.stream,
        subject_content_type=interaction.subject_content_type,
        subject_object_id=interaction.subject_object_id,
        next_attempt_at=timezone.now() + _grace(),
    )
    with transaction.atomic():
        copy.save()
        enqueue_after_commit(scout_tasks().start_interaction, str(copy.pk))
    return copy


def callback_url_for(interaction: Interaction) -> str:
    """The absolute callback URL for ``interaction`` (it names the interaction's id)."""
    base = scout_settings().require("CALLBACK_BASE_URL")
    path = reverse("django_scout:interaction-callback", kwargs={"interaction_id": interaction.pk})
    return f"{base}{path}"


def claim_start(interaction_id: UUID | str) -> Interaction | None:
    """Claim the right to send ``interaction_id``'s start request.

    Returns the interaction when this caller won the claim, ``None`` when the interaction is no
    longer pending or another attempt may already have sent the request (never send twice).
    A streamed interaction's idle deadline starts here (``stream_progress_at``).
    """
    now = timezone.now()
    claimed = Interaction.objects.filter(
        pk=interaction_id, status=PENDING, start_claimed_at__isnull=True
    ).update(
        start_claimed_at=now,
        start_attempts=F("start_attempts") + 1,
        stream_progress_at=progress_at_claim(now),
    )
    if not claimed:
        return None
    return Interaction.objects.get(pk=interaction_id)


def release_start_claim(interaction_id: UUID | str, reason: str) -> None:
    """Give the claim back after a failure that proves Scout did not start anything."""
    Interaction.objects.filter(pk=interaction_id, status=PENDING).update(
        start_claimed_at=None,
        stream_progress_at=None,  # no worker reads it until it is claimed again
        error_message=scrub_text(reason),
        next_attempt_at=timezone.now() + _grace(),
    )


def accept_interaction(interaction_id: UUID | str, session_id: str | None, events_url: str) -> bool:
    """Move a pending interaction to ``accepted`` with Scout's session id and events URL.

    Sends ``interaction_accepted`` and enqueues any callback that arrived early. Returns False
    (and does nothing) when the interaction was not pending. ``session_id`` may be ``None``
    for a streamed interaction whose session is not known yet (see :func:`attach_session`).
    """
    with transaction.atomic():
        interaction = Interaction.objects.get(pk=interaction_id)
        session = _session(session_id, interaction.agent_id) if session_id else None
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
        notify_changed(Interaction, interaction.pk)
        _signal_interaction_after_commit(interaction.pk, signals.interaction_accepted)
        mine = Q(target_interaction_id=interaction.pk)
        if session_id:
            mine |= Q(session_id=session_id)
        early = CallbackDelivery.objects.filter(processed_at__isnull=True).filter(mine)
        early_ids = list(early.values_list("pk", flat=True))
        if early_ids:
            # Due soon again, in case this enqueue does not reach the broker.
            CallbackDelivery.objects.filter(pk__in=early_ids).update(
                next_attempt_at=timezone.now() + _grace()
            )
        for delivery_id in early_ids:
            enqueue_after_commit(scout_tasks().process_callback, delivery_id)
    return True


def _session(session_id: str, agent_id: str) -> Session:
    session, _ = Session.objects.get_or_create(
        session_id=session_id, defaults={"agent_id": agent_id}
    )
    return session


def attach_session(interaction_id: UUID | str, session_id: str) -> bool:
    """Give an accepted interaction that has none yet Scout's ``session_id`` (a streamed
    interaction learns it from its events). Returns False when it already had one."""
    interaction = Interaction.objects.get(pk=interaction_id)
    if interaction.session_id is not None:
        return False
    session = _session(session_id, interaction.agent_id)
    return bool(
        Interaction.objects.filter(pk=interaction_id, session__isnull=True).update(session=session)
    )


def fail_start(interaction_id: UUID | str, code: str, message: str) -> bool:
    """End a pending interaction as ``failed`` because Scout refused to start it."""
    return _fail(interaction_id, code, message, from_statuses=(PENDING,))


def _fail(
    interaction_id: UUID | str,
    code: str,
    message: str,
    *,
    from_statuses: tuple[str, ...],
) -> bool:
    """Move an interaction in one of ``from_statuses`` to ``failed``; signals once on success."""
    with transaction.atomic():
        changed = Interaction.objects.filter(pk=interaction_id, status__in=from_statuses).update(
            status=FAILED,
            error_code=code,
            error_message=scrub_text(message),
            completed_at=timezone.now(),
        )
        if changed:
            notify_changed(Interaction, interaction_id)
            _signal_interaction_after_commit(
                UUID(str(interaction_id)),
                signals.interaction_failed,
                signals.interaction_completed,
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


@dataclass(frozen=True)
class StartOutcome:
    """What Scout answered a start request with, kept until it is stored.

    ``kind`` is ``accepted`` (with ``session_id`` and ``events_url``), ``failed`` (Scout refused
    it: ``error_code``, ``message``) or ``unconfirmed`` (the request may have reached Scout but
    no answer came back: ``message``). It travels as a dict in a retried task's arguments.
    """

    kind: Literal["accepted", "failed", "unconfirmed"]
    session_id: str = ""
    events_url: str = ""
    error_code: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        """A JSON-friendly form (for a Celery task's arguments)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StartOutcome:
        """The inverse of :meth:`as_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class StreamOutcome:
    """How a streamed interaction's stream came out, kept until it is stored.

    ``ended``: the stream's end was read (a terminal event or ``[DONE]``), so Scout accepted the
    interaction, and ``status`` (``succeeded`` or ``failed``), ``completed_at`` (ISO 8601, or
    empty), ``session_id`` and the error are the stream's; otherwise the interaction fails with
    ``error_code`` (``stream_interrupted``, ``outcome_unknown``, …) and ``message``.
    ``events_error`` says why events of an ended stream are missing (the database refused them).
    It travels as a dict in a retried task's arguments.
    """

    status: str
    error_code: str = ""
    message: str = ""
    completed_at: str = ""
    session_id: str = ""
    ended: bool = False
    events_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for a Celery task's arguments), told apart from a
        :class:`StartOutcome`'s by its single ``stream`` key."""
        return {"stream": asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamOutcome:
        """The inverse of :meth:`as_dict`."""
        return cls(**data["stream"])


def outcome_from_dict(data: dict[str, Any]) -> StartOutcome | StreamOutcome:
    """The outcome a retried start task carries (``as_dict()`` of either kind)."""
    if "stream" in data:
        return StreamOutcome.from_dict(data)
    return StartOutcome.from_dict(data)


def perform_start(
    interaction_id: UUID | str, outcome: StartOutcome | StreamOutcome | None = None
) -> str:
    """Claim ``interaction_id``, send its start request to Scout and store the answer.

    Follows the start rule (:func:`.common.classify_start_failure`: Scout has no idempotency
    keys, so a repeated POST could start the agent twice):

    - a caller first *claims* the interaction (one conditional UPDATE); one that cannot claim it
      (a redelivered or duplicated task, or one whose earlier attempt may have sent the request)
      does nothing and returns ``skipped``;
    - a failure that proves Scout started nothing gives the claim back and raises
      :class:`RetryLater`, whose ``give_up`` is :func:`give_up_start`;
    - a refusal (a 4xx) ends the interaction ``failed`` with ``error_code``;
    - an ambiguous failure is never repeated: the interaction stays ``pending`` with
      ``error_code="start_unconfirmed"``; Scout's callback still completes it (its URL names the
      interaction), otherwise reconcile fails it after ``CALLBACK_DEADLINE``;
    - once Scout has answered, a transient database error while storing the answer raises
      :class:`.common.OutcomeNotStored`, which carries the answer: the next attempt passes it as
      ``outcome``, and it is stored without sending anything (:func:`.common.store_outcome`);
    - any other error (a bug, a database error that is not transient) ends the interaction
      ``failed`` with ``error_code="processing_error"`` and the error; as the request may have
      reached Scout, it is not sent again.

    A streamed interaction (``stream=True``) is run by :func:`perform_stream` instead, once
    claimed; its outcome (a :class:`StreamOutcome`) is carried the same way.

    Returns ``skipped``, ``accepted``, ``failed`` or ``unconfirmed``; for a streamed
    interaction ``skipped``, ``succeeded`` or ``failed``.
    """
    try:
        if outcome is None:
            interaction = claim_start(interaction_id)
            if interaction is None:
                return "skipped"
            if interaction.stream:
                return perform_stream(interaction)
            outcome = _send_start(interaction)
        if isinstance(outcome, StreamOutcome):
            return _settle_stream(interaction_id, outcome)
        return store_outcome(functools.partial(store_start_outcome, interaction_id), outcome)
    except (RetryLater, *TRANSIENT_DATABASE_ERRORS):
        raise
    except Exception as exc:
        logger.error(
            "django-scout: the start of %s raised an unexpected error; it ends failed",
            interaction_id,
            exc_info=exc,
        )
        failed = fail_start(
            interaction_id,
            PROCESSING_ERROR,
            unexpected_error_note("the start raised an unexpected error", exc),
        )
        return "failed" if failed else "skipped"


def _send_start(interaction: Interaction) -> StartOutcome:
    """Send a claimed interaction's start request; Scout's answer, or :class:`RetryLater`."""
    try:
        with get_client() as client:
            accepted = client.agents.interact_async(
                interaction.agent_id,
                messages=interaction.messages,
                callback_url=callback_url_for(interaction),
                session_id=interaction.requested_session_id or None,
                metadata=interaction.metadata or None,
                variables=interaction.variables or None,
                tags=interaction.tags or None,
            )
    except ScoutError as exc:
        kind = classify_start_failure(exc)
        if kind == "retry":
            release_start_claim(interaction.pk, f"retrying: {exc}")
            raise RetryLater(exc, functools.partial(give_up_start, interaction.pk, exc)) from exc
        if kind == "refused":
            return StartOutcome("failed", error_code=error_code_for(exc), message=str(exc))
        logger.error(
            "django-scout: start of %s may have reached Scout (%s); not repeating it",
            interaction.pk,
            exc,
        )
        return StartOutcome("unconfirmed", message=str(exc))
    return StartOutcome(
        "accepted", session_id=accepted.session_id, events_url=accepted.events_url or ""
    )


def store_start_outcome(interaction_id: UUID | str, outcome: StartOutcome) -> str:
    """Apply Scout's answer to a start request; returns the outcome's kind (or ``skipped``
    when the interaction was no longer pending, e.g. its callback came first)."""
    if outcome.kind == "accepted":
        stored = accept_interaction(interaction_id, outcome.session_id, outcome.events_url)
    elif outcome.kind == "failed":
        stored = fail_start(interaction_id, outcome.error_code, outcome.message)
    else:
        mark_start_unconfirmed(interaction_id, outcome.message)
        stored = True
    return outcome.kind if stored else "skipped"


def give_up_start(interaction_id: UUID | str, error: ScoutError) -> str:
    """End a pending interaction whose retry-safe start failures exhausted the retries.

    The ``give_up`` of :func:`perform_start`'s :class:`RetryLater`: the interaction ends
    ``failed`` with the last error's code. Returns ``failed``, or ``skipped`` when it was no
    longer pending.
    """
    failed = fail_start(interaction_id, error_code_for(error), f"gave up after retries: {error}")
    return "failed" if failed else "skipped"


# --- streamed interactions -----------------------------------------------------------------

#: Event names that end a streamed interaction as succeeded. Scout documents no vocabulary for
#: an agent's stream, so its end is taken from these names, and from ``[DONE]``.
STREAM_SUCCEEDED_EVENTS = frozenset({"interaction_completed"})
#: Event names that end a streamed interaction as failed (``error``: an SSE error event).
STREAM_FAILED_EVENTS = frozenset({"interaction_failed", "error"})
#: ``error_code`` values of a failed start after which Scout may have run the agent anyway.
MAY_HAVE_RUN = frozenset({"outcome_unknown", "stream_incomplete", STREAM_INTERRUPTED})


def perform_stream(interaction: Interaction) -> str:
    """Run a claimed streamed interaction through Scout's streaming endpoint.

    Each event is stored as it arrives (:func:`consume_stream`). The start rule is
    :func:`perform_start`'s, except that no callback can settle an ambiguous start: a failure
    before any event arrived is retried (:class:`RetryLater`) only when Scout provably started
    nothing, a refusal fails the interaction with its ``error_code``, and an ambiguous failure
    fails it with ``outcome_unknown``; a stream that breaks off after an event fails it with
    ``stream_interrupted``, and so does one whose events the database still refuses after a
    brief wait (the stream cannot be resumed). None of these is sent again. The outcome is
    stored with :func:`.common.store_outcome`: when the database refuses that too, the task's
    retry stores it (:class:`.common.OutcomeNotStored`). Returns the interaction's status.
    """
    try:
        with get_client() as client:
            events = client.agents.stream_events(
                interaction.agent_id,
                messages=interaction.messages,
                session_id=interaction.requested_session_id or None,
                metadata=interaction.metadata or None,
                variables=interaction.variables or None,
                tags=interaction.tags or None,
            )
            with events:
                outcome = _read_stream(interaction, events)
    except ScoutError as exc:
        outcome = _unanswered_stream(interaction.pk, exc)
    except (RetryLater, *TRANSIENT_DATABASE_ERRORS):
        raise
    except Exception as exc:
        logger.error(
            "django-scout: the stream of %s raised an unexpected error; it ends failed",
            interaction.pk,
            exc_info=exc,
        )
        note = unexpected_error_note("the stream raised an unexpected error", exc)
        outcome = StreamOutcome(FAILED, PROCESSING_ERROR, note)
    return _settle_stream(interaction.pk, outcome)


def _unanswered_stream(interaction_id: UUID, error: ScoutError) -> StreamOutcome:
    """The outcome of a stream that failed with ``error`` before any event, or
    :class:`RetryLater` when Scout provably started nothing."""
    kind = classify_start_failure(error)
    if kind == "retry":
        release_start_claim(interaction_id, f"retrying: {error}")
        raise RetryLater(error, functools.partial(give_up_start, interaction_id, error)) from error
    if kind == "refused":
        return StreamOutcome(FAILED, error_code_for(error), str(error))
    logger.error("django-scout: stream of %s may have started at Scout (%s)", interaction_id, error)
    return StreamOutcome(
        FAILED,
        "outcome_unknown",
        f"Scout may have started the interaction but no stream came back ({error}); "
        "not repeated automatically",
    )


def consume_stream(interaction: Interaction, events: EventStream[SessionEvent]) -> str:
    """Store a streamed interaction's ``events`` as they arrive and end it from the stream's end.

    The first event moves it to ``accepted`` (Scout's session id: the requested one, else the
    first an event carries). Each event is stored on its own, by sequence, before the next is
    read, so it is visible at once; a sequence already stored is skipped, so reading the same
    stream again changes nothing. The stream ends at an event named in
    :data:`STREAM_SUCCEEDED_EVENTS` or :data:`STREAM_FAILED_EVENTS` (its ``status``, ``error``
    and ``completed_at`` are the callback's), at ``[DONE]``, or where the body ends normally
    after an event (both ``succeeded``: Scout documents no end event for an agent's stream, and
    its own SDK ends one when the server closes it); a body that ends before any event fails
    the interaction with ``stream_incomplete``, one that breaks off after an event (or whose
    events the database refuses) with ``stream_interrupted``. An error
    of ``events`` before any event propagates (see :func:`perform_stream`), and so does
    :class:`.common.OutcomeNotStored`. Returns the interaction's status.
    """
    return _settle_stream(interaction.pk, _read_stream(interaction, events))


def _read_stream(interaction: Interaction, events: EventStream[SessionEvent]) -> StreamOutcome:
    """Read and store ``events`` (see :func:`consume_stream`); how the stream came out."""
    pk = interaction.pk
    requested = interaction.requested_session_id or None
    session_id = requested
    has_session = interaction.session_id is not None
    end: SessionEvent | None = None

    def store(sequence: int, event: SessionEvent) -> None:
        nonlocal has_session
        found = requested or _session_of(event)
        if sequence == 0:
            accept_interaction(pk, found, "")
            has_session = has_session or bool(found)
        elif found and not has_session:
            attach_session(pk, found)
            has_session = True
        store_event_stream(interaction, (event,), batch_size=1)
        # With the count, the worker's sign of life that reconcile's idle deadline reads.
        Interaction.objects.filter(pk=pk, event_count__lte=event.sequence).update(
            event_count=event.sequence + 1, stream_progress_at=timezone.now()
        )

    stream = StoredStream(events, store)
    for _, event in stream:
        session_id = session_id or _session_of(event)
        if event.name in STREAM_SUCCEEDED_EVENTS or event.name in STREAM_FAILED_EVENTS:
            end = event
            break
    if end is None and stream.cut:
        return StreamOutcome(FAILED, STREAM_INTERRUPTED, stream.cut)
    if end is None and not events.ended_with_done and not stream.arrived:
        incomplete = "the stream ended before any event, without [DONE]"
        return StreamOutcome(FAILED, "stream_incomplete", incomplete)
    # Scout's own SDK ends an agent's stream when the server closes it (it documents no end
    # event): a body that ends normally after an event ends the interaction as [DONE] does.
    return _stream_outcome(end, session_id=session_id or "", events_error=stream.cut)


def _settle_stream(interaction_id: UUID | str, outcome: StreamOutcome) -> str:
    """Store a streamed interaction's ``outcome`` (:func:`.common.store_outcome`: a transient
    database error raises :class:`.common.OutcomeNotStored`); returns its status. Any other
    error ends it ``failed`` with ``processing_error``, accepted or not."""
    try:
        return store_outcome(functools.partial(_store_stream_outcome, interaction_id), outcome)
    except (RetryLater, *TRANSIENT_DATABASE_ERRORS):
        raise
    except Exception as exc:
        logger.error(
            "django-scout: storing the outcome of stream %s raised an unexpected error; "
            "it ends failed",
            interaction_id,
            exc_info=exc,
        )
        note = unexpected_error_note("storing the stream's outcome raised an unexpected error", exc)
        _fail(interaction_id, PROCESSING_ERROR, note, from_statuses=(PENDING, ACCEPTED))
        return _status_of(interaction_id)


def _store_stream_outcome(interaction_id: UUID | str, outcome: StreamOutcome) -> str:
    """End a streamed interaction as ``outcome`` says; returns its status. Idempotent."""
    session_id = outcome.session_id or None
    if not outcome.ended:
        _fail(
            interaction_id, outcome.error_code, outcome.message, from_statuses=(PENDING, ACCEPTED)
        )
    else:
        accept_interaction(interaction_id, session_id, "")  # no-op once accepted
        if session_id is not None:
            attach_session(interaction_id, session_id)  # no-op once it has one
        events: dict[str, Any] = {"events_missing": True, "events_error": outcome.events_error}
        if not outcome.events_error:
            events = {
                "events_fetched_at": timezone.now(),
                "events_missing": False,
                "events_error": "",
            }
        Interaction.objects.filter(pk=interaction_id).update(**events)
        complete_interaction(
            interaction_id,
            outcome.status,
            completed_at=parse_timestamp(outcome.completed_at),
            error_code=outcome.error_code,
            error_message=outcome.message,
        )
    return _status_of(interaction_id)


def _status_of(interaction_id: UUID | str) -> str:
    return str(Interaction.objects.values_list("status", flat=True).get(pk=interaction_id))


def _session_of(event: SessionEvent) -> str | None:
    """The Scout session id an event carries (at its top level or in its ``data``), if any."""
    data = event.data
    for holder in (data, data.get("data") if isinstance(data, dict) else None):
        if isinstance(holder, dict):
            value = holder.get("session_id")
            if isinstance(value, str) and value.strip():
                return value.strip()[:255]
    return None


def _stream_outcome(
    end: SessionEvent | None, *, session_id: str, events_error: str
) -> StreamOutcome:
    """The outcome of a stream that ended at ``end`` (``None``: ``[DONE]`` or the body's normal
    end after an event ended it)."""
    status, code, message, completed_at = SUCCEEDED, "", "", None
    if end is not None:
        data = end.data if isinstance(end.data, dict) else {}
        completed_at = parse_timestamp(data.get("completed_at"))
        reported = data.get("status")
        if end.name in STREAM_FAILED_EVENTS or reported not in (None, SUCCEEDED):
            error = data.get("error")
            error = error if isinstance(error, dict) else {}
            status = FAILED
            code = str(error.get("code") or data.get("code") or "scout_failed")[:100]
            text = error.get("message") or data.get("message")
            if text is None:
                text = (
                    end.data
                    if isinstance(end.data, str)
                    else f"Scout reported {reported or end.name}"
                )
            message = str(text)
    return StreamOutcome(
        status,
        code,
        message,
        completed_at=completed_at.isoformat() if completed_at else "",
        session_id=session_id,
        ended=True,
        events_error=events_error,
    )


# --- callbacks -----------------------------------------------------------------------------


def record_callback(
    payload: CallbackPayload,
    raw_body: str,
    headers: dict[str, str],
    target_interaction_id: UUID | None = None,
) -> tuple[CallbackDelivery, bool]:
    """Store a verified callback once per ``callback_event_id``.

    Returns ``(delivery, created)``. A repeat only increments ``delivery_count`` (and sets
    ``last_received_at``). A new delivery sends ``callback_received`` with the stored instance
    and, after the commit, is handed to :data:`.batching.batch_publisher`, which publishes its
    processing soon, batched with others, without making the caller wait (the stored row is
    the outbox: reconcile enqueues it when that publish is lost). On PostgreSQL and SQLite
    storing is one statement (see :mod:`.deliveries`); a new delivery is read nothing back,
    a repeat reads its stored row. A NUL
    character in the payload is stored as PostgreSQL can (see :mod:`.storable`); ``raw_body``
    keeps the text as it came, whose JSON escapes hold no NUL.
    """
    now = timezone.now()
    values = {
        "callback_event_id": payload.callback_event_id,
        "target_interaction_id": target_interaction_id,
        "session_id": payload.session_id,
        "status": payload.status,
        "payload": payload.model_dump(mode="json", exclude_unset=True),
        "raw_body": raw_body,
        "headers": headers,
        "last_received_at": now,
        "next_attempt_at": now + _grace(),
    }
    if "\\u0000" in raw_body:  # a NUL somewhere in the payload (cheaper than looking there)
        values = storable_fields(CallbackDelivery, values)
    stored = upsert_delivery(values, now)
    if stored is None:
        stored = _record_callback_orm(CallbackDelivery(**values), now)
    delivery, created = stored
    if created:
        transaction.on_commit(functools.partial(_after_new_delivery, delivery))
    return delivery, created


def _after_new_delivery(delivery: CallbackDelivery) -> None:
    """Once the new delivery is committed: send ``callback_received`` (only when someone
    listens), then have a worker process it soon, batched with others, without waiting."""
    if signals.callback_received.has_listeners(CallbackDelivery):
        send_robust(signals.callback_received, CallbackDelivery, delivery=delivery)
    batch_publisher.add(scout_tasks().process_callbacks, delivery.pk)


def _record_callback_orm(
    delivery: CallbackDelivery, now: datetime
) -> tuple[CallbackDelivery, bool]:
    """:func:`record_callback` on a database without the one-statement insert-or-count."""
    try:
        with transaction.atomic():
            delivery.save(force_insert=True)
    except IntegrityError:
        with transaction.atomic():
            CallbackDelivery.objects.filter(callback_event_id=delivery.callback_event_id).update(
                delivery_count=F("delivery_count") + 1, last_received_at=now
            )
            existing = CallbackDelivery.objects.get(callback_event_id=delivery.callback_event_id)
        return existing, False
    return delivery, True


def _match(delivery: CallbackDelivery) -> Interaction | None:
    if delivery.target_interaction_id is not None:
        return Interaction.objects.filter(pk=delivery.target_interaction_id).first()
    # A streamed interaction gives Scout no callback URL: a callback is never its by session.
    in_session = Interaction.objects.filter(session_id=delivery.session_id, stream=False)
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
    GAVE_UP = "gave_up"


def _grace() -> timedelta:
    return timedelta(seconds=scout_settings().RECONCILE_GRACE)


def _finish_delivery(
    delivery_id: int, note: str = "", state: str = DeliveryState.PROCESSED
) -> bool:
    return bool(
        CallbackDelivery.objects.filter(pk=delivery_id, processed_at__isnull=True).update(
            processed_at=timezone.now(),
            processing_error=note,
            state=state,
            next_attempt_at=None,
        )
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
    now = timezone.now()
    next_attempt = Value(now + requeue_delay(now - delivery.received_at))
    CallbackDelivery.objects.filter(pk=delivery_id).update(
        processing_attempts=F("processing_attempts") + 1,
        # Never earlier than reconcile already pushed it back.
        next_attempt_at=Greatest(Coalesce(F("next_attempt_at"), next_attempt), next_attempt),
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
    elif (
        should_fetch
        and events_url
        and interaction.events_fetched_at is None
        and not interaction.stream  # its events come from its stream
    ):
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


def attempt_delivery(delivery_id: int) -> str:
    """One attempt at a stored callback (:func:`process_delivery`), for a task that retries it.

    Raises :class:`RetryLater` when another attempt may succeed: the event fetch failed (its
    ``give_up`` completes the interaction without its events, recording why), or processing
    raised an unexpected error (its ``give_up`` is :func:`give_up_delivery`), so a delivery
    never stays pending forever. Events on an untrusted host are not fetched again: the
    interaction completes without them at once. Transient database errors propagate. Returns a
    :class:`ProcessOutcome` value.
    """
    try:
        try:
            return process_delivery(delivery_id)
        except ScoutError as exc:
            if isinstance(exc, UntrustedURLError):
                return _complete_without_events(delivery_id, exc)
            give_up = functools.partial(_last_attempt_without_events, delivery_id, exc)
            raise RetryLater(exc, give_up) from exc
    except (RetryLater, *TRANSIENT_DATABASE_ERRORS):
        raise
    except Exception as exc:
        raise RetryLater(exc, functools.partial(_give_up_attempts, delivery_id, exc)) from exc


def _complete_without_events(delivery_id: int, error: ScoutError) -> str:
    """Apply the delivery without the events its interaction's fetch failed to bring."""
    logger.error("django-scout: events for delivery %s are missing: %s", delivery_id, error)
    return process_delivery(delivery_id, events_error=f"event fetch failed: {error}")


def _last_attempt_without_events(delivery_id: int, error: ScoutError) -> str:
    """The last attempt after failed event fetches: without the events, or given up."""
    try:
        return _complete_without_events(delivery_id, error)
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception as exc:
        return _give_up_attempts(delivery_id, exc)


def _give_up_attempts(delivery_id: int, error: Exception) -> str:
    """:func:`give_up_delivery` once every attempt raised; the traceback goes to the log."""
    logger.error(
        "django-scout: processing delivery %s failed on every attempt", delivery_id, exc_info=error
    )
    return give_up_delivery(delivery_id, error)


def reprocess_delivery(delivery_id: int) -> bool:
    """Put a ``failed`` or ``abandoned`` delivery back to ``pending`` and enqueue it.

    For an operator who fixed the cause (e.g. started the interaction a stray callback was
    for). Processing follows the usual rules: an interaction that already finished is not
    changed. Returns False when the delivery was not failed or abandoned.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = CallbackDelivery.objects.filter(
            pk=delivery_id, state__in=(DeliveryState.FAILED, DeliveryState.ABANDONED)
        ).update(
            state=DeliveryState.PENDING,
            processed_at=None,
            next_attempt_at=now + _grace(),
        )
        if changed:
            enqueue_after_commit(scout_tasks().process_callback, delivery_id)
    return bool(changed)


def give_up_delivery(delivery_id: int, error: BaseException) -> str:
    """End a delivery whose processing raised an unexpected error on every attempt.

    The delivery becomes ``failed`` with the error, and the interaction it names or matched
    (if still ``pending`` or ``accepted``) ends ``failed`` with ``error_code="processing_error"``,
    so nothing waits on it forever. Returns a :class:`ProcessOutcome` value.
    """
    note = unexpected_error_note("gave up", error)
    delivery = CallbackDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return ProcessOutcome.MISSING
    with transaction.atomic():
        if not _finish_delivery(delivery_id, note, DeliveryState.FAILED):
            return ProcessOutcome.ALREADY_PROCESSED
        target = delivery.interaction_id or delivery.target_interaction_id
        if target is not None:
            _fail(
                target,
                PROCESSING_ERROR,
                f"Scout's callback {delivery.callback_event_id} could not be processed: {note}",
                from_statuses=(PENDING, ACCEPTED),
            )
    logger.error(
        "django-scout: gave up processing callback %s: %s", delivery.callback_event_id, note
    )
    return ProcessOutcome.GAVE_UP


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
            notify_changed(Interaction, interaction_id)
            first = (
                signals.interaction_succeeded if status == SUCCEEDED else signals.interaction_failed
            )
            _signal_interaction_after_commit(
                UUID(str(interaction_id)), first, signals.interaction_completed
            )
    return bool(changed)


# --- events --------------------------------------------------------------------------------


def store_events(interaction: Interaction, events: Iterable[SessionEvent]) -> int:
    """Insert ``events`` in batches, skipping sequences already stored; returns how many came.

    Idempotent: a re-fetch of the same stream never duplicates a row. Batches of
    ``EVENTS_BATCH_SIZE`` are written by :func:`.event_store.store_event_stream` (``COPY`` on
    PostgreSQL, ``executemany`` on SQLite, ``bulk_create`` elsewhere).
    """
    return store_event_stream(interaction, events, batch_size=scout_settings().EVENTS_BATCH_SIZE)


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
    deadline_cutoff = now - timedelta(seconds=conf.CALLBACK_DEADLINE)

    never_claimed = Interaction.objects.filter(status=PENDING, start_claimed_at__isnull=True)
    report.requeued_starts.extend(
        str(pk)
        for pk in requeue_due(never_claimed, "created_at", now, scout_tasks().start_interaction)
    )

    report.abandoned_deliveries += _abandon_deliveries(now, deadline_cutoff)
    pending_deliveries = CallbackDelivery.objects.filter(processed_at__isnull=True)
    report.requeued_deliveries.extend(
        requeue_due(
            pending_deliveries,
            "received_at",
            now,
            scout_tasks().process_callback,
            as_arg=int,
            index_order=DELIVERY_DUE_ORDER,
        )
    )

    ending: dict[str, Any] = {
        "signal_queryset": Interaction.objects.select_related("session"),
        "kwarg": "interaction",
        "signals_to_send": (signals.interaction_failed, signals.interaction_completed),
        "status": FAILED,
    }
    report.timed_out.extend(fail_idle_streams(Interaction, now, **ending))
    report.timed_out.extend(
        fail_overdue(
            Interaction.objects.filter(status=ACCEPTED, accepted_at__lte=deadline_cutoff).order_by(
                "accepted_at"
            ),
            Interaction.objects.filter(
                status=PENDING, start_claimed_at__lte=deadline_cutoff
            ).order_by("start_claimed_at"),
            **ending,
            error_code="callback_timeout",
            error_message=(
                f"no callback from Scout within CALLBACK_DEADLINE ({conf.CALLBACK_DEADLINE}s)"
            ),
            completed_at=now,
        )
    )


def _abandon_deliveries(now: datetime, deadline_cutoff: datetime) -> int:
    """Mark deliveries still unprocessed after ``CALLBACK_DEADLINE`` abandoned; how many.

    A delivery is ``pending`` exactly while ``processed_at`` is empty, so the database reads
    the candidates off ``scout_delivery_due``, which holds the pending ones only: the cost
    grows with the backlog, never with the history.
    """
    reason = (
        f"abandoned: not processed within CALLBACK_DEADLINE ({scout_settings().CALLBACK_DEADLINE}s)"
    )
    return CallbackDelivery.objects.filter(
        state=DeliveryState.PENDING, processed_at__isnull=True, received_at__lte=deadline_cutoff
    ).update(
        state=DeliveryState.ABANDONED,
        processed_at=now,
        next_attempt_at=None,
        processing_error=Case(
            When(processing_error="", then=Value(reason)),
            default=Concat(
                Value(f"{reason}; last: "), F("processing_error"), output_field=TextField()
            ),
            output_field=TextField(),
        ),
    )


def prune_interactions(cutoff: datetime) -> dict[str, int]:
    """Delete events older than ``cutoff`` of interactions finished before it, and deliveries
    (processed, failed or abandoned) that ended before it (see :func:`.housekeeping.prune`).

    Driven by the events' ``created_at`` and the deliveries' ``processed_at`` indexes, so the
    cost follows what is deleted, not the history kept.
    """
    # ``completed_at`` is set only with a terminal status, so it alone says "finished"; a status
    # filter here would lead SQLite to read every finished interaction first.
    events = InteractionEvent.objects.filter(
        created_at__lt=cutoff, interaction__completed_at__lt=cutoff
    )
    deliveries = CallbackDelivery.objects.filter(processed_at__lt=cutoff)
    return {"events": delete_in_batches(events), "deliveries": delete_in_batches(deliveries)}
