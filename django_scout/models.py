"""Models of django-scout: sessions, interactions, their events and callback deliveries.

State changes never happen here: :mod:`django_scout.services` moves rows between statuses with
conditional ``UPDATE`` statements so that two workers racing cannot both win.
"""

from __future__ import annotations

import uuid

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .client.redaction import mask_webhook_url


class InteractionStatus(models.TextChoices):
    """Where an :class:`Interaction` is: ``pending`` → ``accepted`` → ``succeeded`` | ``failed``."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def terminal(cls) -> tuple[str, ...]:
        """Statuses that never change again."""
        return (cls.SUCCEEDED.value, cls.FAILED.value)


def start_indexes(prefix: str) -> list[models.Index]:
    """The indexes reconcile reads pending starts by (both partial: pending rows only).

    ``<prefix>_start_due``: never claimed, by ``next_attempt_at``; ``<prefix>_claimed``: claimed,
    by ``start_claimed_at`` (to fail those past their deadline).
    """
    return [
        # Naming ``status`` too lets SQLite's planner pick the partial index.
        models.Index(
            fields=["status", "next_attempt_at"],
            condition=models.Q(status="pending", start_claimed_at__isnull=True),
            name=f"{prefix}_start_due",
        ),
        models.Index(
            fields=["start_claimed_at"],
            condition=models.Q(status="pending"),
            name=f"{prefix}_claimed",
        ),
    ]


#: Streamed rows (interactions, runs) that have not ended: those a worker may still be reading.
#: ``completed_at`` is set with every terminal status and only then, so it alone says the row
#: has not ended; a ``status IN (…)`` term instead would keep SQLite from using the partial
#: index below (its planner cannot match bound values against the index's literals).
OPEN_STREAM = models.Q(stream=True, completed_at__isnull=True)


def stream_idle_index(prefix: str) -> models.Index:
    """The index reconcile reads idle streams by: ``<prefix>_stream_idle``, on
    ``stream_progress_at``, holding only the :data:`OPEN_STREAM` rows (partial)."""
    return models.Index(
        fields=["stream_progress_at"], condition=OPEN_STREAM, name=f"{prefix}_stream_idle"
    )


class SubjectMixin(models.Model):
    """An optional generic link to any host record (``subject``)."""

    subject_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Type of the host record this work belongs to."),
    )
    subject_object_id = models.CharField(max_length=255, blank=True, default="")
    subject = GenericForeignKey("subject_content_type", "subject_object_id")

    class Meta:
        abstract = True

    def set_subject(self, subject: models.Model | None) -> None:
        """Attach ``subject`` (any saved model instance) or clear it with ``None``."""
        if subject is None:
            self.subject_content_type = None
            self.subject_object_id = ""
            return
        if subject.pk is None:
            raise ValueError("subject must be saved before it can be attached")
        self.subject_content_type = ContentType.objects.get_for_model(subject)
        self.subject_object_id = str(subject.pk)


class StreamProgressMixin(models.Model):
    """``stream_progress_at``: the sign of life of the worker reading a streamed row's stream."""

    stream_progress_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "Streamed: when the worker reading the stream last stored an event (its claim before "
            "the first). Reconcile fails the row once it is older than STREAM_IDLE_TIMEOUT."
        ),
    )

    class Meta:
        abstract = True


class Session(models.Model):
    """A Scout agent session; one session may hold several interactions."""

    # Scout's id is the key, so ``interaction.session_id`` is Scout's session id with no join.
    session_id = models.CharField(max_length=255, primary_key=True)
    agent_id = models.CharField(max_length=255, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="scout_session_created"),
            models.Index(fields=["agent_id", "created_at"], name="scout_session_agent"),
        ]

    def __str__(self) -> str:
        return self.session_id


