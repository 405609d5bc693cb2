"""Settings of the history benchmarks: the test suite's, without its signal recorder.

``tests.testapp`` writes a row for every signal sent, a cost of the host's receivers rather
than of django-scout's, so it is left out here.
"""

from __future__ import annotations

from tests import settings as _base

SECRET_KEY = _base.SECRET_KEY
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = _base.ALLOWED_HOSTS
ROOT_URLCONF = _base.ROOT_URLCONF
STATIC_URL = _base.STATIC_URL
DEFAULT_AUTO_FIELD = _base.DEFAULT_AUTO_FIELD
INSTALLED_APPS = [app for app in _base.INSTALLED_APPS if app != "tests.testapp"]
MIDDLEWARE = _base.MIDDLEWARE
TEMPLATES = _base.TEMPLATES
DATABASES = _base.DATABASES
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = "memory://"
CELERY_TASK_DEFAULT_QUEUE = "django-scout-bench"
SCOUT = _base.SCOUT
