"""``bench/seed_history.py`` still builds a history for today's models.

The seeder writes plain tuples column by column and refuses a model whose columns it does not
know; a field added to a model without the seeder learning it would break every benchmark that
measures at scale. This builds a small history in a SQLite file of its own (a subprocess, as
a user runs it) and checks what reconcile would find in it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_seeder_builds_a_small_history_in_which_no_open_stream_is_idle(
    tmp_path: Path,
) -> None:
    database = tmp_path / "history.sqlite3"
    result = subprocess.run(
        [
            sys.executable,
            "bench/seed_history.py",
            "--db",
            "sqlite",
            "--sqlite",
            str(database),
            "--interactions",
            "4000",
            "--events",
            "8000",
            # The last two runs are in flight; with 401, the last is a streamed workflow run.
            "--runs",
            "401",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "interactions 4,000" in result.stdout, result.stdout
    with sqlite3.connect(database) as db:
        (interactions,) = db.execute("SELECT COUNT(*) FROM django_scout_interaction").fetchone()
        (streamed,) = db.execute(
            "SELECT COUNT(*) FROM django_scout_workflowrun WHERE stream AND stream_progress_at"
            " IS NOT NULL"
        ).fetchone()
        (open_streams,) = db.execute(
            "SELECT COUNT(*) FROM django_scout_workflowrun WHERE stream AND completed_at IS NULL"
        ).fetchone()
        # Seeded "now" (within the last few minutes): an open stream that reconcile would fail
        # as idle (no event for STREAM_IDLE_TIMEOUT, 900 s) is not a history at rest.
        idle_before = (datetime.now(timezone.utc) - timedelta(seconds=900)).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        (idle,) = db.execute(
            "SELECT COUNT(*) FROM django_scout_workflowrun WHERE stream AND completed_at IS NULL"
            " AND (stream_progress_at IS NULL OR stream_progress_at < ?)",
            [idle_before],
        ).fetchone()
    assert interactions == 4000
    assert streamed > 0
    assert open_streams > 0
    assert idle == 0
