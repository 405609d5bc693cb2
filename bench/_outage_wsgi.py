"""The WSGI application gunicorn serves in ``bench_broker_outage.py``'s server part.

``tests.settings`` (the environment names the broker, database and queue); with
``BENCH_BYPASS_PUBLISHER=1`` callbacks enqueue as the code did before the bounded publisher.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

# The suite's Celery app (as a project's __init__ loads its own): without it django-scout's
# shared tasks would use Celery's default app, whose queue is "celery", not the bench's.
from tests import celery_app  # noqa: E402, F401

if os.environ.get("BENCH_BYPASS_PUBLISHER") == "1":
    from _common import BeforePublisher, install_publisher

    install_publisher(BeforePublisher())