class Interaction(SubjectMixin, StreamProgressMixin):
    """One agent interaction started through Scout (async with a callback, or streamed),
    tracked to a terminal status."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent_id = models.CharField(max_length=255)
    session = models.ForeignKey(
        Session,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="interactions",
    )
    requested_session_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text=_("The existing Scout session this interaction continues, if any."),
    )
    messages = models.JSONField(default=list)
    metadata = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    stream = models.BooleanField(
        default=False,
        help_text=_(
            "Run through Scout's streaming endpoint, each event stored as it arrives (no callback)."
        ),
    )
    status = models.CharField(
        max_length=16, choices=InteractionStatus.choices, default=InteractionStatus.PENDING
    )
    events_url = models.URLField(max_length=2048, blank=True, default="")
    error_code = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    start_attempts = models.PositiveIntegerField(default=0)
    start_claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set while a worker may have sent the start request to Scout."),
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        default=timezone.now,
        help_text=_("When reconcile may enqueue a never-claimed start again."),
    )
    event_count = models.PositiveIntegerField(default=0)
    events_missing = models.BooleanField(
        default=False, help_text=_("The event stream could not be fetched; see error_message.")
    )
    events_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    events_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "accepted_at"], name="scout_inter_status_acc"),
            models.Index(fields=["status", "created_at"], name="scout_inter_status_created"),
            models.Index(fields=["created_at"], name="scout_inter_created"),
            models.Index(fields=["error_code", "created_at"], name="scout_inter_error"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(events_missing=True),
                name="scout_inter_events_missing",
            ),
            *start_indexes("scout_inter"),
            stream_idle_index("scout_inter"),
            models.Index(fields=["agent_id", "created_at"], name="scout_inter_agent_created"),
            models.Index(
                fields=["subject_content_type", "subject_object_id"],
                name="scout_inter_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.status} ({self.pk})"

    @property
    def is_terminal(self) -> bool:
        """True once the interaction succeeded or failed."""
        return self.status in InteractionStatus.terminal()

    @property
    def duration(self) -> float | None:
        """Seconds from creation to completion (``None`` while running).

        ``completed_at`` is Scout's clock, so skew is clamped at zero.
        """
        if self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.created_at).total_seconds())


class InteractionEvent(models.Model):
    """One event of an interaction's event stream, in Scout's order."""

    # No index of its own: the unique (interaction, sequence) index serves every lookup by
    # interaction, and a second index would be written for every stored event.
    interaction = models.ForeignKey(
        Interaction, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    sequence = models.PositiveIntegerField()
    name = models.CharField(max_length=255, blank=True, default="")
    event_id = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(null=True, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["interaction", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["interaction", "sequence"], name="scout_event_unique_sequence"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="scout_event_created")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.name}"


class DeliveryState(models.TextChoices):
    """How far a :class:`CallbackDelivery` got: ``pending`` until it ends in one of the others.

    ``processed``: applied to its interaction (or found it already finished, or refused it for
    a session mismatch — ``processing_error`` says which); ``failed``: processing raised an
    unexpected error on every attempt, so it was given up; ``abandoned``: still unprocessed after
    ``CALLBACK_DEADLINE`` (usually a callback for an interaction nobody here started).
    """

    PENDING = "pending", _("pending")
    PROCESSED = "processed", _("processed")
    FAILED = "failed", _("failed")
    ABANDONED = "abandoned", _("abandoned")


#: The columns of ``scout_delivery_due``, in order: reconcile reads its batches in this order.
DELIVERY_DUE_ORDER = ("processed_at", "next_attempt_at")


class CallbackDelivery(models.Model):
    """A distinct callback from Scout (one per ``callback_event_id``), however often delivered.

    The row is the outbox of its processing: while ``processed_at`` is empty the delivery is due
    again at ``next_attempt_at``, when reconcile enqueues it (with growing backoff) until it is
    processed or, after ``CALLBACK_DEADLINE``, abandoned.
    """

    callback_event_id = models.CharField(max_length=255, unique=True)
    interaction = models.ForeignKey(
        Interaction,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,  # ``scout_delivery_interaction`` below
    )
    target_interaction_id = models.UUIDField(
        null=True,
        blank=True,
        help_text=_("The interaction named in the callback URL, used to match early callbacks."),
    )
    session_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=32)
    payload = models.JSONField()
    raw_body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    last_received_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=1)
    processed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the delivery left the pending state.")
    )
    state = models.CharField(
        _("processing state"),
        max_length=16,
        choices=DeliveryState.choices,
        default=DeliveryState.PENDING,
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        default=timezone.now,
        help_text=_("When reconcile may enqueue a still-pending delivery's processing again."),
    )
    processing_attempts = models.PositiveIntegerField(default=0)
    processing_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "callback deliveries"
        # A new delivery is written into every index but the partial ones on what its
        # processing fills in (``interaction``, ``processed_at``, and the final ``state``), off
        # the callback path. A pending delivery is found through ``scout_delivery_due``.
        indexes = [
            models.Index(
                fields=["interaction"],
                condition=models.Q(interaction__isnull=False),
                name="scout_delivery_interaction",
            ),
            models.Index(
                fields=["processed_at"],
                condition=models.Q(processed_at__isnull=False),
                name="scout_delivery_ended",
            ),
            models.Index(fields=["target_interaction_id"], name="scout_delivery_target"),
            models.Index(fields=["received_at"], name="scout_delivery_received"),
            # ``processed_at`` is empty exactly while ``state`` is pending: these are the others.
            models.Index(
                fields=["state", "received_at"],
                condition=models.Q(processed_at__isnull=False),
                name="scout_delivery_outcome",
            ),
            # The partial index names ``processed_at`` too, so SQLite's planner picks it.
            models.Index(
                fields=list(DELIVERY_DUE_ORDER),
                condition=models.Q(processed_at__isnull=True),
                name="scout_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.callback_event_id} ({self.status})"


class WorkflowRunStatus(models.TextChoices):
    """Where a :class:`WorkflowRun` is: ``pending`` → ``running`` → ``succeeded`` | ``failed``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WorkflowRunKind(models.TextChoices):
    """What was run."""

    WORKFLOW = "workflow", _("workflow")
    WORKFLOW_CONFIG = "workflow_config", _("workflow with config")
    WEBHOOK = "webhook", _("webhook trigger")
    APP = "app", _("app")


