"""The services CI makes mandatory are really the ones the suite uses."""

from __future__ import annotations

import pytest
from django.db import connection
from kombu import Connection


@pytest.mark.django_db
def test_database_is_postgresql_when_services_are_configured(services: dict[str, str]) -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_broker_accepts_a_round_trip(services: dict[str, str]) -> None:
    with Connection(services["broker_url"], connect_timeout=3) as conn:
        queue = conn.SimpleQueue("django-scout-ci-probe")
        try:
            queue.put({"ping": 1})
            message = queue.get(timeout=3)
            assert message.payload == {"ping": 1}
            message.ack()
        finally:
            queue.clear()
            queue.close()
