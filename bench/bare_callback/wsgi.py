"""The WSGI application gunicorn serves, with the Celery app the product publishes through."""

from __future__ import annotations

import os

from celery import Celery
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bare_callback.settings")

celery_app = Celery("bare_callback")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.set_default()
celery_app.autodiscover_tasks(["django_scout"])

application = get_wsgi_application()
