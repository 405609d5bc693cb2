"""Workflow runs, streamed runs, runs from an inline config, webhook triggers and apps.

Runs follow the start rule of :func:`.common.classify_start_failure`, as interactions do: a run
is *claimed* before its request is sent, and a claimed run is never sent again; the claim is
given back and the task retried only when nothing started at Scout (and no event arrived); a
4xx fails the run. Unlike an interaction, a run has no callback to settle an ambiguous start:
a read timeout, a 500 or a connection dropped after sending fails it with ``outcome_unknown``,
a stream cut off mid-way with ``stream_interrupted``, and neither is repeated; ``rerun()``
repeats it deliberately. Once the request went to Scout, a transient database error never leaves
the run claimed and unsettled: a stream's writes wait out a brief lock, and an outcome that
cannot be stored is carried into the task's retry (see :func:`perform_run`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..client import (
    AppStreamEvent,
    EventStream,
    ScoutError,
    WorkflowEvent,
    WorkflowRunResult,
)
from ..client.redaction import mask_webhook_url
from ..client.validation import validate_json_object, validate_json_value
from ..client.workflow_events import WorkflowRunCompleted, WorkflowRunFailed
from ..conf import scout_settings
from ..models import WorkflowRun, WorkflowRunEvent, WorkflowRunKind, WorkflowRunStatus
from .common import (
    PROCESSING_ERROR,
    STREAM_INTERRUPTED,
    TRANSIENT_DATABASE_ERRORS,
    ReconcileReport,
    RetryLater,
    StoredStream,
    classify_start_failure,
    delete_in_batches,
    enqueue_after_commit,
    error_code_for,
    get_client,
    parse_timestamp,
    signal_after_commit,
    store_outcome,
    unexpected_error_note,
)
from .due import fail_idle_streams, fail_overdue, progress_at_claim, requeue_due
from .live import notify_changed
from .registry import scout_tasks
from .scrubbing import scrub_text
from .storable import storable_fields

logger = logging.getLogger("django_scout")

ENVIRONMENTS = ("development", "staging", "production", "console")
PENDING = WorkflowRunStatus.PENDING
RUNNING = WorkflowRunStatus.RUNNING
SUCCEEDED = WorkflowRunStatus.SUCCEEDED
FAILED = WorkflowRunStatus.FAILED

__all__ = [
    "ENVIRONMENTS",
    "RetryLater",
    "RunOutcome",
    "execute_app",
    "fail_run",
    "give_up_run",
    "perform_run",
    "prune_runs",
    "reconcile_runs",
    "rerun",
    "run_workflow",
    "run_workflow_with_config",
    "trigger_workflow_webhook",
]


# --- creating runs -------------------------------------------------------------------------


def _check_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _check_optional_id(value: Any, name: str) -> str:
    if value is None:
        return ""
    return _check_id(value, name)


def _check_environment(environment: Any) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(
            f"environment must be one of {', '.join(ENVIRONMENTS)}; got {environment!r}"
        )
    return str(environment)


def _grace() -> timedelta:
    return timedelta(seconds=scout_settings().RECONCILE_GRACE)


def _save_and_enqueue(run: WorkflowRun, subject: models.Model | None) -> WorkflowRun:
    run.set_subject(subject)
    run.next_attempt_at = timezone.now() + _grace()
    with transaction.atomic():
        run.save()
        enqueue_after_commit(scout_tasks().run_workflow, str(run.pk))
    return run


def run_workflow(
    workflow_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    environment: str = "production",
    revision_id: str | None = None,
    session_id: str | None = None,
    stream: bool = False,
    subject: models.Model | None = None,
) -> WorkflowRun:
    """Validate, save a ``pending`` run of ``workflow_id`` and enqueue it on commit.

    ``stream=True`` stores each event as it arrives and takes the final status from the last
    run event. Raises ``ValueError`` (nothing saved) for an empty id, an unknown environment or
    inputs that are not a JSON object.
    """
    run = WorkflowRun(
        kind=WorkflowRunKind.WORKFLOW,
        workflow_id=_check_id(workflow_id, "workflow_id"),
        inputs=validate_json_object(inputs, "inputs") or {},
        environment=_check_environment(environment),
        revision_id=_check_optional_id(revision_id, "revision_id"),
        session_id=_check_optional_id(session_id, "session_id"),
        stream=bool(stream),
    )
    return _save_and_enqueue(run, subject)


def run_workflow_with_config(
    workflow_config: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    workflow_key: str | None = None,
    environment: str = "production",
    revision_id: str | None = None,
    session_id: str | None = None,
    stream: bool = True,
    subject: models.Model | None = None,
) -> WorkflowRun:
    """Like :func:`run_workflow` for a workflow defined inline by ``workflow_config`` (beta).

    Streams by default: Scout's non-streaming answer may be only the ``workflow_run_started``
    event, which leaves the run ``running`` with no way to learn its outcome.
    """
    if not isinstance(workflow_config, dict):
        raise ValueError("workflow_config must be a dict (a JSON object; {} is allowed)")
    run = WorkflowRun(
        kind=WorkflowRunKind.WORKFLOW_CONFIG,
        workflow_config=validate_json_object(workflow_config, "workflow_config") or {},
        workflow_key=_check_optional_id(workflow_key, "workflow_key"),
        inputs=validate_json_object(inputs, "inputs") or {},
        environment=_check_environment(environment),
        revision_id=_check_optional_id(revision_id, "revision_id"),
        session_id=_check_optional_id(session_id, "session_id"),
        stream=bool(stream),
    )
    return _save_and_enqueue(run, subject)


def trigger_workflow_webhook(
    webhook_url: str,
    body: Any = None,
    *,
    subject: models.Model | None = None,
) -> WorkflowRun:
    """POST ``body`` (any JSON value) to a workflow's webhook trigger URL, through Celery.

    The URL's token is stored so the trigger can be repeated, and shown masked everywhere.
    Scout runs the workflow on its own; the run is ``succeeded`` once Scout accepts the trigger.
    """
    url = _check_id(webhook_url, "webhook_url")
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"webhook_url must be an http(s) URL, got {mask_webhook_url(url)!r}")
    run = WorkflowRun(
        kind=WorkflowRunKind.WEBHOOK,
        webhook_url=url,
        workflow_id=_workflow_id_from_webhook(url),
        inputs={"webhook_body": validate_json_value(body, "body")},
        environment="production",
    )
    return _save_and_enqueue(run, subject)


def _workflow_id_from_webhook(url: str) -> str:
    parts = url.split("/")
    if "workflows" in parts:
        index = parts.index("workflows")
        if index + 1 < len(parts):
            return parts[index + 1][:255]
    return ""


def execute_app(
    app_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    stream: bool = False,
    subject: models.Model | None = None,
) -> WorkflowRun:
    """Execute a (legacy) Scout app, plain or streamed (``message``/``start_message``/``error``)."""
    run = WorkflowRun(
        kind=WorkflowRunKind.APP,
        workflow_id=_check_id(app_id, "app_id"),
        inputs=validate_json_object(inputs, "inputs") or {},
        stream=bool(stream),
    )
    return _save_and_enqueue(run, subject)


def rerun(run: WorkflowRun) -> WorkflowRun:
    """Start a new run with ``run``'s parameters (kind, target, inputs, options, subject)."""
    copy = WorkflowRun(
        kind=run.kind,
        workflow_id=run.workflow_id,
        environment=run.environment,
        revision_id=run.revision_id,
        session_id=run.session_id,
        inputs=run.inputs,
        stream=run.stream,
        workflow_config=run.workflow_config,
        workflow_key=run.workflow_key,
        webhook_url=run.webhook_url,
        subject_content_type=run.subject_content_type,
        subject_object_id=run.subject_object_id,
        rerun_of=run,
        next_attempt_at=timezone.now() + _grace(),
    )
    with transaction.atomic():
        copy.save()
        enqueue_after_commit(scout_tasks().run_workflow, str(copy.pk))
    return copy


