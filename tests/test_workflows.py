"""Workflow runs, streamed and config runs, webhook triggers and apps (eager, fake Scout)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings

from django_scout.api import (
    execute_app,
    rerun,
    run_workflow,
    run_workflow_with_config,
    trigger_workflow_webhook,
)
from django_scout.models import WorkflowRun, WorkflowRunEvent
from django_scout.services import common, workflows
from django_scout.tasks import run_workflow_task
from django_scout.testing import AppBehaviour, FakeScout, WorkflowBehaviour
from tests.helpers import Committed, DatabaseLock, locking_before

# Rolled back after each test; each call that commits in production (a service call, a
# task) runs under ``committed()``, which runs its on_commit callbacks (the eager task) as it ends.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _point_at_fake(fake_scout: FakeScout) -> Any:
    conf = fake_scout.scout_settings(
        CALLBACK_BASE_URL="https://app.example.test",
        TASK_RETRY_BACKOFF=0.0,
        MAX_RETRIES=0,
        TASK_MAX_RETRIES=3,
    )
    with override_settings(SCOUT=conf):
        yield


def names(log: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in log]


def fresh(run: WorkflowRun) -> WorkflowRun:
    run.refresh_from_db()
    return run


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: run_workflow(""), "workflow_id"),
        (lambda: run_workflow("wf", environment="prod"), "environment"),
        (lambda: run_workflow("wf", ["not", "a", "dict"]), "inputs"),  # type: ignore[arg-type]
        (lambda: run_workflow("wf", {"when": object()}), "JSON"),
        (lambda: run_workflow("wf", revision_id=""), "revision_id"),
        (lambda: run_workflow_with_config("nope"), "workflow_config"),  # type: ignore[arg-type]
        (lambda: trigger_workflow_webhook("ftp://x/y"), "http"),
        (lambda: trigger_workflow_webhook("https://h/w", {1, 2}), "JSON"),
        (lambda: execute_app(""), "app_id"),
    ],
)
def test_invalid_input_raises_and_saves_nothing(
    call: Any, fragment: str, committed: Committed
) -> None:
    with committed(), pytest.raises(ValueError, match=fragment):
        call()
    assert not WorkflowRun.objects.exists()


# --- plain runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["sdk", "docs"])
def test_plain_run_both_shapes(
    fake_scout: FakeScout, signal_log: list[Any], shape: Any, committed: Committed
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(shape=shape, outputs={"urgency": "high"}))
    with committed():
        run = run_workflow("wf", {"ticket": 1}, environment="staging", revision_id="r1")
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.outputs == {"urgency": "high"}
    assert run.scout_run_id
    assert run.raw_response
    assert run.completed_at is not None
    if shape == "docs":
        assert run.duration_ms == 1840
    else:
        assert run.session_id
    (recorded,) = fake_scout.workflow_runs
    assert (recorded.environment, recorded.revision_id) == ("staging", "r1")
    assert signal_log == [
        ("workflow_run_succeeded", str(run.pk)),
        ("workflow_run_completed", str(run.pk)),
    ]


@pytest.mark.parametrize("shape", ["sdk", "docs"])
def test_plain_run_failure(
    fake_scout: FakeScout, signal_log: list[Any], shape: Any, committed: Committed
) -> None:
    fake_scout.workflow(
        "wf", WorkflowBehaviour(shape=shape, outcome="failed", error_message="block 2 broke")
    )
    with committed():
        run = run_workflow("wf")
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "workflow_failed")
    if shape == "sdk":
        assert "block 2 broke" in run.error_message
    assert names(signal_log) == ["workflow_run_failed", "workflow_run_completed"]


def test_scout_422_fails_the_run(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.workflow("wf")
    fake_scout.fail_next(
        "POST",
        "/v2/workflows/*",
        422,
        body={"detail": [{"loc": ["query", "environment"], "msg": "bad", "type": "enum"}]},
    )
    with committed():
        run = run_workflow("wf")
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "validation_error")
    assert "query.environment" in run.error_message
    assert len(fake_scout.requests_matching("POST", "/v2/workflows/*")) == 1


@pytest.mark.parametrize("status", [503, 429, 502])
def test_transient_errors_retry_without_running_twice(
    fake_scout: FakeScout, status: int, committed: Committed
) -> None:
    fake_scout.workflow("wf")
    fake_scout.fail_next("POST", "/v2/workflows/*", status, times=2, retry_after=0)
    with committed():
        run = run_workflow("wf")
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.start_attempts == 3
    assert len(fake_scout.workflow_runs) == 1


def test_retries_exhausted_fail(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.workflow("wf")
    fake_scout.fail_next("POST", "/v2/workflows/*", 503, times=10)
    with committed():
        run = run_workflow("wf")
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "http_503")
    assert len(fake_scout.requests_matching("POST", "/v2/workflows/*")) == 4


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop_connection": True}])
def test_ambiguous_failure_is_not_repeated(
    fake_scout: FakeScout, fault: dict[str, Any], committed: Committed
) -> None:
    fake_scout.workflow("wf")
    fake_scout.fail_next("POST", "/v2/workflows/*", **fault)
    with committed():
        run = run_workflow("wf")
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "outcome_unknown")
    assert len(fake_scout.requests_matching("POST", "/v2/workflows/*")) == 1
    with committed():
        assert run_workflow_task.apply(args=(str(run.pk),)).get() == "skipped"


# --- streamed runs ---------------------------------------------------------------------------


def test_streamed_run_stores_every_event_in_order(
    fake_scout: FakeScout, signal_log: list[Any], committed: Committed
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(blocks=2, outputs={"answer": "42"}))
    with committed():
        run = run_workflow("wf", {"q": 1}, stream=True)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.outputs == {"answer": "42"}
    (recorded,) = fake_scout.workflow_runs
    assert (run.scout_run_id, run.session_id) == (recorded.run_id, recorded.session_id)
    event_names = list(run.events.order_by("sequence").values_list("name", flat=True))
    assert event_names[0] == "workflow_run_started"
    assert event_names[-1] == "workflow_run_completed"
    assert event_names.count("block_run_started") == 2
    assert run.event_count == len(event_names)
    assert list(run.events.values_list("sequence", flat=True)) == list(range(len(event_names)))
    assert names(signal_log) == ["workflow_run_succeeded", "workflow_run_completed"]


def test_streamed_failure_takes_message_from_last_event(
    fake_scout: FakeScout, committed: Committed
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(outcome="failed", error_message="LLM quota"))
    with committed():
        run = run_workflow("wf", stream=True)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "workflow_failed")
    assert "LLM quota" in run.error_message
    assert run.events.last() is not None
    assert run.events.order_by("sequence").last().name == "workflow_run_failed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mode", "code"), [("clean", "stream_incomplete"), ("abort", "stream_interrupted")]
)
def test_stream_cut_off_midway_fails_clearly(
    fake_scout: FakeScout, mode: Any, code: str, committed: Committed
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(blocks=3, cut_off_after=4, cut_off_mode=mode))
    with committed():
        run = run_workflow("wf", stream=True)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", code)
    assert WorkflowRunEvent.objects.filter(run=run).count() == 4
    assert len(fake_scout.workflow_runs) == 1


def test_unknown_stream_events_are_kept(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(unknown_event_name="brand_new_event"))
    with committed():
        run = run_workflow("wf", stream=True)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.events.filter(name="brand_new_event").exists()


def streamed_run(kind: str, fake_scout: FakeScout) -> WorkflowRun:
    """Start a streamed workflow run (seven events) or app execution (four), or a plain workflow
    run (``plain``)."""
    if kind in ("workflow", "plain"):
        fake_scout.workflow("wf", WorkflowBehaviour(blocks=1, outputs={"answer": "42"}))
        return run_workflow("wf", stream=kind == "workflow")
    fake_scout.app("app1", AppBehaviour(tokens=["Hel", "lo", "!"], start_message="Thinking"))
    return execute_app("app1", stream=True)


def run_requests(fake_scout: FakeScout) -> int:
    """How many requests were sent to Scout (a run's or an app's)."""
    return len(fake_scout.requests_matching("POST"))


StartLocked = Callable[[str, str, Callable[..., bool]], WorkflowRun]


@pytest.fixture
def start_locked(
    fake_scout: FakeScout, database_lock: DatabaseLock, committed: Committed
) -> StartLocked:
    """``start_locked(kind, name, when)`` starts a :func:`streamed_run` of ``kind`` with the
    database locked before the call of ``workflows.<name>`` whose arguments satisfy ``when``,
    until the task's retry; returns the run as it ended."""

    def start(kind: str, name: str, when: Callable[..., bool]) -> WorkflowRun:
        write = locking_before(database_lock, getattr(workflows, name), when)
        with mock.patch.object(workflows, name, write), committed():
            run = streamed_run(kind, fake_scout)
        run.refresh_from_db()
        return run

    return start


