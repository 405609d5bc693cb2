"""The publisher's threads keep one producer each instead of checking one out per publish.

A real Celery app on kombu's in-memory broker (not eager): what is published arrives, on the
same producer every time, until a failure or a new connection pool replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from celery import Celery
from kombu import Producer

from django_scout.services.publishing import TaskPublisher

QUEUE = "django-scout-publisher-test"


@pytest.fixture
def app() -> Iterator[Celery]:
    celery = Celery("publisher-test", set_as_current=False)
    # The write URL, not broker_url: CELERY_BROKER_URL in the environment would win over that.
    celery.conf["broker_write_url"] = "memory://"
    celery.conf.task_always_eager = False
    celery.conf.task_default_queue = QUEUE
    purge(celery)
    yield celery
    purge(celery)


def purge(app: Celery) -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)  # type: ignore[attr-defined]


@pytest.fixture
def task(app: Celery) -> Any:
    @app.task(name="publisher_test.echo", shared=False)
    def echo(value: int) -> int:
        return value

    return echo


@pytest.fixture
def producers(app: Celery) -> Iterator[list[Producer]]:
    """Every producer the publisher creates for ``app``."""
    created: list[Producer] = []
    real = app.amqp.Producer

    def spy(*args: Any, **kwargs: Any) -> Producer:
        producer = real(*args, **kwargs)
        created.append(producer)
        return producer

    with mock.patch.object(app.amqp, "Producer", side_effect=spy):
        yield created


def published(app: Celery) -> list[dict[str, Any]]:
    """The headers of every message waiting in the test queue (consumed)."""
    headers: list[dict[str, Any]] = []
    with app.connection_for_write() as connection, connection.SimpleQueue(QUEUE) as queue:
        while True:
            try:
                message = queue.get(timeout=0.2)
            except queue.Empty:
                return headers
            headers.append(message.headers)
            message.ack()


def test_publishes_arrive_on_one_held_producer(
    app: Celery, task: Any, producers: list[Producer]
) -> None:
    publisher = TaskPublisher()
    used: list[Any] = []
    real_apply = task.apply_async

    def apply_async(*args: Any, **kwargs: Any) -> Any:
        used.append(kwargs["producer"])
        return real_apply(*args, **kwargs)

    with mock.patch.object(task, "apply_async", side_effect=apply_async):
        for value in range(3):
            assert publisher.publish(task, (value,)) is True
    assert len(producers) == 1
    assert used == [producers[0]] * 3
    headers = published(app)
    assert [h["task"] for h in headers] == ["publisher_test.echo"] * 3
    assert [h["argsrepr"] for h in headers] == ["(0,)", "(1,)", "(2,)"]


def test_a_failed_publish_drops_the_producer(
    app: Celery, task: Any, producers: list[Producer]
) -> None:
    publisher = TaskPublisher()
    assert publisher.publish(task, (1,)) is True
    with mock.patch.object(task, "apply_async", side_effect=OSError("connection reset")):
        assert publisher.publish(task, (2,)) is False
    publisher.reset()  # the breaker opened; the broker is back
    assert publisher.publish(task, (3,)) is True
    assert len(producers) == 2  # a fresh one after the failure
    assert [h["argsrepr"] for h in published(app)] == ["(1,)", "(3,)"]


def test_a_new_connection_pool_replaces_the_producer(
    app: Celery, task: Any, producers: list[Producer]
) -> None:
    publisher = TaskPublisher()
    assert publisher.publish(task, (1,)) is True
    # The app is pointed at another broker (as tests/integration/test_outages_e2e.py does):
    # its connection pool is replaced, and so is the held producer.
    app.conf["broker_write_url"] = "memory://elsewhere//"
    app._pool = None  # type: ignore[attr-defined]
    assert publisher.publish(task, (2,)) is True
    assert publisher.publish(task, (3,)) is True
    assert len(producers) == 2
    connection = producers[1].connection
    assert connection is not None
    assert connection.hostname == "elsewhere"


def test_a_stand_in_task_is_called_plainly() -> None:
    calls: list[dict[str, Any]] = []

    class StandIn:
        name = "stand-in"
        app = mock.Mock()
        app.conf.task_always_eager = False

        def apply_async(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    assert TaskPublisher().publish(StandIn(), (7,)) is True
    assert calls == [{"args": (7,), "retry": False}]
