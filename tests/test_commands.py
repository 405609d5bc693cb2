"""Management commands: scout_interact, scout_reconcile, scout_prune, scout_fake_server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_scout.models import Interaction
from tests.mock_scout import MockScout

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)

SCOUT = {
    "API_KEY": "test-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": "test-signing-secret",
    "CALLBACK_BASE_URL": "https://app.example.test",
    "FETCH_EVENTS": False,
}


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_scout_interact_starts_and_reports_json(mock_scout: MockScout) -> None:
    with override_settings(SCOUT=SCOUT):
        output = run(
            "scout_interact", "agent-1", "hello", "--tag", "cli", "--metadata", '{"a": 1}', "--json"
        )
    summary = json.loads(output)
    interaction = Interaction.objects.get()
    assert summary["id"] == str(interaction.pk)
    assert summary["status"] == "accepted"  # eager Celery: the start task already ran
    assert interaction.tags == ["cli"]
    assert interaction.metadata == {"a": 1}


def test_scout_interact_streams(mock_scout: MockScout) -> None:
    with override_settings(SCOUT={**SCOUT, "CALLBACK_BASE_URL": None}):
        summary = json.loads(run("scout_interact", "agent-1", "hello", "--stream", "--json"))
    interaction = Interaction.objects.get()
    assert (summary["status"], summary["stream"], summary["events"]) == ("succeeded", True, 4)
    assert interaction.session_id == "sess_1"
    (request,) = mock_scout.requests
    assert request.url.path == "/world/agent-1/_interact"


def test_scout_interact_wait_times_out_with_status_2(mock_scout: MockScout) -> None:
    with override_settings(SCOUT=SCOUT), pytest.raises(SystemExit) as exc_info:
        run("scout_interact", "agent-1", "hello", "--wait", "0.5")
    assert exc_info.value.code == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--tag", "NOT OK"], "tag"),
        (["--metadata", "{nope"], "not valid JSON"),
        (["--metadata", "[1]"], "metadata"),
    ],
)
def test_scout_interact_bad_input_is_a_clear_error(
    mock_scout: MockScout, args: list[str], fragment: str
) -> None:
    with override_settings(SCOUT=SCOUT), pytest.raises(CommandError, match=fragment):
        run("scout_interact", "agent-1", "hello", *args)
    assert not Interaction.objects.exists()


def test_scout_reconcile_and_prune_report() -> None:
    with override_settings(SCOUT=SCOUT):
        report = json.loads(run("scout_reconcile", "--json"))
        assert report == {
            "requeued_starts": [],
            "requeued_deliveries": [],
            "abandoned_deliveries": 0,
            "timed_out": [],
            "requeued_runs": [],
            "timed_out_runs": [],
        }
        assert json.loads(run("scout_prune", "--older-than", "30", "--json")) == {
            "events": 0,
            "run_events": 0,
            "deliveries": 0,
        }
        with pytest.raises(CommandError, match="zero or more"):
            run("scout_prune", "--older-than", "-1")


def test_scout_fetch_events_needs_a_target() -> None:
    with pytest.raises(CommandError, match="--missing"):
        run("scout_fetch_events")


def test_scout_fake_server_serves_with_project_key(tmp_path: Path) -> None:
    env: dict[str, Any] = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "scout_fake_server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        ok = httpx.get(f"{base_url}/agents", headers={"Authorization": "Bearer test-api-key"})
        denied = httpx.get(f"{base_url}/agents", headers={"Authorization": "Bearer wrong"})
        assert ok.status_code == 200
        assert denied.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


MANAGE_PY = """\
import sys
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


@pytest.mark.parametrize("form", ["manage.py", "python -m django"])
def test_scout_fake_server_help_names_the_management_command(tmp_path: Path, form: str) -> None:
    env: dict[str, Any] = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
    }
    if form == "manage.py":
        (tmp_path / "manage.py").write_text(MANAGE_PY)
        command = [sys.executable, "manage.py"]
    else:
        command = [sys.executable, "-m", "django"]
    result = subprocess.run(
        [*command, "scout_fake_server", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {form} scout_fake_server ")
    assert "django_scout.testing" not in result.stdout
    assert "--callback-host" in result.stdout


def test_scout_run_workflow_streams_block_outputs(fake_scout: Any) -> None:
    from django_scout.testing import WorkflowBehaviour

    fake_scout.workflow("wf", WorkflowBehaviour(blocks=2, outputs={"answer": "42"}))
    with override_settings(SCOUT=fake_scout.scout_settings()):
        output = run("scout_run_workflow", "wf", "--inputs", '{"q": 1}', "--stream")
    lines = output.splitlines()
    assert lines[0].startswith("started run ")
    assert any(line.startswith("> run started") for line in lines)
    assert sum(line.startswith("  +") and "completed" in line for line in lines) == 2
    assert any(line.startswith("  . ") and "token" in line for line in lines)
    assert any(line.startswith("= completed:") and "42" in line for line in lines)
    assert lines[-2].startswith("succeeded:")


def test_scout_run_workflow_json_and_failure_status(fake_scout: Any) -> None:
    from django_scout.testing import WorkflowBehaviour

    fake_scout.workflow("wf", WorkflowBehaviour(outcome="failed", error_message="nope"))
    with override_settings(SCOUT=fake_scout.scout_settings()), pytest.raises(SystemExit) as exc:
        run("scout_run_workflow", "wf", "--environment", "staging", "--wait", "10", "--json")
    assert exc.value.code == 1


def test_scout_run_workflow_bad_input() -> None:
    with pytest.raises(CommandError, match="not valid JSON"):
        run("scout_run_workflow", "wf", "--inputs", "{oops")
    with pytest.raises(CommandError, match="inputs"):
        run("scout_run_workflow", "wf", "--inputs", "[1, 2]")
    with pytest.raises(CommandError):
        run("scout_run_workflow", "wf", "--environment", "prod")


def test_scout_run_workflow_other_kinds(fake_scout: Any, tmp_path: Path) -> None:
    from django_scout.models import WorkflowRun
    from django_scout.testing import AppBehaviour

    fake_scout.workflow("wf")
    fake_scout.app("app1", AppBehaviour(tokens=["hi"]))
    url = fake_scout.webhook_url("wf")
    config = tmp_path / "config.json"
    config.write_text('{"blocks": []}')
    with override_settings(SCOUT=fake_scout.scout_settings()):
        webhook_out = run("scout_run_workflow", url, "--kind", "webhook", "--inputs", '{"a": 1}')
        run("scout_run_workflow", "app1", "--kind", "app", "--stream", "--wait", "10")
        run("scout_run_workflow", str(config), "--kind", "config", "--workflow-key", "k1")
    assert url.rsplit("/", 1)[1] not in webhook_out
    kinds = dict(WorkflowRun.objects.values_list("kind", "status"))
    assert kinds == {"webhook": "succeeded", "app": "succeeded", "workflow_config": "succeeded"}
    with pytest.raises(CommandError, match="cannot read"):
        run("scout_run_workflow", str(tmp_path / "missing.json"), "--kind", "config")
