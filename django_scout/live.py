"""The live relay: one interaction's or run's status and events as a Server-Sent Events stream.

:func:`respond` answers ``GET live/interactions/<id>/`` and ``GET live/runs/<id>/`` (see
:mod:`django_scout.views`). The row is read and ``LIVE_PERMISSION(request, obj)`` asked once, at
connect; then the stream sends

* ``retry: 3000`` first (how long a browser's ``EventSource`` waits before reconnecting);
* ``event: scout_event`` with ``id: <sequence>`` for each stored event after the one the client
  last saw (``Last-Event-ID``, or ``?last_event_id=`` ), in order;
* ``event: status`` when the status differs from the last one sent (always once at connect),
  after the events stored before it;
* ``: heartbeat`` comments after ``LIVE_HEARTBEAT`` seconds without a message;
* ``event: end`` once the status is terminal and every event is sent, then closes.

**Under ASGI** the view is async and the stream is an async iterator: a waiting client holds no
thread and no database connection. Each client waits on an :class:`asyncio.Event` that one
listener per process (:class:`_Hub`: one PostgreSQL ``LISTEN`` connection, or one Redis pub/sub
connection) sets when :func:`django_scout.services.live.notify_changed` names its row; with
``LIVE_NOTIFY="poll"`` (SQLite) the client reads its row every ``LIVE_POLL_INTERVAL`` instead.
Every read (two indexed queries, at most :data:`READ_BATCH` events) runs on the event loop's
default thread pool, outside the request's own thread, and closes its connection afterwards
(unless ``CONN_MAX_AGE`` keeps it, then it stays with that pool thread, not with the client).
Django gives each ASGI request a thread of its own for its synchronous parts; the stream
releases it (closing its connections) once the response has started. A stream ends after
``LIVE_MAX_DURATION`` seconds without ``end``; the client reconnects where it stopped.

**Under WSGI** the same view answers with a synchronous iterator that holds its worker thread
and connection while it reads its row every ``LIVE_POLL_INTERVAL``, so it ends after
``LIVE_SYNC_MAX_DURATION`` seconds; the client reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from asgiref.sync import SyncToAsync, sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connections, models, router
from django.http import (
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.module_loading import import_string

from .compiled_select import CompiledSelect
from .conf import ScoutSettings, scout_settings
from .models import (
    Interaction,
    InteractionEvent,
    InteractionStatus,
    WorkflowRun,
    WorkflowRunEvent,
    WorkflowRunStatus,
)
from .services.live import CHANNEL, live_key, notify_backend

__all__ = [
    "INTERACTION",
    "READ_BATCH",
    "RETRY_MS",
    "RUN",
    "LiveTarget",
    "may_watch",
    "respond",
    "staff_only",
    "target_of",
]

logger = logging.getLogger("django_scout")

#: Events read per query.
READ_BATCH = 200
#: The ``retry:`` hint sent first: milliseconds a browser waits before reconnecting.
RETRY_MS = 3000
HEARTBEAT = b": heartbeat\n\n"


def staff_only(request: HttpRequest, obj: models.Model) -> bool:
    """The default ``LIVE_PERMISSION``: active staff users may watch any row."""
    user = getattr(request, "user", None)
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


#: The columns of an event sent to a viewer (the relay's messages, the widget's timeline).
_EVENT_COLUMNS = ("sequence", "name", "data", "timestamp", "created_at")
#: The columns of a row's status message.
_STATUS_COLUMNS = ("status", "error_code", "completed_at")


@dataclass(frozen=True)
class LiveTarget:
    """What a live URL watches: everything in which an interaction and a run differ for the
    relay and the widget, which read both the same way."""

    model: type[Interaction] | type[WorkflowRun]
    event_model: type[InteractionEvent] | type[WorkflowRunEvent]
    #: The event model's column naming the row (``interaction_id``, ``run_id``).
    owner: str
    terminal: tuple[str, ...]
    #: What the widget calls the row (``interaction``, ``run``).
    kind: str
    #: The name of the row's live URL, which takes the row's id.
    url_name: str

    # The relay's two reads, run for every viewer each time its row changes: SQL built once
    # per database (building it through the ORM cost about four times the queries themselves).
    _status_select: CompiledSelect = field(init=False, repr=False, compare=False)
    _events_select: CompiledSelect = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        status = CompiledSelect(self.model, _STATUS_COLUMNS, [("pk", "=")])
        events = CompiledSelect(
            self.event_model,
            _EVENT_COLUMNS,
            [(self.owner, "="), ("sequence", ">")],
            order_by="sequence",
            limit=READ_BATCH,
        )
        object.__setattr__(self, "_status_select", status)
        object.__setattr__(self, "_events_select", events)

    def status(self, pk: UUID) -> dict[str, Any] | None:
        """The row's status message, or ``None`` when the row is gone."""
        rows = self._status_select.rows(pk)
        if not rows:
            return None
        return {"id": str(pk), **dict(zip(_STATUS_COLUMNS, rows[0], strict=True))}

    def events_after(self, pk: UUID, sequence: int) -> list[tuple[Any, ...]]:
        """At most :data:`READ_BATCH` events above ``sequence``, in order (the unique index)."""
        return self._events_select.rows(pk, sequence)

    def last_events(self, pk: UUID, count: int) -> list[tuple[Any, ...]]:
        """The last ``count`` events, in order; the same columns as :meth:`events_after`."""
        rows = (
            self.event_model._default_manager.filter(**{self.owner: pk})
            .order_by("-sequence")
            .values_list(*_EVENT_COLUMNS)
        )
        return list(rows[:count])[::-1]

    def live_url(self, pk: UUID) -> str:
        """The path of the row's live stream."""
        return reverse(self.url_name, args=[pk])


