"""Settings for the live relay benchmark: a production-like stack (DEBUG off) on PostgreSQL.

``DATABASE_URL`` is the database; ``BENCH_APP_NAME`` is the ``application_name`` of every
connection this process opens (the benchmark counts the server's connections by it).
``BENCH_CONN_MAX_AGE`` is ``CONN_MAX_AGE`` (600: connections are kept, as production
settings usually do). ``BENCH_LIVE_NOTIFY`` and ``BENCH_REDIS_URL`` set ``LIVE_NOTIFY`` and
``LIVE_REDIS_URL``.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url
from _site_settings import *  # noqa: F403 (the shared stack)
from _site_settings import SCOUT_BASE

ROOT_URLCONF = "live_viewers.urls"

_database: dict[str, Any] = dict(
    dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=int(os.environ.get("BENCH_CONN_MAX_AGE", "600"))
    )
)
_database["OPTIONS"] = {"application_name": os.environ.get("BENCH_APP_NAME", "bench")}
DATABASES = {"default": _database}

CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = False

SCOUT = {
    **SCOUT_BASE,
    "LIVE_PERMISSION": "live_viewers.views.anyone",
    "LIVE_NOTIFY": os.environ.get("BENCH_LIVE_NOTIFY", "auto"),
    "LIVE_REDIS_URL": os.environ.get("BENCH_REDIS_URL") or None,
    "LIVE_POLL_INTERVAL": float(os.environ.get("BENCH_POLL_INTERVAL", "1.0")),
}

#: Seconds between two reads of one row by the bare relay.
BARE_POLL = float(os.environ.get("BENCH_BARE_POLL", "0.5"))
