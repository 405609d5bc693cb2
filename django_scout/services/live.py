"""Tell live viewers that a row changed: the publishing half of the live relay.

The services call :func:`notify_changed` wherever an interaction's or a run's status changes or
its events are stored. Once the transaction commits (at once outside one), a message naming
the row — ``interaction:<uuid>`` or ``run:<uuid>``, never its data — goes out on the channel
the relay (:mod:`django_scout.live`) listens to:

* ``postgresql``: ``NOTIFY scout_live, '<key>'`` on the database the row was written to, as a
  statement of its own after the commit (so the notifying transaction is a tiny one and the
  writer's commit never waits on NOTIFY's queue lock);
* ``redis``: ``PUBLISH scout_live <key>`` on ``LIVE_REDIS_URL``;
* ``poll``: nothing; the relay reads the watched rows every ``LIVE_POLL_INTERVAL`` instead.

:func:`notify_backend` resolves ``LIVE_NOTIFY="auto"``: Redis when ``LIVE_REDIS_URL`` is set,
else PostgreSQL when the database is PostgreSQL through psycopg 3, else polling. A message that
cannot be sent is logged and dropped; it never fails the change it announces (a viewer sees the
change at its next message, or when its stream is renewed after ``LIVE_MAX_DURATION``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from django.db import connections, models, router, transaction

from ..conf import scout_settings
from ..models import Interaction, WorkflowRun

__all__ = ["CHANNEL", "live_key", "notify_backend", "notify_changed"]

logger = logging.getLogger("django_scout")

#: The PostgreSQL ``NOTIFY`` channel and the Redis pub/sub channel.
CHANNEL = "scout_live"

#: The first part of a message's key, by model.
_KINDS: dict[type[models.Model], str] = {Interaction: "interaction", WorkflowRun: "run"}

Backend = Literal["postgresql", "redis", "poll"]


def live_key(model: type[models.Model], pk: Any) -> str:
    """The message naming one row: ``interaction:<uuid>`` or ``run:<uuid>``."""
    return f"{_KINDS[model]}:{pk}"


def notify_backend() -> Backend:
    """The channel in use: ``LIVE_NOTIFY``, with ``auto`` resolved (see the module docs)."""
    conf = scout_settings()
    if conf.LIVE_NOTIFY != "auto":
        return conf.LIVE_NOTIFY
    if conf.LIVE_REDIS_URL:
        return "redis"
    if is_psycopg_postgresql(router.db_for_write(Interaction)):
        return "postgresql"
    return "poll"


def is_psycopg_postgresql(alias: str) -> bool:
    """Whether the database ``alias`` is PostgreSQL through psycopg 3 (which can ``LISTEN``)."""
    connection = connections[alias]
    module = getattr(getattr(connection, "Database", None), "__name__", "")
    return connection.vendor == "postgresql" and module == "psycopg"


def notify_changed(model: type[models.Model], *pks: Any) -> None:
    """Announce, once the current transaction commits, that rows of ``model`` changed.

    ``model`` is :class:`~django_scout.models.Interaction` or
    :class:`~django_scout.models.WorkflowRun`; ``pks`` their primary keys (one message each, sent
    together). Costs nothing with ``LIVE_NOTIFY="poll"`` (the default on SQLite).
    """
    backend = notify_backend()
    if backend == "poll" or not pks:
        return
    alias = router.db_for_write(model)
    keys = [live_key(model, pk) for pk in pks]
    if backend == "postgresql":
        transaction.on_commit(lambda: _notify_postgresql(alias, keys), using=alias)
    else:
        transaction.on_commit(lambda: _publish_redis(keys), using=alias)


def _notify_postgresql(alias: str, keys: list[str]) -> None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_notify(%s, key) FROM unnest(%s::text[]) AS key", [CHANNEL, keys]
            )
    except Exception:
        logger.warning("django-scout: could not NOTIFY live viewers of %s", keys, exc_info=True)


_redis_lock = threading.Lock()
_redis_clients: dict[str, Any] = {}


def _redis_client(url: str) -> Any:
    """One client (and connection pool) per URL and process; short timeouts."""
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            import redis

            timeout = scout_settings().PUBLISH_TIMEOUT
            client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            _redis_clients[url] = client
        return client


def _publish_redis(keys: list[str]) -> None:
    url = scout_settings().LIVE_REDIS_URL
    if not url:
        logger.warning("django-scout: LIVE_NOTIFY is 'redis' but LIVE_REDIS_URL is not set")
        return
    try:
        with _redis_client(url).pipeline(transaction=False) as pipeline:
            for key in keys:
                pipeline.publish(CHANNEL, key)
            pipeline.execute()
    except Exception:
        logger.warning("django-scout: could not publish to live viewers of %s", keys, exc_info=True)