@pytest.mark.parametrize("kind", ["workflow", "app"])
def test_a_database_locked_mid_stream_fails_the_run_on_the_tasks_retry(
    fake_scout: FakeScout,
    signal_log: list[Any],
    database_lock: DatabaseLock,
    start_locked: StartLocked,
    committed: Committed,
    kind: str,
) -> None:
    """The lock outlasts the in-place wait and the outcome's own write: the stream is abandoned,
    and the task's retry stores its outcome without sending anything again."""
    run = start_locked(kind, "_store_event", lambda run, sequence, *_: sequence == 2)
    assert (run.status, run.error_code) == ("failed", "stream_interrupted")
    assert run.error_message.startswith(
        "the database refused writes mid-stream (OperationalError: database is locked)"
    )
    assert list(run.events.order_by("sequence").values_list("sequence", flat=True)) == [0, 1]
    assert database_lock.refused == common.STREAM_WRITE_ATTEMPTS + 1
    assert run_requests(fake_scout) == 1
    assert run.start_attempts == 1
    assert names(signal_log) == ["workflow_run_failed", "workflow_run_completed"]
    with committed():
        assert run_workflow_task.apply(args=(str(run.pk),)).get() == "skipped"
    assert run_requests(fake_scout) == 1


@pytest.mark.parametrize("kind", ["workflow", "app", "plain"])
def test_a_database_locked_at_the_runs_last_write_stores_its_end_on_the_retry(
    fake_scout: FakeScout,
    signal_log: list[Any],
    database_lock: DatabaseLock,
    start_locked: StartLocked,
    kind: str,
) -> None:
    run = start_locked(kind, "finish_run", lambda *_: not database_lock.refused)
    assert (run.status, run.error_code) == ("succeeded", "")
    assert database_lock.refused == 1
    expected: dict[str, Any] = {"answer": "42"}
    if kind == "app":
        expected = {"output": {"output": "Hello!"}}
    assert run.outputs == expected
    assert run.event_count == run.events.count() == {"workflow": 7, "app": 4, "plain": 0}[kind]
    if kind != "app":
        (recorded,) = fake_scout.workflow_runs
        assert (run.scout_run_id, run.session_id) == (recorded.run_id, recorded.session_id)
    assert run_requests(fake_scout) == 1
    assert names(signal_log) == ["workflow_run_succeeded", "workflow_run_completed"]