# --- transitions ---------------------------------------------------------------------------


def _signal_run_after_commit(run_id: UUID, *signals_to_send: Signal) -> None:
    signal_after_commit(WorkflowRun.objects.all(), run_id, "run", *signals_to_send)


def claim_run(run_id: UUID | str) -> WorkflowRun | None:
    """Claim the right to send ``run_id``'s request; ``None`` if it may have been sent already.

    A streamed run's idle deadline starts here (``stream_progress_at``)."""
    now = timezone.now()
    claimed = WorkflowRun.objects.filter(
        pk=run_id, status=PENDING, start_claimed_at__isnull=True
    ).update(
        start_claimed_at=now,
        start_attempts=F("start_attempts") + 1,
        stream_progress_at=progress_at_claim(now),
    )
    return WorkflowRun.objects.get(pk=run_id) if claimed else None


def release_run_claim(run_id: UUID | str, reason: str) -> None:
    """Give the claim back after a failure that proves Scout started nothing."""
    WorkflowRun.objects.filter(pk=run_id, status=PENDING).update(
        start_claimed_at=None,
        stream_progress_at=None,  # no worker reads it until it is claimed again
        error_message=scrub_text(reason),
        next_attempt_at=timezone.now() + _grace(),
    )


def mark_running(run_id: UUID | str, **fields: Any) -> bool:
    """``pending`` → ``running`` (Scout accepted the request)."""
    changed = WorkflowRun.objects.filter(pk=run_id, status=PENDING).update(
        status=RUNNING, started_at=timezone.now(), **fields
    )
    if changed:
        notify_changed(WorkflowRun, run_id)
    return bool(changed)


