"""Read an iterable in batches on a helper thread while the caller writes the previous batch.

Storing an event stream alternates two kinds of work: reading, parsing and preparing the next
events (Python, holding the GIL) and writing a batch to the database (SQLite's statements and
its commit, or a round trip to a database server, with the GIL released).
:func:`read_ahead_batches` overlaps them: a daemon thread reads and prepares the batch after the
one being written, at most :data:`READ_AHEAD` batches ahead, so memory stays bounded. Nothing on
the helper thread touches the database; the caller's connection and transaction are used only
by the caller.

The writer's thread needs the GIL for a moment after each statement. A thread that wants the GIL
gets it only when the holder lets go, which a busy thread does only every
``sys.getswitchinterval()`` (5 ms): with a few statements per batch, the writer would spend
most of its time waiting for the GIL, and the database would sit idle. So the helper lets go of
it every :data:`SHARE_EVERY` items.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from itertools import islice
from typing import Any, TypeVar

__all__ = ["READ_AHEAD", "SHARE_EVERY", "batches", "read_ahead_batches"]

T = TypeVar("T")
U = TypeVar("U")

#: Batches read ahead of the one being written, at most.
READ_AHEAD = 1
#: Items the helper reads and prepares between two moments it lets the writer take the GIL.
SHARE_EVERY = 16

_END: Any = object()


def batches(items: Iterable[T], size: int) -> Iterator[tuple[list[T], bool]]:
    """``items`` in lists of at most ``size``, each with whether it is the last.

    One item is read ahead to know. When reading it fails, the batch before is still given
    (as the last) before the error propagates; a batch the error cuts short is not.
    """
    iterator = iter(items)
    batch = list(islice(iterator, size))
    while batch:
        try:
            ahead = next(iterator, _END)
        except Exception:
            yield batch, True
            raise
        yield batch, ahead is _END
        batch = [] if ahead is _END else [ahead, *islice(iterator, size - 1)]


class _Failure:
    """The error that ended the reading, to be raised on the caller's thread."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead_batches(
    items: Iterable[T], size: int, prepare: Callable[[T], U]
) -> Iterator[tuple[list[U], bool]]:
    """:func:`batches` of ``items`` passed through ``prepare``, read on a helper thread from the
    second batch on.

    Gives the same batches (of ``prepare(item)``), flags and error as :func:`batches` would for
    ``map(prepare, items)``: an error raised by ``prepare`` ends the reading as one raised by
    ``items`` does. The first batch is read on the caller's thread; a helper starts only when
    there is more, so a stream of one batch costs no thread. When the caller stops early (an
    error while writing, or ``close()``), the helper is told to stop and joined before this
    generator returns, so ``items`` (an HTTP response, say) is never read after the caller
    moved on.
    """
    inline = batches(_sharing_the_gil(map(prepare, items)), size)
    first = next(inline, None)
    if first is None:
        return
    yield first
    if first[1]:
        yield from inline  # nothing more: it ends, or raises the error that ended the reading
        return
    handoff: queue.Queue[tuple[list[U], bool] | _Failure | None] = queue.Queue(READ_AHEAD)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in inline:
                while not stop.is_set():
                    try:
                        handoff.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # raised again on the caller's thread
            handoff.put(_Failure(error))
            return
        handoff.put(None)

    reader = threading.Thread(target=read, name="django-scout-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            # Make room for a put the reader may be blocked in.
            with suppress(queue.Empty):
                handoff.get(timeout=0.05)
        reader.join()


def _sharing_the_gil(items: Iterator[U]) -> Iterator[U]:
    """``items``, letting other threads take the GIL every :data:`SHARE_EVERY` of them."""
    for index, item in enumerate(items):
        if not index % SHARE_EVERY:
            time.sleep(0)  # releases the GIL; a thread waiting for it takes it
        yield item
