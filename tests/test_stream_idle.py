"""The idle deadline of a stream a worker reads to its end (``STREAM_IDLE_TIMEOUT``).

A streamed interaction or run is read by one worker; when that worker dies mid-stream nothing
can resume the stream nor send it again. Reconcile fails a row whose worker has stored no event
(nor, before the first, claimed it) for ``STREAM_IDLE_TIMEOUT`` with ``stream_interrupted``.
Each test runs for both kinds against the fake Scout; reconcile is given the time (``now=``),
and a worker's death is an exception no handler catches, raised as an event is about to be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db.models import Model
from django.test import override_settings
from django.utils import timezone

from django_scout import services
from django_scout.models import Interaction, WorkflowRun
from django_scout.services import interactions, live, workflows
from django_scout.testing import FakeScout, WorkflowBehaviour

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 600
IDLE_MESSAGE = (
    f"no event arrived for STREAM_IDLE_TIMEOUT ({TIMEOUT}s); "
    "the worker reading the stream may have died"
)


class WorkerKilled(BaseException):
    """The worker process dies (SIGKILL, the OOM killer): no ``except Exception`` sees it."""


@dataclass(frozen=True)
class Kind:
    """How to run one kind of streamed row against the fake Scout."""

    model: type[Interaction] | type[WorkflowRun]
    #: Serves a stream of five or more events; the path of its request.
    serve: Callable[[FakeScout], Any]
    path: str
    #: Saves a pending row (streamed or not).
    create: Callable[[bool], Interaction | WorkflowRun]
    #: The task's work (claim, send, read, store); where its claim is.
    perform: Callable[[Any], str]
    claim: tuple[Any, str]
    #: Where each event is stored, and the sequence of the event a call stores.
    store: tuple[Any, str]
    sequence: Callable[..., int]
    #: Its status while its stream is read (after the first event), and its signals.
    reading: str
    accepted: list[str]
    ended: list[str]
    succeeded: str


INTERACTION = Kind(
    model=Interaction,
    serve=lambda scout: scout.agent("a1", events=5),
    path="/world/*/_interact",
    create=lambda stream: Interaction.objects.create(
        agent_id="a1", messages=[{"content": "hi"}], stream=stream
    ),
    perform=interactions.perform_start,
    claim=(interactions, "claim_start"),
    store=(interactions, "store_event_stream"),
    sequence=lambda interaction, events, **_: events[0].sequence,
    reading="accepted",
    accepted=["interaction_accepted"],
    ended=["interaction_failed", "interaction_completed"],
    succeeded="interaction_succeeded",
)
RUN = Kind(
    model=WorkflowRun,
    serve=lambda scout: scout.workflow("wf", WorkflowBehaviour(blocks=2, outputs={"a": 1})),
    path="/v2/workflows/*",
    create=lambda stream: WorkflowRun.objects.create(workflow_id="wf", stream=stream),
    perform=workflows.perform_run,
    claim=(workflows, "claim_run"),
    store=(workflows, "_store_event"),
    sequence=lambda run, sequence, *_: sequence,
    reading="running",
    accepted=[],
    ended=["workflow_run_failed", "workflow_run_completed"],
    succeeded="workflow_run_succeeded",
)


@pytest.fixture(params=[INTERACTION, RUN], ids=["interaction", "run"])
def kind(request: pytest.FixtureRequest, fake_scout: FakeScout) -> Iterator[Kind]:
    conf = fake_scout.scout_settings(
        STREAM_IDLE_TIMEOUT=TIMEOUT, TASK_RETRY_BACKOFF=0.0, MAX_RETRIES=0, TASK_MAX_RETRIES=3
    )
    chosen: Kind = request.param
    chosen.serve(fake_scout)
    with override_settings(SCOUT=conf):
        yield chosen


def names(log: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in log]


def fresh(row: Model) -> Any:
    row.refresh_from_db()
    return row


@contextmanager
def before_event(kind: Kind, sequence: int, action: Callable[[], object]) -> Iterator[None]:
    """Patch ``kind``'s event store so that ``action`` runs before event ``sequence`` is stored
    (on top of the store as it is then, so that hooks nest)."""
    module, name = kind.store
    store = getattr(module, name)

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if kind.sequence(*args, **kwargs) == sequence:
            action()
        return store(*args, **kwargs)

    with mock.patch.object(module, name, hooked):
        yield


def kill() -> None:
    raise WorkerKilled


@contextmanager
def after_claim(kind: Kind, action: Callable[[], object]) -> Iterator[None]:
    """Patch ``kind``'s claim so that ``action`` runs once the row is claimed."""
    module, name = kind.claim
    claim = getattr(module, name)

    def hooked(pk: Any) -> Any:
        claimed = claim(pk)
        action()
        return claimed

    with mock.patch.object(module, name, hooked):
        yield


def killed_at(kind: Kind, sequence: int | None) -> Any:
    """A streamed row whose worker died as event ``sequence`` was about to be stored (``None``:
    once it had claimed the row, before sending anything)."""
    row = kind.create(True)
    dying = after_claim(kind, kill) if sequence is None else before_event(kind, sequence, kill)
    with dying, pytest.raises(WorkerKilled):
        kind.perform(row.pk)
    return fresh(row)


def reconcile_at(now: datetime) -> services.ReconcileReport:
    # What reconcile enqueues is not run here: the rows are judged as they are.
    with mock.patch("django_scout.services.publishing.TaskPublisher.publish", return_value=True):
        return services.reconcile(now=now)


