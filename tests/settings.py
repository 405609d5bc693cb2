"""Django settings for django-scout's own test suite.

SQLite in memory by default; ``DATABASE_URL`` (dj-database-url syntax) selects another database,
e.g. ``postgres://postgres@127.0.0.1:5432/test``.
"""

from __future__ import annotations

import json
import os

SECRET_KEY = "django-scout-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# No test here is about password hashing; Django's default (PBKDF2 with a million iterations)
# costs about a second of CPU for each user a test creates.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The browser suite's live server serves the admin's CSS and JavaScript through it.
    "django.contrib.staticfiles",
    "rest_framework",
    "django_scout",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=0)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

# Unit tests run tasks eagerly; the integration suite's worker sets SCOUT_TEST_EAGER=0.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("SCOUT_TEST_EAGER", "1") == "1"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

SCOUT = {
    "API_KEY": "test-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": "test-signing-secret",
    "CALLBACK_BASE_URL": "https://app.example.test",
    "TASK_RETRY_BACKOFF": 0.0,
}
# The integration suite's Celery worker gets its SCOUT settings (fake server and live server
# URLs) and its own queue name from the environment.
SCOUT.update(json.loads(os.environ.get("SCOUT_TEST_OVERRIDES", "{}")))
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("SCOUT_TEST_QUEUE", "celery")
