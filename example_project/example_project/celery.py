"""The example project's Celery app (``celery -A example_project worker``).

``CELERY_BROKER_URL`` selects the broker. The default, ``filesystem://``, is kombu's file
transport (with each message written whole before a worker can see it: :mod:`.file_broker`):
messages and exchange tables are files under ``example_project/var/broker/``, so one machine
needs no broker server. Use ``redis://…`` or ``amqp://…`` in production.
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# Messages written whole before a worker can read them (see file_broker).
TRANSPORT_ALIASES["filesystem"] = "example_project.file_broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")

if str(app.conf.broker_url or "").startswith("filesystem://"):
    broker_dir = (
        Path(os.environ.get("EXAMPLE_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
        / "broker"
    )
    for sub in ("queue", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True, exist_ok=True)
    app.conf.broker_transport_options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        # Exchange tables; kombu's default is a "control" folder in the working directory.
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
        # Poll the folder often so the demo feels immediate.
        "polling_interval": 0.1,
    }

app.autodiscover_tasks()
