"""Workflow runs end to end: PostgreSQL + Redis + a real Celery worker + the fake Scout.

Every kind of run (plain, streamed, app, webhook trigger) goes through ``run_workflow_task`` in
the worker subprocess; signals are counted through ``SignalRecord`` rows (object id = run pk).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerDown

from django_scout import services, tasks
from django_scout.api import execute_app, run_workflow, trigger_workflow_webhook
from django_scout.models import WorkflowRun, WorkflowRunEvent
from django_scout.services.publishing import publisher
from django_scout.testing import AppBehaviour, FakeScout, WorkflowBehaviour
from tests.integration.helpers import (
    WORKER_SCOUT,
    past_reconcile_grace,
    progress_until_terminal,
    terminal,
    wait_signals,
)
from tests.testapp.models import SignalRecord

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SUCCESS_SIGNALS = ["workflow_run_succeeded", "workflow_run_completed"]
FAILURE_SIGNALS = ["workflow_run_failed", "workflow_run_completed"]


def event_names(run: WorkflowRun) -> list[str]:
    return list(run.events.order_by("sequence").values_list("name", flat=True))


def worker_log(worker: subprocess.Popen[bytes]) -> str:
    log_path: Path = worker.log_path  # type: ignore[attr-defined]
    return log_path.read_text(errors="replace")


# --- plain runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["sdk", "docs"])
def test_plain_run_both_shapes(stack: FakeScout, shape: Literal["sdk", "docs"]) -> None:
    stack.workflow("wf-plain", WorkflowBehaviour(shape=shape, outputs={"urgency": "high"}))
    run = terminal(run_workflow("wf-plain", {"ticket": 1}, environment="staging"))
    assert (run.status, run.error_code) == ("succeeded", "")
    assert run.outputs == {"urgency": "high"}
    assert run.scout_run_id
    (recorded,) = stack.workflow_runs
    assert run.scout_run_id == recorded.run_id
    assert (recorded.environment, recorded.inputs, recorded.streaming) == (
        "staging",
        {"ticket": 1},
        False,
    )
    if shape == "docs":
        assert run.duration_ms == 1840
    assert wait_signals(run, 2) == SUCCESS_SIGNALS
    assert {r.status for r in SignalRecord.objects.filter(object_id=str(run.pk))} == {"succeeded"}


# --- streamed runs -----------------------------------------------------------------------------


def test_streamed_success_stores_every_event_in_order_and_shows_progress(
    stack: FakeScout,
) -> None:
    behaviour = stack.workflow(
        "wf-stream", WorkflowBehaviour(stream_interval=0.2, blocks=3, outputs={"answer": "42"})
    )
    run = run_workflow("wf-stream", {"q": 1}, stream=True)
    seen = progress_until_terminal(run)
    assert run.status == "succeeded"
    names = event_names(run)
    total = len(names)
    assert total == 1 + behaviour.blocks * (behaviour.updates_per_block + 3) + 1
    assert run.event_count == total
    assert list(run.events.order_by("sequence").values_list("sequence", flat=True)) == list(
        range(total)
    )
    assert names[0] == "workflow_run_started"
    assert names[-1] == "workflow_run_completed"
    assert names.count("block_run_started") == behaviour.blocks
    last = run.events.order_by("sequence").last()
    assert last is not None
    assert isinstance(last.data, dict)
    assert run.outputs == last.data["data"]["output"] == {"answer": "42"}
    assert run.scout_run_id == stack.workflow_runs[0].run_id
    # Progress was visible while the run was going: running, with some (not all) events stored.
    midway = [s for s in seen if s[0] == "running" and 0 < s[1] < total and 0 < s[2] < total]
    assert midway, f"never saw a running run with partial events: {seen}"
    assert len(stack.workflow_runs) == 1
    assert wait_signals(run, 2) == SUCCESS_SIGNALS


def test_streamed_failure(stack: FakeScout) -> None:
    stack.workflow("wf-sfail", WorkflowBehaviour(outcome="failed", error_message="LLM quota hit"))
    run = terminal(run_workflow("wf-sfail", stream=True))
    assert (run.status, run.error_code) == ("failed", "workflow_failed")
    assert run.error_message == "LLM quota hit"
    names = event_names(run)
    assert names[0] == "workflow_run_started"
    assert names[-1] == "workflow_run_failed"
    assert run.event_count == len(names)
    assert wait_signals(run, 2) == FAILURE_SIGNALS


@pytest.mark.parametrize(
    ("mode", "code"), [("clean", "stream_incomplete"), ("abort", "stream_interrupted")]
)
def test_stream_cut_off_midway(
    stack: FakeScout, mode: Literal["clean", "abort"], code: str
) -> None:
    stack.workflow("wf-cut", WorkflowBehaviour(blocks=3, cut_off_after=4, cut_off_mode=mode))
    run = terminal(run_workflow("wf-cut", stream=True))
    assert (run.status, run.error_code) == ("failed", code)
    assert run.error_message
    assert event_names(run)[0] == "workflow_run_started"
    assert WorkflowRunEvent.objects.filter(run=run).count() == 4
    assert run.event_count == 4
    assert wait_signals(run, 2) == FAILURE_SIGNALS  # the pause also gives a retry time to show
    assert len(stack.workflow_runs) == 1  # never repeated
    assert len(stack.requests_matching("POST", "/v2/workflows/*")) == 1


# --- errors and retries ------------------------------------------------------------------------


def test_bad_environment_rejected_synchronously(stack: FakeScout) -> None:
    with pytest.raises(ValueError, match="environment"):
        run_workflow("wf-env", environment="prod")
    assert not WorkflowRun.objects.exists()
    time.sleep(0.3)
    assert stack.requests_matching("POST", "/v2/workflows/*") == []


def test_scout_422_fails_the_run(stack: FakeScout) -> None:
    stack.workflow("wf-422")
    stack.fail_next(
        "POST",
        "/v2/workflows/*",
        422,
        body={
            "detail": [
                {
                    "loc": ["query", "environment"],
                    "msg": "value is not a valid enumeration member",
                    "type": "type_error.enum",
                }
            ]
        },
    )
    run = terminal(run_workflow("wf-422", environment="console"))
    assert (run.status, run.error_code) == ("failed", "validation_error")
    assert "query.environment" in run.error_message
    assert stack.workflow_runs == []
    assert len(stack.requests_matching("POST", "/v2/workflows/*")) == 1  # a 4xx is not retried
    assert wait_signals(run, 2) == FAILURE_SIGNALS


def test_503_twice_then_success(stack: FakeScout) -> None:
    stack.workflow("wf-flaky")
    stack.fail_next("POST", "/v2/workflows/*", 503, times=2)
    run = terminal(run_workflow("wf-flaky"))
    assert run.status == "succeeded"
    assert len(stack.requests_matching("POST", "/v2/workflows/*")) == 3
    assert len(stack.workflow_runs) == 1  # started exactly once at Scout
    assert wait_signals(run, 2) == SUCCESS_SIGNALS


def test_run_enqueued_while_broker_down_is_picked_up_by_reconcile(
    stack: FakeScout, integration_scout_settings: dict[str, Any]
) -> None:
    stack.workflow("wf-broker")
    with mock.patch.object(
        tasks.run_workflow_task, "apply_async", side_effect=BrokerDown("broker down")
    ):
        run = run_workflow("wf-broker")
    time.sleep(0.5)
    run.refresh_from_db()
    assert run.status == "pending"  # saved, but no task was enqueued
    publisher.reset()  # reconcile runs in beat's worker, whose publisher saw no failure
    later = past_reconcile_grace(integration_scout_settings)
    assert services.reconcile(now=later).requeued_runs == [str(run.pk)]
    assert terminal(run, timeout=5).status == "succeeded"
    assert len(stack.workflow_runs) == 1


# --- apps --------------------------------------------------------------------------------------


def test_app_stream_error_event_fails(stack: FakeScout) -> None:
    stack.app("app-err", AppBehaviour(tokens=["a", "b"], error="vector store offline"))
    run = terminal(execute_app("app-err", {"input": "hi"}, stream=True))
    assert (run.status, run.error_code) == ("failed", "app_error")
    assert "vector store offline" in run.error_message
    assert "error" in event_names(run)
    assert wait_signals(run, 2) == FAILURE_SIGNALS


def test_app_stream_success_accumulates_outputs(stack: FakeScout) -> None:
    stack.app("app-ok", AppBehaviour(tokens=["Hel", "lo", ", world"], token_interval=0.05))
    run = terminal(execute_app("app-ok", {"input": "hi"}, stream=True))
    assert run.status == "succeeded"
    assert run.outputs == {"output": {"output": "Hello, world"}}
    assert event_names(run) == ["start_message", "message", "message", "message"]
    assert len(stack.app_executions) == 1
    assert wait_signals(run, 2) == SUCCESS_SIGNALS


# --- webhook triggers --------------------------------------------------------------------------


@pytest.fixture
def superuser_client() -> Client:
    user = User.objects.create_superuser("it-admin", "it-admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_webhook_trigger_token_never_shown(
    stack: FakeScout,
    celery_worker_process: subprocess.Popen[bytes],
    superuser_client: Client,
) -> None:
    stack.workflow("wf-hook")
    url = stack.webhook_url("wf-hook")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 8
    # 503s first, enough to exhaust the client's own retries so the task retries too: every
    # retry log line (client and task) is then in the log we search.
    stack.fail_next(
        "POST", "/v1/workflows/*/webhook/*", 503, times=int(WORKER_SCOUT["MAX_RETRIES"]) + 1
    )
    log_start = len(worker_log(celery_worker_process))
    run = terminal(trigger_workflow_webhook(url, {"order": 7}))
    assert run.status == "succeeded"
    assert run.webhook_url == url  # stored so it can be repeated
    assert run.start_attempts >= 2
    (recorded,) = stack.workflow_runs
    assert (recorded.source, recorded.inputs) == ("webhook", {"webhook_body": {"order": 7}})
    assert wait_signals(run, 2) == SUCCESS_SIGNALS

    change = superuser_client.get(reverse("admin:django_scout_workflowrun_change", args=[run.pk]))
    changelist = superuser_client.get(reverse("admin:django_scout_workflowrun_changelist"))
    assert (change.status_code, changelist.status_code) == (200, 200)
    change_html, changelist_html = change.content.decode(), changelist.content.decode()
    assert "webhook/***" in change_html
    assert "webhook/***" in changelist_html
    log = worker_log(celery_worker_process)
    this_run = log[log_start:]
    assert "/v1/workflows/wf-hook/webhook/***" in this_run  # httpx's request line, masked
    assert f"run {run.pk} will be retried" in this_run
    shown = {
        "str": str(run),
        "repr": repr(run),
        "target": run.target,
        "error_message": run.error_message,
        "worker log": log,
        "admin change page": change_html,
        "admin changelist": changelist_html,
    }
    leaks = [where for where, text in shown.items() if token in text]
    assert leaks == [], f"the webhook token leaked into {leaks}"


def test_webhook_trigger_wrong_token_fails_masked(
    stack: FakeScout, celery_worker_process: subprocess.Popen[bytes]
) -> None:
    stack.workflow("wf-hook")
    good = stack.webhook_url("wf-hook")
    wrong_token = "wrong-token-Zq81xV"
    bad = good.rsplit("/", 1)[0] + "/" + wrong_token
    run = terminal(trigger_workflow_webhook(bad, {"order": 8}))
    assert (run.status, run.error_code) == ("failed", "unauthorized")
    assert run.error_message
    assert wrong_token not in run.error_message
    assert stack.workflow_runs == []
    assert wait_signals(run, 2) == FAILURE_SIGNALS
    assert wrong_token not in worker_log(celery_worker_process)