INTERACTION = LiveTarget(
    Interaction,
    InteractionEvent,
    "interaction_id",
    InteractionStatus.terminal(),
    kind="interaction",
    url_name="django_scout:live-interaction",
)
RUN = LiveTarget(
    WorkflowRun,
    WorkflowRunEvent,
    "run_id",
    (WorkflowRunStatus.SUCCEEDED.value, WorkflowRunStatus.FAILED.value),
    kind="run",
    url_name="django_scout:live-run",
)


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE message: ``id:`` (when given), ``event:`` and one ``data:`` line of JSON."""
    text = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


class Relay:
    """What one client has been sent, and the next bounded read of its row."""

    def __init__(self, target: LiveTarget, pk: UUID, after: int) -> None:
        self.target = target
        self.pk = pk
        #: The sequence of the last event sent (``-1``: none).
        self.cursor = after
        self.sent_status: dict[str, Any] | None = None
        self.finished = False
        self._status: dict[str, Any] | None = None
        self._reading = False

    def read(self) -> tuple[list[bytes], bool]:
        """Messages for at most one batch of events (and the status after the last batch);
        ``True`` when more events wait to be read at once.

        The status is read before the events, so a terminal status is sent (with ``end``) only
        after every event stored before it.
        """
        if not self._reading:
            self._status = self.target.status(self.pk)
            self._reading = True
        rows = self.target.events_after(self.pk, self.cursor)
        messages = [
            sse(
                "scout_event",
                {
                    "sequence": sequence,
                    "name": name,
                    "data": data,
                    "timestamp": timestamp,
                    "created_at": created_at,
                },
                event_id=sequence,
            )
            for sequence, name, data, timestamp, created_at in rows
        ]
        if rows:
            self.cursor = rows[-1][0]
        if len(rows) == READ_BATCH:
            return messages, True
        self._reading = False
        status = self._status
        if status is not None and status != self.sent_status:
            messages.append(sse("status", status))
            self.sent_status = status
        if status is None or status["status"] in self.target.terminal:
            messages.append(sse("end", {"status": None if status is None else status["status"]}))
            self.finished = True
        return messages, False

    def read_and_release(self) -> tuple[list[bytes], bool]:
        """:meth:`read`, then close this thread's connections (``CONN_MAX_AGE`` permitting)."""
        try:
            return self.read()
        finally:
            close_old_connections()


# --- the view ------------------------------------------------------------------------------


def _permission() -> Callable[[HttpRequest, models.Model], bool]:
    return import_string(scout_settings().LIVE_PERMISSION)  # type: ignore[no-any-return]


def may_watch(request: HttpRequest, obj: models.Model) -> bool:
    """Whether ``LIVE_PERMISSION`` lets ``request``'s viewer watch ``obj``."""
    return bool(_permission()(request, obj))


def target_of(obj: models.Model) -> LiveTarget:
    """The :class:`LiveTarget` of an ``Interaction`` or a ``WorkflowRun`` (``TypeError`` else)."""
    for target in (INTERACTION, RUN):
        if isinstance(obj, target.model):
            return target
    raise TypeError(f"expected an Interaction or a WorkflowRun, got {type(obj).__name__}")


def _authorised(request: HttpRequest, target: LiveTarget, pk: UUID, release: bool) -> bool:
    """Whether the row exists and ``LIVE_PERMISSION`` allows it; with ``release``, the
    thread's connections are closed afterwards."""
    try:
        obj = target.model._default_manager.filter(pk=pk).first()
        return obj is not None and may_watch(request, obj)
    finally:
        if release:
            _close_connections()