class WorkflowRun(SubjectMixin, StreamProgressMixin):
    """One run of a workflow (by id, with an inline config, or via its webhook) or of an app."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(
        max_length=20, choices=WorkflowRunKind.choices, default=WorkflowRunKind.WORKFLOW
    )
    workflow_id = models.CharField(
        max_length=255, blank=True, default="", help_text=_("The workflow (or app) id.")
    )
    environment = models.CharField(max_length=32, blank=True, default="")
    revision_id = models.CharField(max_length=255, blank=True, default="")
    session_id = models.CharField(max_length=255, blank=True, default="")
    inputs = models.JSONField(default=dict, blank=True)
    stream = models.BooleanField(default=False)
    workflow_config = models.JSONField(null=True, blank=True)
    workflow_key = models.CharField(max_length=255, blank=True, default="")
    webhook_url = models.TextField(
        blank=True,
        default="",
        help_text=_("Kept so the trigger can be repeated; its token is shown masked everywhere."),
    )
    status = models.CharField(
        max_length=16, choices=WorkflowRunStatus.choices, default=WorkflowRunStatus.PENDING
    )
    scout_run_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    outputs = models.JSONField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    raw_response = models.JSONField(null=True, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    start_attempts = models.PositiveIntegerField(default=0)
    start_claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        default=timezone.now,
        help_text=_("When reconcile may enqueue a never-claimed run again."),
    )
    rerun_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="scout_run_status_created"),
            models.Index(fields=["created_at"], name="scout_run_created"),
            models.Index(fields=["error_code", "created_at"], name="scout_run_error"),
            models.Index(fields=["session_id"], name="scout_run_session"),
            models.Index(fields=["status", "started_at"], name="scout_run_status_started"),
            *start_indexes("scout_run"),
            stream_idle_index("scout_run"),
            models.Index(fields=["workflow_id", "created_at"], name="scout_run_wf_created"),
            models.Index(
                fields=["subject_content_type", "subject_object_id"], name="scout_run_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.target} {self.status} ({self.pk})"

    def __repr__(self) -> str:
        return f"<WorkflowRun {self.pk} {self.kind} {self.target!r} {self.status}>"

    @property
    def target(self) -> str:
        """What ran, for display: the workflow/app id, or the masked webhook URL."""
        if self.kind == WorkflowRunKind.WEBHOOK:
            return mask_webhook_url(self.webhook_url)
        return self.workflow_id or self.workflow_key or "(inline config)"

    @property
    def is_terminal(self) -> bool:
        """True once the run succeeded or failed."""
        return self.status in (WorkflowRunStatus.SUCCEEDED, WorkflowRunStatus.FAILED)

    @property
    def duration(self) -> float | None:
        """Seconds from creation to completion (``None`` while running)."""
        if self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.created_at).total_seconds())


class WorkflowRunEvent(models.Model):
    """One streamed event of a run, stored as it arrives, in order."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveIntegerField()
    name = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(null=True, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="scout_run_event_unique_seq")
        ]
        indexes = [models.Index(fields=["created_at"], name="scout_run_event_created")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.name}"
