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

from tests import settings as suite

SECRET_KEY = "django-scout-bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bare_callback.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The test suite's stack (a typical one, the same for both views) without its signal recorder.
MIDDLEWARE = suite.MIDDLEWARE
TEMPLATES = suite.TEMPLATES
INSTALLED_APPS = [app for app in suite.INSTALLED_APPS if app != "tests.testapp"]
INSTALLED_APPS.append("bare_callback")

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
    "API_KEY": "bench-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": "bench-signing-secret",
    "CALLBACK_BASE_URL": "https://app.example.test",
    "FETCH_EVENTS": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_scout": {"handlers": ["console"], "level": "WARNING"}},
}
