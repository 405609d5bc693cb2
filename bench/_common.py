"""Helpers shared by the callback benchmarks (``bench_callback.py``, ``bench_broker_outage.py``).

Both serve ``tests.settings`` with tasks published, not run, to a queue of their own, post
signed callbacks to the callback view and report latency percentiles.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kombu import Queue

ROOT = Path(__file__).resolve().parent.parent
#: ``SCOUT["SIGNING_SECRET"]`` in ``tests.settings``.
SIGNING_SECRET = "test-signing-secret"
SESSION_ID = "bench-session"


def setup_django(queue: str, broker_url: str, database_url: str | None = None) -> None:
    """Set up Django with ``tests.settings``, publishing tasks (not running them) to ``queue``.

    ``broker_url`` applies unless ``CELERY_BROKER_URL`` is set; ``database_url`` replaces
    ``DATABASE_URL``. The queue is the benchmark's own, so no real worker picks its messages up.
    """
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["SCOUT_TEST_EAGER"] = "0"
    os.environ.setdefault("CELERY_BROKER_URL", broker_url)
    os.environ["SCOUT_TEST_QUEUE"] = queue
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def create_database(sqlite_file: Path | None = None) -> str:
    """Create and migrate a fresh database; returns the name :func:`drop_database` wants.

    On PostgreSQL a name of this run's own (never another run's test database); on SQLite
    ``sqlite_file``, or memory by default.
    """
    from django.db import connection

    old_name = str(connection.settings_dict["NAME"])
    test = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql":
        test["NAME"] = f"test_scout_bench_{os.getpid()}"
    elif sqlite_file is not None:
        test["NAME"] = str(sqlite_file)
    connection.creation.create_test_db(verbosity=0, keepdb=False, serialize=False)
    return old_name


def drop_database(old_name: str) -> None:
    """Drop the database :func:`create_database` made."""
    from django.db import connection

    connection.creation.destroy_test_db(old_name, verbosity=0)


def create_target() -> str:
    """An accepted interaction to address callbacks to; returns its callback path."""
    from django_scout.models import Interaction, Session

    session = Session.objects.create(session_id=SESSION_ID, agent_id="bench")
    interaction = Interaction.objects.create(
        agent_id="bench", messages=[{"content": "x"}], status="accepted", session=session
    )
    return f"/scout/callbacks/{interaction.pk}/"


def callback_body() -> bytes:
    """A new (never seen) completion callback for :data:`SESSION_ID`."""
    return json.dumps(
        {
            "callback_event_id": str(uuid.uuid4()),
            "session_id": SESSION_ID,
            "status": "succeeded",
            "completed_at": "2026-03-05T14:30:00Z",
            "events_url": f"https://api.scoutos.test/v1/agent-sessions/{SESSION_ID}/events",
        }
    ).encode()


def signed_headers(body: bytes) -> dict[str, str]:
    """The signature header Scout sends with ``body``."""
    from django_scout.signing import sign

    return {"X-Scout-Signature": sign(body, SIGNING_SECRET)}


def post_callback(client: Any, url: str, body: bytes) -> float:
    """POST ``body`` through Django's test ``client``; the seconds until the 200 answer."""
    headers = signed_headers(body)
    started = time.perf_counter()
    response = client.post(url, data=body, content_type="application/json", headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    return elapsed


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def purge(queue: str) -> int:
    """Drop every message in ``queue`` on the configured broker; how many there were."""
    from tests import celery_app

    with celery_app.app.connection_for_write() as broker:
        return int(Queue(queue, channel=broker.default_channel).purge() or 0)


class BeforePublisher:
    """What ``enqueue_after_commit`` did before :class:`TaskPublisher`: publish inline.

    ``apply_async`` runs on the caller's thread with no bound, a failure is logged.
    """

    def __init__(self) -> None:
        self.published = 0

    def publish(self, task: Any, args: Sequence[Any]) -> bool:
        """Publish ``task`` on this thread; False (logged) when the broker failed."""
        try:
            task.apply_async(args=tuple(args), retry=False)
        except Exception:
            logging.getLogger("django_scout").exception("could not enqueue %s%r", task, args)
            return False
        self.published += 1
        return True


def install_publisher(new: Any) -> Any:
    """Make ``new`` the publisher ``enqueue_after_commit`` uses; returns the one it replaces."""
    from django_scout.services import common

    # enqueue_after_commit looks ``publisher`` up in its module's globals on every call.
    names = vars(common)
    saved, names["publisher"] = names["publisher"], new
    return saved


@contextmanager
def publisher_bypassed() -> Iterator[BeforePublisher]:
    """Enqueue after commit with a :class:`BeforePublisher` within the block."""
    before = BeforePublisher()
    saved = install_publisher(before)
    try:
        yield before
    finally:
        install_publisher(saved)