def test_a_run_outcome_survives_the_trip_through_the_tasks_arguments() -> None:
    outcome = workflows.RunOutcome("succeeded", {"outputs": {"a": [1, None]}, "duration_ms": 2.5})
    carried = json.loads(json.dumps(outcome.as_dict()))
    assert workflows.RunOutcome.from_dict(carried) == outcome


# --- config runs -----------------------------------------------------------------------------


def test_config_run_streams_by_default(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.default_workflow = WorkflowBehaviour(outputs={"x": 1})
    with committed():
        run = run_workflow_with_config({"blocks": []}, {"a": 1}, workflow_key="key-1")
    run.refresh_from_db()
    assert (run.kind, run.stream, run.status) == ("workflow_config", True, "succeeded")
    assert run.outputs == {"x": 1}
    assert fake_scout.workflow_runs[-1].workflow_config == {"blocks": []}


@pytest.mark.parametrize(("answer", "status"), [("run", "succeeded"), ("event", "running")])
def test_config_run_plain_answers(
    fake_scout: FakeScout, answer: Any, status: str, committed: Committed
) -> None:
    fake_scout.default_workflow = WorkflowBehaviour(config_response=answer)
    with committed():
        run = run_workflow_with_config({}, stream=False)
    run.refresh_from_db()
    assert run.status == status
    assert run.scout_run_id


# --- webhook triggers ------------------------------------------------------------------------


def test_webhook_trigger_masks_its_token_everywhere(
    fake_scout: FakeScout, caplog: pytest.LogCaptureFixture, committed: Committed
) -> None:
    fake_scout.workflow("wf")
    url = fake_scout.webhook_url("wf")
    token = url.rsplit("/", 1)[1]
    with caplog.at_level(logging.DEBUG):
        with committed():
            run = trigger_workflow_webhook(url, {"order": 7})
        run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.workflow_id == "wf"
    assert fake_scout.workflow_runs[-1].inputs == {"webhook_body": {"order": 7}}
    assert run.webhook_url == url  # stored so it can be repeated
    for shown in (str(run), repr(run), run.target, caplog.text):
        assert token not in shown
    assert "***" in run.target


def test_webhook_trigger_failure_message_is_masked(
    fake_scout: FakeScout, committed: Committed
) -> None:
    fake_scout.workflow("wf")
    good = fake_scout.webhook_url("wf")
    bad = good.rsplit("/", 1)[0] + "/wrong-secret-token"
    with committed():
        run = trigger_workflow_webhook(bad, {})
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_code in ("unauthorized", "not_found")
    assert "wrong-secret-token" not in run.error_message


# --- apps ------------------------------------------------------------------------------------


def test_app_plain(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["Hel", "lo"]))
    with committed():
        run = execute_app("app1", {"input": "hi"})
    run.refresh_from_db()
    assert (run.kind, run.status) == ("app", "succeeded")
    assert run.scout_run_id
    assert run.outputs