#: Connects authorised at the same time in one process (one event loop). Under ASGI each
#: request's synchronous part has a thread, and so a database connection, of its own: without
#: this bound a burst of viewers (every widget of a page, every browser reconnecting after a
#: deploy) would open one connection each at once and could exhaust the database's.
CONNECT_CONCURRENCY = 4

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _connect_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(CONNECT_CONCURRENCY)
    return gate


def _last_event_id(request: HttpRequest) -> int | None:
    """The sequence the client saw last; ``None`` when the value is not an integer."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    if not raw.strip():
        return -1
    try:
        return max(int(raw.strip()), -1)
    except ValueError:
        return None


async def respond(request: HttpRequest, target: LiveTarget, pk: UUID) -> HttpResponseBase:
    """Answer a live URL: 403 unless the row exists and ``LIVE_PERMISSION`` allows it, 400 for
    a ``Last-Event-ID`` that is not an integer, else the stream (see the module docs)."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    asgi = isinstance(request, ASGIRequest)
    # Thread-sensitive: the hook may read request.user, the session and the database. Under
    # ASGI the request thread's connection is closed before the gate opens for the next one.
    async with _connect_gate():
        allowed = await sync_to_async(_authorised)(request, target, pk, asgi)
    if not allowed:
        # The same answer whether the row exists or not: it says nothing about other rows.
        return HttpResponseForbidden("not allowed to watch this row")
    after = _last_event_id(request)
    if after is None:
        return HttpResponseBadRequest("Last-Event-ID must be an event sequence (an integer)")
    conf = scout_settings()
    relay = Relay(target, pk, after)
    stream: Iterator[bytes] | AsyncIterator[bytes]
    stream = _stream_async(relay, conf) if asgi else _stream_sync(relay, conf)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
    return response


class _Pacing:
    """When a stream sends a heartbeat, how long it may wait, and when it ends."""

    def __init__(self, now: float, heartbeat: float, limit: float) -> None:
        self.heartbeat = heartbeat
        self.end = now + limit
        self.last_write = now

    def wrote(self, now: float) -> None:
        """A message went out at ``now``."""
        self.last_write = now

    def beat(self, now: float) -> bytes:
        """A heartbeat comment when the stream has been silent long enough, else nothing."""
        if now - self.last_write < self.heartbeat:
            return b""
        self.last_write = now
        return HEARTBEAT

    def wait_time(self, now: float) -> float:
        """Seconds until the next heartbeat or the end, whichever comes first."""
        return max(0.0, min(self.last_write + self.heartbeat, self.end) - now)


def _stream_sync(relay: Relay, conf: ScoutSettings) -> Iterator[bytes]:
    """The WSGI stream: reads every ``LIVE_POLL_INTERVAL``; ends after ``LIVE_SYNC_MAX_DURATION``
    seconds."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    pacing = _Pacing(time.monotonic(), conf.LIVE_HEARTBEAT, conf.LIVE_SYNC_MAX_DURATION)
    while True:
        more = True
        while more:
            messages, more = relay.read()
            if messages:
                yield b"".join(messages)
                pacing.wrote(time.monotonic())
        now = time.monotonic()
        if relay.finished or now >= pacing.end:
            return
        if beat := pacing.beat(now):
            yield beat
        time.sleep(min(conf.LIVE_POLL_INTERVAL, pacing.wait_time(now)))


async def _stream_async(relay: Relay, conf: ScoutSettings) -> AsyncIterator[bytes]:
    """The ASGI stream: waits on notifications (or polls), holding no thread or connection."""
    await _release_request_thread()
    loop = asyncio.get_running_loop()
    waiter = _waiter(relay.target, relay.pk, conf)
    read = sync_to_async(relay.read_and_release, thread_sensitive=False)
    pacing = _Pacing(loop.time(), conf.LIVE_HEARTBEAT, conf.LIVE_MAX_DURATION)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        due = True
        while True:
            if due:
                waiter.clear()
                more = True
                while more:
                    messages, more = await read()
                    if messages:
                        yield b"".join(messages)
                        pacing.wrote(loop.time())
            now = loop.time()
            if relay.finished or now >= pacing.end:
                return
            if beat := pacing.beat(now):
                yield beat
            due = await waiter.wait(pacing.wait_time(now))
    finally:
        waiter.close()


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


async def _release_request_thread() -> None:
    """Close the connections of this request's thread (Django's ASGI handler runs the
    request's synchronous parts on a thread of its own) and let the thread end; a later
    synchronous part (closing the response) gets a new one."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None:
        return
    executor = executors.get(context)
    if executor is None:
        return
    await sync_to_async(_close_connections)()
    executors.pop(context, None)
    executor.shutdown(wait=False)


# --- waiting for changes -------------------------------------------------------------------