def timed_out(kind: Kind, report: services.ReconcileReport) -> list[str]:
    return report.timed_out if kind is INTERACTION else report.timed_out_runs


def assert_ended_idle(row: Any, now: datetime) -> None:
    assert (row.status, row.error_code, row.error_message) == (
        "failed",
        "stream_interrupted",
        IDLE_MESSAGE,
    )
    assert row.completed_at == now


@pytest.mark.parametrize("sequence", [None, 2], ids=["once-claimed", "mid-stream"])
def test_a_stream_whose_worker_died_fails_once_idle_past_the_timeout(
    kind: Kind, fake_scout: FakeScout, signal_log: list[Any], sequence: int | None
) -> None:
    row = killed_at(kind, sequence)
    left_as = kind.reading if sequence else "pending"
    assert (row.status, row.event_count) == (left_as, sequence or 0)
    last_sign_of_life = row.stream_progress_at
    assert last_sign_of_life is not None
    assert kind.perform(row.pk) == "skipped"  # the redelivered task: claimed, never sent again

    almost = last_sign_of_life + timedelta(seconds=TIMEOUT - 1)
    assert timed_out(kind, reconcile_at(almost)) == []
    assert (fresh(row).status, row.error_code) == (left_as, "")

    idle = last_sign_of_life + timedelta(seconds=TIMEOUT)
    announce = "django_scout.services.due.notify_changed"
    with mock.patch(announce, wraps=live.notify_changed) as announced:
        assert timed_out(kind, reconcile_at(idle)) == [str(row.pk)]
    announced.assert_called_once_with(kind.model, row.pk)  # to live viewers
    assert_ended_idle(fresh(row), idle)
    assert timed_out(kind, reconcile_at(idle + timedelta(hours=1))) == []
    accepted = kind.accepted if sequence else []
    assert signal_log == [(name, str(row.pk)) for name in accepted + kind.ended]
    assert len(fake_scout.requests_matching("POST", kind.path)) == (1 if sequence else 0)


def test_each_stored_event_puts_the_deadline_back(kind: Kind, signal_log: list[Any]) -> None:
    """The claim an hour ago is not what counts once events arrived: the last one is."""
    row = kind.create(True)
    an_hour_ago = timezone.now() - timedelta(hours=1)

    def claimed_an_hour_ago() -> None:
        kind.model.objects.filter(pk=row.pk).update(stream_progress_at=an_hour_ago)

    with (
        before_event(kind, 0, claimed_an_hour_ago),
        before_event(kind, 3, kill),
        pytest.raises(WorkerKilled),
    ):
        kind.perform(row.pk)
    row = fresh(row)
    assert row.stream_progress_at > an_hour_ago + timedelta(minutes=59)
    later = row.stream_progress_at + timedelta(seconds=TIMEOUT - 1)
    assert timed_out(kind, reconcile_at(later)) == []
    assert fresh(row).status == kind.reading
    assert names(signal_log) == kind.accepted


def test_rows_not_streamed_are_left_to_their_own_deadlines(kind: Kind) -> None:
    streamed = killed_at(kind, None)
    plain = kind.create(False)
    module, claim = kind.claim
    assert getattr(module, claim)(plain.pk) is not None  # claimed as its request is sent
    assert fresh(plain).stream_progress_at is None
    idle = streamed.stream_progress_at + timedelta(seconds=TIMEOUT + 60)
    assert timed_out(kind, reconcile_at(idle)) == [str(streamed.pk)]
    assert (fresh(plain).status, fresh(plain).error_code) == ("pending", "")


def test_a_stream_whose_claim_was_given_back_is_not_idle(kind: Kind, fake_scout: FakeScout) -> None:
    """Scout refused it with a 503: nothing started, and nobody reads it until it is claimed
    again (by the task's retry, or by reconcile when the broker lost that)."""
    fake_scout.fail_next("POST", kind.path, 503)
    row = kind.create(True)
    with pytest.raises(services.RetryLater):
        kind.perform(row.pk)
    assert (fresh(row).status, fresh(row).stream_progress_at) == ("pending", None)
    report = reconcile_at(timezone.now() + timedelta(seconds=TIMEOUT + 60))
    assert timed_out(kind, report) == []
    assert str(row.pk) in report.requeued_starts + report.requeued_runs
    assert fresh(row).status == "pending"


def test_a_worker_still_reading_after_the_deadline_changes_nothing(
    kind: Kind, fake_scout: FakeScout, signal_log: list[Any]
) -> None:
    """The agent was only silent: reconcile fails the row while its worker still reads the
    stream, and the worker's later writes (its events, the stream's end) leave that result."""
    row = kind.create(True)
    found: list[datetime] = []

    def reconcile_while_silent() -> None:
        now = timezone.now() + timedelta(seconds=TIMEOUT + 1)
        assert timed_out(kind, reconcile_at(now)) == [str(row.pk)]
        found.append(now)

    with before_event(kind, 3, reconcile_while_silent):
        assert kind.perform(row.pk) == "failed"
    row = fresh(row)
    assert_ended_idle(row, found[0])
    assert kind.succeeded not in names(signal_log)
    assert signal_log == [(name, str(row.pk)) for name in kind.accepted + kind.ended]
    assert row.event_count == row.events.count() > 3  # its events were still stored
    if kind is RUN:
        assert (row.outputs, row.duration_ms) == (None, None)
    assert len(fake_scout.requests_matching("POST", kind.path)) == 1