def finish_run(run_id: UUID | str, status: str, **fields: Any) -> bool:
    """Move a pending or running run to ``succeeded``/``failed``; signals once on success."""
    if status not in (SUCCEEDED, FAILED):
        raise ValueError(f"status must be 'succeeded' or 'failed', got {status!r}")
    if "error_message" in fields:
        fields["error_message"] = scrub_text(fields["error_message"])
    fields = storable_fields(WorkflowRun, fields)
    now = timezone.now()
    with transaction.atomic():
        changed = WorkflowRun.objects.filter(pk=run_id, status__in=(PENDING, RUNNING)).update(
            status=status, completed_at=now, **fields
        )
        if changed:
            notify_changed(WorkflowRun, run_id)
            WorkflowRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
            first = (
                signals.workflow_run_succeeded
                if status == SUCCEEDED
                else signals.workflow_run_failed
            )
            _signal_run_after_commit(UUID(str(run_id)), first, signals.workflow_run_completed)
    return bool(changed)


def fail_run(run_id: UUID | str, code: str, message: str) -> bool:
    """End a run as ``failed`` with ``error_code``/``error_message``."""
    return finish_run(run_id, FAILED, error_code=code, error_message=message)


def _store_event(run: WorkflowRun, sequence: int, name: str, data: Any, when: Any) -> None:
    if sequence == 0:
        mark_running(run.pk)
    values = storable_fields(WorkflowRunEvent, {"name": name[:255], "data": data})
    WorkflowRunEvent.objects.get_or_create(
        run=run, sequence=sequence, defaults={**values, "timestamp": parse_timestamp(when)}
    )
    # With the count, the worker's sign of life that reconcile's idle deadline reads.
    WorkflowRun.objects.filter(pk=run.pk).update(
        event_count=sequence + 1, stream_progress_at=timezone.now()
    )
    notify_changed(WorkflowRun, run.pk)


