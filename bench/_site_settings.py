"""The Django settings the benchmarks' served projects share: a production-like stack.

``DEBUG`` off; the middleware, templates and apps are the test suite's (``tests.settings``)
without its signal-recording test app. ``bare_callback.settings`` and
``live_viewers.settings`` import these and add their database, broker and ``SCOUT`` (from
:data:`SCOUT_BASE`). Django's errors and django-scout's warnings go to the console.
"""

from __future__ import annotations

from tests import settings as suite

SECRET_KEY = "django-scout-bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MIDDLEWARE = suite.MIDDLEWARE
TEMPLATES = suite.TEMPLATES
INSTALLED_APPS = [app for app in suite.INSTALLED_APPS if app != "tests.testapp"]

#: The ``SCOUT`` settings both projects start from (nothing is ever sent to Scout).
SCOUT_BASE = {
    "API_KEY": "bench-api-key",
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": "bench-signing-secret",
    "CALLBACK_BASE_URL": "https://app.example.test",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_scout": {"handlers": ["console"], "level": "WARNING"},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
