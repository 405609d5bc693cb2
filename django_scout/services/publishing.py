"""Publishing Celery tasks without letting a broker outage slow down the caller.

A stopped broker makes ``apply_async`` block for seconds (kombu retries the connection) and a
broker that accepts connections but never answers makes it block indefinitely. The callback view
must answer Scout within 10 seconds whatever the broker does, and a host's request that starts
an interaction should not hang either. So every publish goes through :class:`TaskPublisher`:

- the publish runs on a small pool of daemon threads and the caller waits at most
  ``PUBLISH_TIMEOUT`` seconds for it (a healthy broker answers in about a millisecond; a
  process's first publish, which also imports the broker client and connects, may take up to
  :data:`FIRST_PUBLISH_TIMEOUT`); when
  every thread is still stuck on a hung broker, the publish fails at once;
- each of those threads keeps its own producer on its own broker connection (see
  :class:`_HeldProducer`): no pool checkout, channel revival or exchange binding per publish;
- a publish that fails or does not answer in time opens a breaker: for
  ``PUBLISH_RETRY_AFTER`` seconds nothing is published, so later callers do not wait at all;
  then one publish probes the broker again, and a success closes the breaker (so does a
  timed-out publish that completes late);
- nothing is lost while the breaker is open: every task django-scout publishes belongs to a
  database row that records the work still due (a pending interaction or run, an unprocessed
  callback delivery), and ``scout_reconcile`` enqueues that work again once it is due.

With ``task_always_eager`` (unit tests) the task runs inline, as Celery would run it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from celery import Celery, Task
from kombu import Connection, Producer

from ..conf import scout_settings

__all__ = ["FIRST_PUBLISH_TIMEOUT", "PublisherBusy", "TaskPublisher", "publisher"]

logger = logging.getLogger("django_scout")

#: The wait allowed for a process's first publish: it also imports the broker's client and opens
#: the connection, which can take longer than a healthy publish (0.1 to 0.6 s seen on a busy host).
FIRST_PUBLISH_TIMEOUT = 2.0

#: Most threads publishing at once. A broker that hangs can hold every one of them (until it
#: answers, or TCP gives up); publishing then fails at once instead of waiting.
PUBLISH_THREADS = 8


class PublisherBusy(RuntimeError):
    """Every publishing thread is still waiting on the broker."""


class _DaemonPool:
    """Daemon threads started on demand, up to ``size``, each running one submitted call at a
    time; recreated after a fork."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._pid = -1
        self._live = 0
        self._idle = 0
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        """Run ``call`` on an idle (or new) thread; its outcome lands in the returned future.

        When every thread is busy the future fails at once with :class:`PublisherBusy`.
        """
        future: Future[Any] = Future()
        with self._lock:
            if self._pid != os.getpid():
                # After a fork the parent's threads are gone and its queue may hold stale work.
                self._pid, self._live, self._idle = os.getpid(), 0, 0
                self._queue = queue.SimpleQueue()
            if self._idle == 0:
                if self._live >= self._size:
                    future.set_exception(
                        PublisherBusy(f"all {self._size} publishing threads wait on the broker")
                    )
                    return future
                threading.Thread(
                    target=self._run,
                    args=(self._queue,),
                    name=f"django-scout-publisher-{self._live}",
                    daemon=True,
                ).start()
                self._live += 1
                self._idle += 1
            self._idle -= 1
            self._queue.put((call, future))
        return future

    def _run(self, work: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            call, future = work.get()
            outcome: tuple[bool, Any] | None = None
            if future.set_running_or_notify_cancel():
                try:
                    outcome = (True, call())
                except BaseException as exc:
                    outcome = (False, exc)
            # Idle again *before* the caller learns the outcome: a caller that publishes again
            # at once then finds this thread free instead of starting another one.
            with self._lock:
                replaced = work is not self._queue  # a fork replaced the pool
                if not replaced:
                    self._idle += 1
            if outcome is not None:
                ok, value = outcome
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            if replaced:
                return


class _HeldProducer(threading.local):
    """The calling thread's own producer for one Celery app, kept between publishes.

    Its connection comes from ``app.connection_for_write()`` rather than the app's producer
    pool, so holding it never takes a slot the host's own publishing may wait for. It is
    replaced when the app's connection pool is (after a fork, or when the broker settings
    are applied again), and dropped after any failure so that the next publish connects
    afresh, as Celery's pool would.
    """

    app: Celery | None = None
    pool: Any = None
    connection: Connection | None = None
    producer: Producer | None = None

    def get(self, app: Celery) -> Producer:
        """This thread's producer for ``app``, created on first use (without connecting)."""
        pool = app.pool
        if self.producer is None or self.app is not app or self.pool is not pool:
            self.drop()
            connection = app.connection_for_write()
            self.app, self.pool, self.connection = app, pool, connection
            self.producer = app.amqp.Producer(connection)
        return self.producer

    def drop(self) -> None:
        """Forget the producer, freeing its connection without talking to the broker."""
        connection, self.connection = self.connection, None
        self.app = self.pool = self.producer = None
        if connection is not None:
            try:
                connection.collect()
            except Exception:  # a connection that is already broken has nothing to free
                logger.debug("django-scout: dropping a publisher connection failed", exc_info=True)


class TaskPublisher:
    """Publishes Celery tasks with a bounded wait and a breaker (see the module docstring)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, threads: int = PUBLISH_THREADS
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._tripped = False
        self._skipped = 0
        self._warm_pid = -1
        self._pool = _DaemonPool(threads)
        self._held = _HeldProducer()

    @property
    def is_open(self) -> bool:
        """True while publishes are being skipped because the broker recently failed."""
        return self._clock() < self._open_until

    def publish(self, task: Any, args: Sequence[Any]) -> bool:
        """Publish ``task`` with ``args``; True when the broker took it.

        Never raises and never waits longer than ``PUBLISH_TIMEOUT``: a failure is logged and
        the work waits for reconcile.
        """
        name = getattr(task, "name", repr(task))
        if task.app.conf.task_always_eager:
            try:
                task.apply_async(args=tuple(args), retry=False)
            except Exception:
                logger.exception("django-scout could not run %s%r", name, tuple(args))
                return False
            return True
        with self._lock:
            if self._clock() < self._open_until:
                self._skipped += 1
                logger.debug("django-scout: broker unavailable; %s%r left to reconcile", name, args)
                return False
        timeout = scout_settings().PUBLISH_TIMEOUT
        if self._warm_pid != os.getpid():
            timeout = max(timeout, FIRST_PUBLISH_TIMEOUT)
        future = self._pool.submit(lambda: self._send(task, tuple(args)))
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            self._trip(f"{name}: the broker did not answer within {timeout}s")
            future.add_done_callback(self._late_outcome)
            return False
        except Exception as exc:
            self._trip(f"{name}: {type(exc).__name__}: {exc}")
            return False
        self._warm_pid = os.getpid()
        self._close()
        return True

    def _send(self, task: Any, args: tuple[Any, ...]) -> None:
        """Publish on this (publishing) thread's held producer; runs on a pool thread."""
        if not isinstance(task, Task):  # a stand-in without Celery's producer options
            task.apply_async(args=args, retry=False)
            return
        producer = self._held.get(task.app)
        try:
            # The arguments are ids: Celery's size-limited saferepr of them is not needed.
            reprs: dict[str, Any] = {"argsrepr": repr(args), "kwargsrepr": "{}"}
            task.apply_async(args=args, retry=False, producer=producer, **reprs)
        except BaseException:
            self._held.drop()
            raise

    def reset(self) -> None:
        """Close the breaker and forget the skipped count (tests, or after a known fix)."""
        with self._lock:
            self._open_until = 0.0
            self._tripped = False
            self._skipped = 0

    def _trip(self, reason: str) -> None:
        pause = scout_settings().PUBLISH_RETRY_AFTER
        with self._lock:
            first, self._tripped = not self._tripped, True
            self._open_until = self._clock() + pause
        log = logger.error if first else logger.warning
        log(
            "django-scout could not publish a task (%s); publishing paused for %ss, "
            "scout_reconcile enqueues the work that is due",
            reason,
            pause,
        )

    def _close(self) -> None:
        with self._lock:
            was_tripped, self._tripped = self._tripped, False
            skipped, self._skipped, self._open_until = self._skipped, 0, 0.0
        if was_tripped:
            logger.warning(
                "django-scout: the broker is reachable again; %s publishes were skipped "
                "meanwhile and are enqueued by scout_reconcile",
                skipped,
            )

    def _late_outcome(self, future: Future[Any]) -> None:
        if future.exception() is None:
            self._warm_pid = os.getpid()
            self._close()


#: The process-wide publisher every service uses.
publisher = TaskPublisher()
