"""The test project's ASGI application, set up as a host project's ``asgi.py`` is.

It loads the project's Celery app (:mod:`tests.celery_app`) too, as a host's
``project/__init__.py`` does, so that tasks enqueued by a request go where the settings say
(run eagerly with ``SCOUT_TEST_EAGER=1``).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from django.core.asgi import get_asgi_application

from tests import celery_app  # noqa: F401

application = get_asgi_application()
