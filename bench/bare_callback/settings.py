"""Settings shared by both views: a production-like stack (DEBUG off, persistent connections).

The middleware and templates are the test suite's (``tests.settings``); its other settings
(the eager Celery, the signal-recording test app) are not used.

``DATABASE_URL`` picks the database (a SQLite file gets WAL, as the example project
configures it); ``CELERY_BROKER_URL`` and ``BENCH_QUEUE`` where processing is enqueued.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url
import django
from _site_settings import *  # noqa: F403 (the shared stack)
from _site_settings import INSTALLED_APPS, SCOUT_BASE

ROOT_URLCONF = "bare_callback.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "bare_callback"]

_database: dict[str, Any] = dict(
    dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)
)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {"timeout": 30}
    if django.VERSION >= (5, 1):
        _database["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
        _database["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
DATABASES = {"default": _database}

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_QUEUE", "django-scout-bench-endpoint")
CELERY_TASK_ALWAYS_EAGER = False

SCOUT = {
    **SCOUT_BASE,
    "FETCH_EVENTS": False,
}
