"""How long the callback endpoint takes to answer Scout (its limit is 10 seconds).

Posts signed callbacks through Django's test client — new deliveries, then repeats of them —
with processing enqueued to an in-memory broker (not run), exactly as the view does in
production, and prints latency percentiles per kind. Uses SQLite in memory by default, or
``DATABASE_URL`` (e.g. PostgreSQL). Run from the repository root:

    .venv/bin/python bench/bench_callback.py [--count 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["SCOUT_TEST_EAGER"] = "0"
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
QUEUE = "django-scout-bench"
os.environ["SCOUT_TEST_QUEUE"] = QUEUE  # never leave work in a real worker's queue

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from django_scout.models import Interaction, Session  # noqa: E402
from django_scout.signing import sign  # noqa: E402
from tests import celery_app  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<12} n={len(ms):<6} p50={statistics.median(ms):7.2f} ms  "
        f"p95={percentile(ms, 0.95):7.2f} ms  p99={percentile(ms, 0.99):7.2f} ms  "
        f"max={max(ms):7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    connection.creation.create_test_db(verbosity=0, keepdb=False)
    session = Session.objects.create(session_id="bench-session", agent_id="bench")
    interaction = Interaction.objects.create(
        agent_id="bench", messages=[{"content": "x"}], status="accepted", session=session
    )
    url = f"/scout/callbacks/{interaction.pk}/"
    client = Client()
    bodies = [
        json.dumps(
            {
                "callback_event_id": str(uuid.uuid4()),
                "session_id": "bench-session",
                "status": "succeeded",
                "completed_at": "2026-03-05T14:30:00Z",
                "events_url": "https://api.scoutos.test/v1/agent-sessions/bench-session/events",
            }
        ).encode()
        for _ in range(args.count)
    ]
    timings: dict[str, list[float]] = {"new": [], "duplicate": []}
    for kind in ("new", "duplicate"):
        for body in bodies:
            headers = {"X-Scout-Signature": sign(body, "test-signing-secret")}
            started = time.perf_counter()
            response = client.post(url, data=body, content_type="application/json", headers=headers)
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 200, response.content
    print(f"database: {connection.vendor}; broker: {os.environ['CELERY_BROKER_URL']}")
    for kind, values in timings.items():
        report(kind, values)
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    with celery_app.app.connection_for_write() as broker:
        broker.default_channel.queue_purge(QUEUE)


if __name__ == "__main__":
    main()
