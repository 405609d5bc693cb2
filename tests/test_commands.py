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
        assert report == {"requeued_starts": [], "requeued_deliveries": [], "timed_out": []}
        assert json.loads(run("scout_prune", "--older-than", "30", "--json")) == {
            "events": 0,
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
