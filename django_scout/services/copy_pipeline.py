"""Send a ``COPY … FROM STDIN`` to PostgreSQL and go on working while the server runs it.

A ``COPY`` through psycopg's cursor waits for the server to have stored every row before it
returns, so the caller's thread cannot prepare the next rows meanwhile: on a machine where
parsing and encoding events costs about as much as the server's work on them, half of the time
goes to waiting. :class:`CopyPipeline` speaks the ``COPY`` protocol with psycopg's low-level
connection (:mod:`psycopg.pq`) instead: :meth:`~CopyPipeline.send` starts the statement, sends
its data and its end, and returns at once; :meth:`~CopyPipeline.wait` later reads the outcome
(and raises its error as Django's). Everything is sent before :meth:`~CopyPipeline.send`
returns, so the statement never waits for the caller, and its transaction (the connection is
in autocommit) ends on the server's own time.

Only one statement is ever under way: the connection must not be used for anything else
between :meth:`~CopyPipeline.send` and :meth:`~CopyPipeline.wait`. When an exchange is cut short
(an exception raised while waiting on the socket, a signal's handler, a lost connection), the
connection is closed, since its protocol state is unknown; Django opens a new one at its next
use.
"""

from __future__ import annotations

import selectors
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["CHUNK_BYTES", "CopyPipeline"]

#: The most data handed to libpq at once (a larger buffer can make ``PQputCopyData`` refuse it
#: for ever in nonblocking mode; psycopg splits its own writes alike).
CHUNK_BYTES = 128 * 1024


class CopyPipeline:
    """One ``COPY … FROM STDIN`` at a time on ``connection``, sent without waiting for its end.

    ``connection`` is a Django PostgreSQL connection using psycopg 3, in autocommit mode and
    outside any atomic block, so that each statement commits on its own.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        from psycopg import pq

        self.connection = connection
        connection.ensure_connection()
        #: The psycopg connection, whose lock is held for each exchange.
        self.driver: Any = connection.connection
        self.pgconn: Any = self.driver.pgconn
        self.status = pq.ExecStatus
        #: Whether a statement was sent and its outcome not read yet.
        self.pending = False

    def send(self, sql: str, data: bytes) -> None:
        """Run ``sql`` (a ``COPY … FROM STDIN``) with ``data`` as its whole input; returns once
        everything is sent, without waiting for the statement to end. The outcome of the one
        sent before must have been read (:meth:`wait`)."""
        if self.pending:
            raise RuntimeError("the COPY sent before was not waited for")
        with self._exchange():
            pgconn = self.pgconn
            pgconn.send_query(sql.encode())
            self._flush()
            result = self._result()
            if result.status != self.status.COPY_IN:  # refused before any data (a bad name)
                self._raise(result)
            for start in range(0, len(data), CHUNK_BYTES):
                chunk = data[start : start + CHUNK_BYTES]
                while not pgconn.put_copy_data(chunk):
                    self._wait(write=True)
            while not pgconn.put_copy_end():
                self._wait(write=True)
            self._flush()
            self.pending = True

    def wait(self) -> None:
        """Wait for the statement sent last to end; raise its error as Django's (an
        ``IntegrityError`` for a unique or foreign key violation, say). Nothing to wait for
        returns at once."""
        if not self.pending:
            return
        with self._exchange():
            result = self._result()
            if result is None or result.status != self.status.COMMAND_OK:
                self._raise(result)
            while self._result() is not None:  # the end of the statement's results
                pass
            self.pending = False

    @contextmanager
    def _exchange(self) -> Iterator[None]:
        """Hold the psycopg connection's lock for an exchange; close the connection when the
        exchange is cut short by anything but the statement's own error (after which the
        connection is ready for the next statement)."""
        try:
            with self.driver.lock:
                yield
        except DatabaseError:
            raise
        except BaseException:
            self.pending = False
            self.connection.close()
            raise

    def _raise(self, result: Any) -> None:
        from psycopg import errors, pq

        # Read the rest, so that the connection is ready for the next statement.
        while self._result() is not None:
            pass
        self.pending = False
        if result is None:
            raise errors.InterfaceError("the server gave no result for the COPY")
        state = result.error_field(pq.DiagnosticField.SQLSTATE)
        message = (result.error_message or b"COPY failed").decode(errors="replace").strip()
        error_class: type[Exception] = errors.DatabaseError
        if state:
            with suppress(KeyError):  # a state this psycopg does not know
                error_class = errors.lookup(state.decode())
        with self.connection.wrap_database_errors:
            raise error_class(message)

    def _result(self) -> Any:
        """The next result, once it has all come (``None`` after the last)."""
        pgconn = self.pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            self._wait(write=False)
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        pgconn = self.pgconn
        while pgconn.flush():
            # Read too: a server that has a message for us may stop reading until it is taken.
            self._wait(write=True, read=True)
            pgconn.consume_input()

    def _wait(self, *, write: bool, read: bool = False) -> None:
        """Wait until the socket can be written (``write``) or read (otherwise, or ``read``);
        the GIL is released meanwhile."""
        events = (selectors.EVENT_WRITE if write else 0) | (
            selectors.EVENT_READ if read or not write else 0
        )
        with selectors.DefaultSelector() as selector:
            selector.register(self.pgconn.socket, events)
            while not selector.select():
                pass