def test_app_stream_accumulates_tokens(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["Hel", "lo"], start_message="Thinking"))
    with committed():
        run = execute_app("app1", {"input": "hi"}, stream=True)
    run.refresh_from_db()
    assert run.status == "succeeded"
    kinds = list(run.events.order_by("sequence").values_list("name", flat=True))
    assert kinds == ["start_message", "message", "message"]
    assert isinstance(run.outputs, dict)
    (block,) = run.outputs.values()
    assert block == {"output": "Hello"}


def test_app_stream_error_event_fails(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["a"], error="vector store offline"))
    with committed():
        run = execute_app("app1", stream=True)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "app_error")
    assert "vector store offline" in run.error_message


def test_app_stream_without_done_fails(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.app("app1", AppBehaviour(tokens=["a"], done_sentinel=None))
    with committed():
        run = execute_app("app1", stream=True)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "stream_incomplete")


# --- re-running ------------------------------------------------------------------------------


def test_rerun_repeats_parameters(
    fake_scout: FakeScout, signal_log: list[Any], committed: Committed
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(shape="docs"))
    with committed():
        first = run_workflow("wf", {"n": 1}, environment="development", stream=True)
    first.refresh_from_db()
    with committed():
        second = rerun(first)
    second.refresh_from_db()
    assert second.pk != first.pk
    assert second.rerun_of_id == first.pk
    assert (second.workflow_id, second.inputs, second.environment, second.stream) == (
        "wf",
        {"n": 1},
        "development",
        True,
    )
    assert second.status == "succeeded"
    assert len(fake_scout.workflow_runs) == 2
    assert names(signal_log).count("workflow_run_completed") == 2


def test_duplicated_task_runs_once(fake_scout: FakeScout, committed: Committed) -> None:
    fake_scout.workflow("wf")
    with committed():
        run = run_workflow("wf")
    for _ in range(3):
        with committed():
            assert run_workflow_task.apply(args=(str(run.pk),)).get() == "skipped"
    assert len(fake_scout.workflow_runs) == 1