# --- performing runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended (``succeeded``/``failed``), or that Scout left it ``running``, with the
    ``WorkflowRun`` fields to write with it; kept until it is stored. It travels as a dict in a
    retried task's arguments."""

    status: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for a Celery task's arguments)."""
        return {"status": self.status, "fields": self.fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOutcome:
        """The inverse of :meth:`as_dict`."""
        return cls(data["status"], dict(data["fields"]))


def _failed(code: str, message: str, **fields: Any) -> RunOutcome:
    return RunOutcome(FAILED, {"error_code": code, "error_message": message, **fields})


def perform_run(run_id: UUID | str, outcome: RunOutcome | None = None) -> str:
    """Claim ``run_id`` and run it at Scout; returns ``skipped``/``succeeded``/``failed``/
    ``running``.

    Follows the start rule of the module docstring: raises :class:`RetryLater` (its
    ``give_up`` is :func:`give_up_run`) when the request provably started nothing. An error
    that is not Scout's (a bug, a database error that is not transient) fails the run with
    ``error_code="processing_error"`` and the error; the run is not sent again. Once the request
    went to Scout, a transient database error while storing the outcome raises
    :class:`.common.OutcomeNotStored`, which carries it: the next attempt passes it as
    ``outcome``, and it is stored without sending anything (:func:`.common.store_outcome`).
    """
    try:
        if outcome is None:
            run = claim_run(run_id)
            if run is None:
                return "skipped"
            outcome = _outcome_of(run)
        return store_outcome(functools.partial(_store_run_outcome, run_id), outcome)
    except (RetryLater, *TRANSIENT_DATABASE_ERRORS):
        raise
    except Exception as exc:
        failed = fail_run(run_id, PROCESSING_ERROR, _unexpected_error(run_id, exc))
        return "failed" if failed else "skipped"


def _unexpected_error(run_id: UUID | str, error: Exception) -> str:
    """Log an unexpected error of a run; the ``error_message`` it ends ``failed`` with."""
    logger.error(
        "django-scout: run %s raised an unexpected error; it ends failed", run_id, exc_info=error
    )
    return unexpected_error_note("the run raised an unexpected error", error)


def _outcome_of(run: WorkflowRun) -> RunOutcome:
    """Send a claimed run's request and read Scout's answer; how the run came out."""
    try:
        return _dispatch(run)
    except ScoutError as exc:
        kind = classify_start_failure(exc)
        if kind == "retry":
            release_run_claim(run.pk, f"retrying: {exc}")
            raise RetryLater(exc, functools.partial(give_up_run, run.pk, exc)) from exc
        if kind == "refused":
            return _failed(error_code_for(exc), str(exc))
        logger.error("django-scout: run %s may have started at Scout (%s)", run.pk, exc)
        return _failed(
            "outcome_unknown",
            f"Scout may have started the run but no answer came back ({exc}); "
            "not repeated automatically",
        )
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception as exc:
        return _failed(PROCESSING_ERROR, _unexpected_error(run.pk, exc))


def _store_run_outcome(run_id: UUID | str, outcome: RunOutcome) -> str:
    """Apply ``outcome`` to the run; returns its status. Idempotent."""
    if outcome.status == RUNNING:
        mark_running(run_id, **outcome.fields)
    else:
        finish_run(run_id, outcome.status, **outcome.fields)
    return str(WorkflowRun.objects.values_list("status", flat=True).get(pk=run_id))


def give_up_run(run_id: UUID | str, error: ScoutError) -> str:
    """End a run whose retry-safe failures exhausted the task's retries.

    The ``give_up`` of :func:`perform_run`'s :class:`RetryLater`: the run ends ``failed`` with
    the last error's code. Returns ``failed``, or ``skipped`` when it had already ended.
    """
    failed = fail_run(run_id, error_code_for(error), f"gave up after retries: {error}")
    return "failed" if failed else "skipped"


def _dispatch(run: WorkflowRun) -> RunOutcome:
    with get_client() as client:
        if run.kind == WorkflowRunKind.WEBHOOK:
            trigger = client.workflows.trigger_webhook(
                run.webhook_url, run.inputs.get("webhook_body")
            )
            body = trigger.body if isinstance(trigger.body, dict) else {}
            run_id = str(body.get("workflow_run_id") or body.get("run_id") or "")[:255]
            return RunOutcome(
                SUCCEEDED,
                {"outputs": trigger.body, "raw_response": trigger.body, "scout_run_id": run_id},
            )
        if run.kind == WorkflowRunKind.APP:
            if run.stream:
                with client.apps.stream(run.workflow_id, run.inputs) as app_events:
                    return _consume_app_stream(run, app_events)
            execution = client.apps.execute(run.workflow_id, run.inputs)
            return RunOutcome(
                SUCCEEDED,
                {
                    "scout_run_id": (execution.id or "")[:255],
                    "outputs": execution.outputs,
                    "raw_response": execution.raw,
                },
            )
        if run.stream:
            events = (
                client.workflows.stream_with_config(
                    run.workflow_config or {}, run.inputs, **_config_options(run)
                )
                if run.kind == WorkflowRunKind.WORKFLOW_CONFIG
                else client.workflows.stream(run.workflow_id, run.inputs, **_run_options(run))
            )
            with events:
                return _consume_workflow_stream(run, events)
        result = (
            client.workflows.run_with_config(
                run.workflow_config or {}, run.inputs, **_config_options(run)
            )
            if run.kind == WorkflowRunKind.WORKFLOW_CONFIG
            else client.workflows.run(run.workflow_id, run.inputs, **_run_options(run))
        )
        return _apply_result(run, result)


def _run_options(run: WorkflowRun) -> dict[str, Any]:
    return {
        "environment": run.environment or None,
        "revision_id": run.revision_id or None,
        "session_id": run.session_id or None,
    }


def _config_options(run: WorkflowRun) -> dict[str, Any]:
    return {**_run_options(run), "workflow_key": run.workflow_key or None}


def _apply_result(run: WorkflowRun, result: WorkflowRunResult) -> RunOutcome:
    fields: dict[str, Any] = {
        "scout_run_id": (result.run_id or "")[:255],
        "outputs": result.outputs,
        "duration_ms": result.duration_ms,
        "raw_response": result.raw,
    }
    if result.session_id and not run.session_id:
        fields["session_id"] = result.session_id[:255]
    if result.status == SUCCEEDED:
        return RunOutcome(SUCCEEDED, fields)
    if result.status == FAILED:
        message = "; ".join(str(error) for error in result.errors) or "the workflow run failed"
        return _failed("workflow_failed", message, **fields)
    return RunOutcome(RUNNING, fields)


def _event_payload(event: WorkflowEvent) -> tuple[str, Any, Any]:
    name = getattr(event, "name", None) or type(event).__name__
    raw = getattr(event, "raw", None)
    data = raw if isinstance(raw, dict) else event.model_dump(mode="json")
    return str(name), data, getattr(event, "timestamp", None)


def _consume_workflow_stream(run: WorkflowRun, events: Iterable[WorkflowEvent]) -> RunOutcome:
    """Store a run's events as they arrive; the outcome is the last run event's."""
    terminal: tuple[str, Any] | None = None
    started = timezone.now()
    # Scout's run and session ids are written once, the first time an event carries them, and
    # again with the outcome (in case the database refused them mid-stream).
    found: dict[str, str] = {}
    missing = {"scout_run_id": not run.scout_run_id, "session_id": not run.session_id}

    def store(sequence: int, event: WorkflowEvent) -> None:
        _store_event(run, sequence, *_event_payload(event))
        event_data = getattr(event, "data", None)
        carried = {
            "scout_run_id": getattr(event_data, "workflow_run_id", None),
            "session_id": getattr(event_data, "session_id", None),
        }
        updates = {
            name: str(value)[:255]
            for name, value in carried.items()
            if value and missing[name] and name not in found
        }
        if updates:
            WorkflowRun.objects.filter(pk=run.pk).update(**updates)
            found.update(updates)

    stream = StoredStream(events, store)
    for _, event in stream:
        name = _event_payload(event)[0]
        if name in (WorkflowRunCompleted.event_name, WorkflowRunFailed.event_name):
            terminal = (name, getattr(event, "data", None))
    duration_ms = (timezone.now() - started).total_seconds() * 1000
    if terminal is None:
        if stream.cut:
            return _failed(STREAM_INTERRUPTED, stream.cut, **found)
        return _failed(
            "stream_incomplete",
            "the stream ended without workflow_run_completed or workflow_run_failed",
            **found,
        )
    if terminal[0] == WorkflowRunCompleted.event_name:
        output = getattr(terminal[1], "output", None)
        return RunOutcome(SUCCEEDED, {"outputs": output, "duration_ms": duration_ms, **found})
    message = getattr(terminal[1], "message", None) or "the workflow run failed"
    return _failed("workflow_failed", str(message), duration_ms=duration_ms, **found)


def _merge_app_output(outputs: dict[str, Any], data: Any) -> None:
    if not isinstance(data, dict):
        return
    for block, value in data.items():
        piece = value.get("output") if isinstance(value, dict) else value
        current = outputs.get(block, {}).get("output")
        if isinstance(piece, str) and isinstance(current, str):
            piece = current + piece
        outputs[block] = {"output": piece}


def _consume_app_stream(run: WorkflowRun, events: EventStream[AppStreamEvent]) -> RunOutcome:
    """Store an app's events as they arrive; it succeeds at ``[DONE]`` without an ``error``."""
    outputs: dict[str, Any] = {}
    errors: list[str] = []
    stream = StoredStream(
        events, lambda sequence, event: _store_event(run, sequence, event.event, event.data, None)
    )
    for _, event in stream:
        if event.event == "message":
            _merge_app_output(outputs, event.data)
        elif event.event == "error":
            errors.append(str(event.data))
    if stream.cut:
        return _failed(STREAM_INTERRUPTED, stream.cut)
    if errors:
        return _failed("app_error", "; ".join(errors), outputs=outputs)
    if events.ended_with_done:
        return RunOutcome(SUCCEEDED, {"outputs": outputs})
    return _failed("stream_incomplete", "the app stream ended without [DONE]", outputs=outputs)


# --- housekeeping --------------------------------------------------------------------------


def reconcile_runs(now: datetime, report: ReconcileReport) -> None:
    """Re-enqueue runs whose task never ran; fail streamed runs idle past
    ``STREAM_IDLE_TIMEOUT`` and runs stuck past ``RUN_DEADLINE``."""
    conf = scout_settings()
    deadline_cutoff = now - timedelta(seconds=conf.RUN_DEADLINE)
    never_claimed = WorkflowRun.objects.filter(status=PENDING, start_claimed_at__isnull=True)
    report.requeued_runs.extend(
        str(pk) for pk in requeue_due(never_claimed, "created_at", now, scout_tasks().run_workflow)
    )
    ending: dict[str, Any] = {
        "signal_queryset": WorkflowRun.objects.all(),
        "kwarg": "run",
        "signals_to_send": (signals.workflow_run_failed, signals.workflow_run_completed),
        "status": FAILED,
        "started_at": Coalesce(F("started_at"), Value(now)),
    }
    report.timed_out_runs.extend(fail_idle_streams(WorkflowRun, now, **ending))
    report.timed_out_runs.extend(
        fail_overdue(
            WorkflowRun.objects.filter(status=RUNNING, started_at__lte=deadline_cutoff).order_by(
                "started_at"
            ),
            WorkflowRun.objects.filter(
                status=PENDING, start_claimed_at__lte=deadline_cutoff
            ).order_by("start_claimed_at"),
            **ending,
            error_code="run_timeout",
            error_message=(
                f"no outcome within RUN_DEADLINE ({conf.RUN_DEADLINE}s); the worker may have died"
            ),
            completed_at=now,
        )
    )


def prune_runs(cutoff: datetime) -> int:
    """Delete events older than ``cutoff`` of runs finished before it; returns how many."""
    return delete_in_batches(
        # ``completed_at`` is set only with a terminal status (see ``prune_interactions``).
        WorkflowRunEvent.objects.filter(created_at__lt=cutoff, run__completed_at__lt=cutoff)
    )
