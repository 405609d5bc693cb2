"""Publishing many small pieces of work as one message, without making the caller wait.

The callback view stores each delivery before it answers: the row is the outbox of its
processing. Publishing that processing is then only a hint to the workers that something is due
(reconcile finds a delivery whose publish was lost), so the request need not wait for it.
:class:`BatchPublisher` takes the ids handed to it in one process, and a background thread
publishes those that arrived within :data:`BATCH_WINDOW` seconds of the first as one message of
a task that takes a list (at most :data:`MAX_BATCH` ids each), through
:data:`.publishing.publisher` (bounded wait, breaker). What is still waiting when the process
exits normally is published on the way out (:func:`atexit`); a process that is killed leaves
its ids to reconcile.

With ``task_always_eager`` (unit tests) each id is published at once, on the caller's thread,
as a batch of one, so the task runs inline as Celery would run it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .publishing import publisher

__all__ = ["BATCH_WINDOW", "FLUSH_WAIT", "MAX_BATCH", "BatchPublisher", "batch_publisher"]

logger = logging.getLogger("django_scout")

#: Seconds an id waits for others to share its message. A message costs about as much CPU as
#: the rest of a callback's request (Celery builds it, kombu's Redis transport makes a client
#: for it), so under load the window sets how much of that each callback pays: at 100 ms a web
#: process taking 100 callbacks a second pays for one message per 10 of them. Processing starts
#: at most this much later, next to a Scout run of seconds.
BATCH_WINDOW = 0.1

#: Most ids in one message, so that one task's work stays small and workers share a burst.
MAX_BATCH = 50

#: Seconds :meth:`BatchPublisher.flush` waits for a batch another thread is publishing: more
#: than the longest a publish may wait (``PUBLISH_TIMEOUT``, or a first publish's 2 s).
FLUSH_WAIT = 3.0

#: Publishes ``task`` with ``args``; True when the broker took it (``publisher.publish``).
Publish = Callable[[Any, Sequence[Any]], bool]


class BatchPublisher:
    """Collects ids per task and publishes them in batches from a thread of its own."""

    def __init__(
        self,
        publish: Publish | None = None,
        window: float = BATCH_WINDOW,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._window = window
        self._max_batch = max_batch
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[Any, list[Any]] = {}
        self._first_at = 0.0
        self._in_flight = 0  # batches taken and not yet published
        self._pid = -1

    def add(self, task: Any, item: Any) -> None:
        """Have ``task`` run on a list holding ``item``, soon; never waits on the broker."""
        if task.app.conf.task_always_eager:
            self._publisher()(task, ([item],))
            return
        with self._cond:
            if self._pid != os.getpid():
                self._start()
            items = self._pending.setdefault(task, [])
            items.append(item)
            if len(self._pending) == 1 and len(items) == 1:
                self._first_at = self._clock()
                self._cond.notify_all()  # the window starts
            elif len(items) >= self._max_batch:
                self._cond.notify_all()  # a full batch goes at once

    def flush(self, wait: float = FLUSH_WAIT) -> int:
        """Publish everything waiting now, on the calling thread, then wait up to ``wait``
        seconds for a batch the background thread is publishing; returns how many ids this
        call had the broker take (the others are left to reconcile)."""
        with self._cond:
            batches = self._take()
            self._in_flight += 1
        try:
            sent = self._send(batches)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
        deadline = self._clock() + wait
        with self._cond:
            while self._in_flight and (remaining := deadline - self._clock()) > 0:
                self._cond.wait(remaining)
        return sent

    def pending(self) -> int:
        """How many ids wait to be published."""
        with self._cond:
            return sum(len(items) for items in self._pending.values())

    def _start(self) -> None:
        """Start this process's flushing thread (again after a fork, which does not copy it)."""
        if self._pid == -1:
            atexit.register(self.flush)
        self._pid = os.getpid()
        # What a parent process left waiting is the parent's to publish.
        self._pending = {}
        threading.Thread(target=self._run, name="django-scout-batcher", daemon=True).start()

    def _publisher(self) -> Publish:
        # Looked up at call time: tests and embedders may replace ``publisher.publish``.
        return self._publish or publisher.publish

    def _take(self) -> list[tuple[Any, list[Any]]]:
        """Remove and return everything waiting, cut into batches; the lock is held."""
        batches = [
            (task, items[start : start + self._max_batch])
            for task, items in self._pending.items()
            for start in range(0, len(items), self._max_batch)
        ]
        self._pending = {}
        return batches

    def _full(self) -> bool:
        return any(len(items) >= self._max_batch for items in self._pending.values())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                while not self._full():
                    remaining = self._first_at + self._window - self._clock()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batches = self._take()
                self._in_flight += 1
            try:
                self._send(batches)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _send(self, batches: list[tuple[Any, list[Any]]]) -> int:
        """Publish each batch; one that fails is left to reconcile (``publish`` logged it)."""
        sent = 0
        publish = self._publisher()
        for task, items in batches:
            try:
                if publish(task, (items,)):
                    sent += len(items)
            except Exception:  # e.g. no new thread at interpreter exit; this thread must live on
                logger.exception("django-scout could not publish %s%r", task, items)
        return sent


#: The process-wide batch publisher of the callback path.
batch_publisher = BatchPublisher()
