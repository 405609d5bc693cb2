"""The README's main job: the example project's demo, run with ``--once``.

Without services it runs on SQLite and kombu's file broker; with ``DATABASE_URL`` and
``CELERY_BROKER_URL`` set (CI's second run) the same command runs on PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import django
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def test_demo_once_runs_every_scenario(tmp_path: Path) -> None:
    env = {**os.environ, "EXAMPLE_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "scout_demo", "--once", "--port", "0", "--timeout", "120"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "all interactions ended as expected" in output
    table = output.split("scenario", 1)[1]
    for scenario in ("success", "many-events", "fails", "duplicates", "callback-first"):
        assert scenario in table
    duplicates_row = next(line for line in table.splitlines() if line.startswith("duplicates"))
    assert duplicates_row.split()[2:5] == ["succeeded", "10", "4"]
    fails_row = next(line for line in table.splitlines() if line.startswith("fails"))
    assert "failed" in fails_row
    assert "tool_error" in fails_row
    plain = next(line for line in table.splitlines() if line.startswith("workflow-plain"))
    assert plain.split()[2:4] == ["plain", "succeeded"]
    assert "billing-support" in plain  # the receiver wrote the routing onto the ticket
    streamed = next(line for line in table.splitlines() if line.startswith("workflow-stream"))
    assert streamed.split()[2:4] == ["stream", "succeeded"]
    assert int(streamed.split()[4]) > 10  # every streamed event was stored
    assert "account-team" in streamed
    assert "admin: http://127.0.0.1:" in output
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert "postgresql" in output
    else:
        assert "sqlite3" in output
        assert "filesystem://" in output


@pytest.mark.django_db
def test_migrations_are_up_to_date() -> None:
    from django.core.management import call_command

    call_command("makemigrations", "django_scout", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize("database_url", [None, "sqlite:///{tmp}/via-url.sqlite3"])
def test_example_sqlite_tuning_applies_however_sqlite_is_configured(
    tmp_path: Path, database_url: str | None
) -> None:
    env = {**os.environ, "EXAMPLE_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url.format(tmp=tmp_path)
    script = (
        "import json, django; from example_project import settings as s; "
        "print(json.dumps(s.DATABASES['default']['OPTIONS']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    options = json.loads(result.stdout)
    assert options["timeout"] == 30  # waits for the worker's lock instead of "database is locked"
    if django.VERSION >= (5, 1):
        assert options["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in options["init_command"]