class _Waiter:
    """One client's wait for its row to change."""

    def __init__(self, hub: _Hub | None, key: str, poll_interval: float) -> None:
        self.hub = hub
        self.key = key
        self.poll_interval = poll_interval
        self.event = asyncio.Event()

    def clear(self) -> None:
        """Forget changes seen so far (called just before reading)."""
        self.event.clear()

    async def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; ``True`` when the row should be read."""
        if self.hub is None or not self.hub.listening:
            # Polling (by choice, or while the listener is away).
            if timeout < self.poll_interval:
                await asyncio.sleep(timeout)
                return False
            await asyncio.sleep(self.poll_interval)
            return True
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop waiting for good."""
        if self.hub is not None:
            self.hub.unsubscribe(self)


def _waiter(target: LiveTarget, pk: UUID, conf: ScoutSettings) -> _Waiter:
    backend = notify_backend()
    key = live_key(target.model, pk)
    if backend == "poll":
        return _Waiter(None, key, conf.LIVE_POLL_INTERVAL)
    if backend == "postgresql":
        source = router.db_for_write(target.model)
    else:
        source = conf.LIVE_REDIS_URL or ""
    hub = _Hub.get(backend, source)
    waiter = _Waiter(hub, key, conf.LIVE_POLL_INTERVAL)
    hub.subscribe(waiter)
    return waiter


class _Hub:
    """One listener per event loop and channel, fanning notifications out to the waiters.

    It listens while anyone waits and stops (closing its connection) when the last one goes.
    Right after each (re)connection every waiter is woken to read, so a change announced while
    nobody listened is not missed; while it is disconnected the waiters poll.
    """

    _hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Hub]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, backend: str, source: str) -> None:
        self.backend = backend
        self.source = source
        self.waiters: dict[str, set[_Waiter]] = {}
        self.listening = False
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def get(cls, backend: str, source: str) -> _Hub:
        """This event loop's hub for ``backend`` on ``source`` (an alias or a Redis URL)."""
        hubs = cls._hubs.setdefault(asyncio.get_running_loop(), {})
        hub = hubs.get((backend, source))
        if hub is None:
            hub = hubs[backend, source] = cls(backend, source)
        return hub

    def subscribe(self, waiter: _Waiter) -> None:
        """Wake ``waiter`` whenever its row is announced; start listening if needed."""
        self.waiters.setdefault(waiter.key, set()).add(waiter)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def unsubscribe(self, waiter: _Waiter) -> None:
        """Forget ``waiter``; stop listening when nobody waits."""
        waiters = self.waiters.get(waiter.key)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self.waiters[waiter.key]
        if not self.waiters and self.task is not None:
            self.task.cancel()
            self.task = None
            self.listening = False

    def dispatch(self, key: str) -> None:
        """Wake the waiters of ``key``."""
        for waiter in self.waiters.get(key, ()):
            waiter.event.set()

    def _set_listening(self, value: bool) -> None:
        # A cancelled listener may finish after its successor started: only the current one
        # speaks for the hub.
        if self.task is asyncio.current_task():
            self.listening = value

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async for key in self._listen():
                    if key is None:  # (re)connected
                        self._set_listening(True)
                        backoff = 0.5
                        for waiters in list(self.waiters.values()):
                            for waiter in waiters:
                                waiter.event.set()
                    else:
                        self.dispatch(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "django-scout: the live listener (%s) failed; reconnecting in %.1fs",
                    self.backend,
                    backoff,
                    exc_info=True,
                )
            finally:
                self._set_listening(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    def _listen(self) -> AsyncIterator[str | None]:
        if self.backend == "postgresql":
            return _listen_postgresql(self.source)
        return _listen_redis(self.source)


#: Django's connection parameters that are not libpq's.
_NOT_LIBPQ = {"context", "cursor_factory", "prepare_threshold"}


async def _listen_postgresql(alias: str) -> AsyncIterator[str | None]:
    """``None`` once listening, then the payload of each notification on :data:`CHANNEL`."""
    import psycopg

    params = connections[alias].get_connection_params()
    params = {key: value for key, value in params.items() if key not in _NOT_LIBPQ}
    connection = await psycopg.AsyncConnection.connect(autocommit=True, **params)
    async with connection:
        await connection.execute(f"LISTEN {CHANNEL}")
        yield None
        async for notify in connection.notifies():
            yield notify.payload


async def _listen_redis(url: str) -> AsyncIterator[str | None]:
    """``None`` once subscribed, then each message published on :data:`CHANNEL`."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(CHANNEL)
        yield None
        async for message in pubsub.listen():
            if message.get("type") == "message":
                data = message["data"]
                yield data.decode() if isinstance(data, bytes) else str(data)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            await client.aclose()