# --- unexpected errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "stream", "target"),
    [(0, False, "_apply_result"), (3, False, "_apply_result"), (0, True, "_store_event")],
    ids=["after-scout-answered", "on-the-last-retry", "mid-stream"],
)
def test_an_unexpected_error_in_a_run_ends_it_failed(
    fake_scout: FakeScout,
    signal_log: list[Any],
    faults: int,
    stream: bool,
    target: str,
    committed: Committed,
) -> None:
    fake_scout.workflow("wf", WorkflowBehaviour(blocks=1))
    if faults:  # retry-safe failures first: TASK_MAX_RETRIES (3) of them
        fake_scout.fail_next("POST", "/v2/workflows/*", 503, times=faults, retry_after=0)
    with mock.patch.object(workflows, target, side_effect=RuntimeError("boom")), committed():
        run = run_workflow("wf", stream=stream)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "processing_error")
    assert "RuntimeError: boom" in run.error_message
    assert run.completed_at is not None
    assert run.start_attempts == faults + 1
    assert len(fake_scout.workflow_runs) == 1
    assert names(signal_log) == ["workflow_run_failed", "workflow_run_completed"]
    # Never sent again.
    with committed():
        assert run_workflow_task.apply(args=(str(run.pk),)).get() == "skipped"
    assert len(fake_scout.workflow_runs) == 1


# --- housekeeping ----------------------------------------------------------------------------


def test_reconcile_reenqueues_runs_the_broker_lost(
    fake_scout: FakeScout, committed: Committed
) -> None:
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from django_scout import services, tasks

    fake_scout.workflow("wf")
    with (
        mock.patch.object(tasks.run_workflow_task, "apply_async", side_effect=OSError("down")),
        committed(),
    ):
        run = run_workflow("wf")
    assert fresh(run).status == "pending"
    with committed():
        assert services.reconcile().requeued_runs == []  # not due before RECONCILE_GRACE
    later = timezone.now() + timedelta(minutes=2)
    with committed():
        assert services.reconcile(now=later).requeued_runs == [str(run.pk)]
    assert fresh(run).status == "succeeded"


def test_reconcile_times_out_stuck_runs(signal_log: list[Any], committed: Committed) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from django_scout import services

    stuck = WorkflowRun.objects.create(
        workflow_id="wf", status="running", started_at=timezone.now() - timedelta(days=2)
    )
    fresh_run = WorkflowRun.objects.create(
        workflow_id="wf", status="running", started_at=timezone.now()
    )
    with committed():
        report = services.reconcile()
    assert report.timed_out_runs == [str(stuck.pk)]
    assert (fresh(stuck).status, fresh(stuck).error_code) == ("failed", "run_timeout")
    assert fresh(fresh_run).status == "running"
    assert names(signal_log) == ["workflow_run_failed", "workflow_run_completed"]


def test_prune_deletes_old_run_events(fake_scout: FakeScout, committed: Committed) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from django_scout import services

    fake_scout.workflow("wf", WorkflowBehaviour(blocks=1))
    with committed():
        run = run_workflow("wf", stream=True)
    run.refresh_from_db()
    count = run.events.count()
    assert count > 0
    assert services.prune(7)["run_events"] == 0
    result = services.prune(7, now=timezone.now() + timedelta(days=8))
    assert result["run_events"] == count
    assert WorkflowRun.objects.filter(pk=run.pk).exists()


def test_a_nul_character_in_a_streamed_run_is_stored(
    fake_scout: FakeScout, committed: Committed
) -> None:
    """PostgreSQL cannot store NUL: there it becomes U+FFFD; other databases keep it. Either
    way the run ends and every event is stored."""
    fake_scout.app("app1", AppBehaviour(tokens=["Hel\x00", "lo"], start_message="Think\x00ing"))
    with committed():
        run = execute_app("app1", stream=True)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error_code, run.error_message)
    stored = json.dumps([list(run.events.values_list("name", "data")), run.outputs])
    kept = "\\ufffd" if connection.vendor == "postgresql" else "\\u0000"
    assert stored.count(kept) >= 2, stored
