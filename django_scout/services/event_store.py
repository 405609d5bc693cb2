"""Store an interaction's event stream fast, idempotently and in bounded memory.

:func:`store_event_stream` writes :class:`~django_scout.client.streams.SessionEvent` objects as
``InteractionEvent`` rows in batches, each committed on its own (or, inside the caller's
``transaction.atomic()``, as part of its transaction), without building model instances:

* **PostgreSQL (psycopg 3)**: binary ``COPY … FROM STDIN`` straight into the table. ``COPY``
  cannot skip rows that exist, so a batch goes straight in only when its sequences rise and all
  lie above every one stored (a first fetch, or the part of a stream beyond where an interrupted
  fetch stopped: one index lookup per stream finds that mark). Any other batch (a re-fetch,
  sequences out of order) is checked first: one query finds which of its sequences are stored,
  and only the others are copied. When another writer stores the same sequences at the same
  moment, the unique constraint refuses the copy and the batch is checked and copied again.
  Outside the caller's transaction, a batch's ``COPY`` is a statement of its own, committed as
  it ends, and it is sent without waiting for it to end (:mod:`.copy_pipeline`): the server
  stores a batch while the next one is read, parsed and encoded (by :mod:`.copy_binary`), and
  the writer waits for it only before sending that next one. Inside the caller's transaction,
  each batch is copied in a savepoint and waited for.
* **SQLite**: ``INSERT OR IGNORE`` of plain tuples, 142 rows per statement (999 parameters; one
  statement of many rows costs less per row than ``executemany``, and the
  GIL is released while it runs); the next batch is read on a helper thread (:mod:`.read_ahead`)
  meanwhile, and while the commit waits for the disk.
* **Anything else** (MySQL, MariaDB, Oracle, psycopg 2): ``bulk_create(ignore_conflicts=True)``.

Every path stores what the model would: ``name`` and ``event_id`` cut to 255 characters, ``data``
as JSON (``None`` as SQL ``NULL``), the timestamp read by
:func:`~django_scout.services.common.parse_timestamp` (``NULL`` when out of range) and
``created_at`` set when the batch is written; on PostgreSQL, which cannot store them, NUL
characters become U+FFFD (:mod:`.storable`). ``data`` is stored as the JSON text the event came
as (:attr:`~django_scout.client.streams.SessionEvent.json_text`: an NDJSON line, an SSE event's
data) when the stream gave one, and serialized by :func:`json.dumps` otherwise, so that most
events are not serialized a second time; both load as the same value. Of events sharing a
sequence, the first is kept.

Live viewers are told of each batch once it commits
(:func:`~django_scout.services.live.notify_changed`).

A batch is read from the stream whole before its statement starts, so no transaction waits on
the network. No temporary table or other session state is used, so a connection pooler in
transaction mode is fine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..client.streams import SessionEvent
from ..models import Interaction, InteractionEvent
from . import copy_binary
from .common import parse_timestamp
from .copy_pipeline import CopyPipeline
from .live import notify_changed
from .read_ahead import batches, read_ahead_batches
from .storable import nul_replaced, refuses_nul, storable_json, storable_text

__all__ = ["store_event_stream"]

#: The model fields written, in the order of each row's values.
_FIELDS = ("interaction", "sequence", "name", "event_id", "data", "timestamp", "created_at")
#: The most parameters of one SQLite statement: SQLite's historical limit, which Django before
#: 6.0 assumes (6.0 reads the database's, up to 32,766). Statements of 500 rows stored no faster
#: than of 142 here, and held a whole batch's parameters at once (2.1 MB of peak memory against
#: 0.8 MB for a stream of any length).
_SQLITE_PARAMETERS = 999
#: How many times a batch refused by the unique constraint is checked and copied again.
_ATTEMPTS = 3


def store_event_stream(
    interaction: Interaction, events: Iterable[SessionEvent], *, batch_size: int
) -> int:
    """Store ``events`` as ``interaction``'s ``InteractionEvent`` rows; returns how many came.

    Writes batches of ``batch_size`` events, each committed on its own (or as part of the
    caller's transaction, inside ``transaction.atomic()``). Sequences already stored are
    skipped, so a re-fetch never duplicates a row; an error raised by ``events`` propagates
    once the batches before it are stored. See the module documentation for how each database
    is written to.
    """
    alias = router.db_for_write(InteractionEvent)
    connection = connections[alias]
    if connection.vendor == "postgresql" and _driver(connection) == "psycopg":
        return _PostgresWriter(connection, alias, interaction, batch_size).store(events)
    if connection.vendor == "sqlite":
        return _store_sqlite(connection, alias, interaction, events, batch_size)
    return _store_with_orm(interaction, events, batch_size)


def _driver(connection: BaseDatabaseWrapper) -> str:
    """The DB-API module's name: ``psycopg`` (3) or ``psycopg2`` on PostgreSQL."""
    return str(getattr(getattr(connection, "Database", None), "__name__", ""))


@dataclass(frozen=True)
class _Table:
    """The events table's quoted name and columns, to build SQL from."""

    name: str
    #: The columns of :data:`_FIELDS`, comma-separated.
    columns: str
    interaction: str
    sequence: str

    @classmethod
    def of(cls, connection: BaseDatabaseWrapper) -> _Table:
        """The names as ``connection`` quotes them."""
        quote = connection.ops.quote_name
        column = {name: quote(_field(name).column) for name in _FIELDS}
        return cls(
            name=quote(InteractionEvent._meta.db_table),
            columns=", ".join(column.values()),
            interaction=column["interaction"],
            sequence=column["sequence"],
        )


def _field(name: str) -> models.Field[Any, Any]:
    field = InteractionEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


# --- SQLite --------------------------------------------------------------------------------


def _store_sqlite(
    connection: BaseDatabaseWrapper,
    alias: str,
    interaction: Interaction,
    events: Iterable[SessionEvent],
    batch_size: int,
) -> int:
    insert = _SqliteInsert(connection)
    interaction_id = _field("interaction").get_db_prep_save(interaction.pk, connection)
    adapt = _sqlite_datetime_adapter(connection)
    dumps = json.dumps

    def row(event: SessionEvent) -> tuple[Any, ...]:
        """``event``'s values but ``created_at``'s; built on the read-ahead thread."""
        return (
            interaction_id,
            event.sequence,
            (event.name or "")[:255],
            (event.id or "")[:255],
            _json_text(event, dumps),
            adapt(parse_timestamp(event.timestamp)),
        )

    count = 0
    for rows, _ in read_ahead_batches(events, batch_size, row):
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            insert.execute(cursor, rows, adapt(timezone.now()))
        notify_changed(Interaction, interaction.pk)
        count += len(rows)
    return count


class _SqliteInsert:
    """``INSERT OR IGNORE`` of many rows per statement, as many as fit in
    :data:`_SQLITE_PARAMETERS` (or in the database's limit, if lower).

    One statement of many rows costs SQLite less per row than ``executemany``, which runs the
    statement once for each row; and the GIL is released while a statement runs (not only
    between rows), so that the read-ahead thread parses the next batch meanwhile.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        table = _Table.of(connection)
        # Identifiers from the model's meta, quoted; every value is a parameter.
        self.head = f"INSERT OR IGNORE INTO {table.name} ({table.columns}) VALUES "  # noqa: S608
        self.row = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
        connection.ensure_connection()  # a Django that reads the limit off the connection
        limit = min(connection.features.max_query_params or _SQLITE_PARAMETERS, _SQLITE_PARAMETERS)
        #: Rows per statement.
        self.size = max(1, limit // len(_FIELDS))
        self.full = self._sql(self.size)

    def _sql(self, rows: int) -> str:
        return self.head + ", ".join([self.row] * rows)

    def execute(self, cursor: Any, rows: list[tuple[Any, ...]], created_at: Any) -> None:
        """Insert ``rows`` (each the values of :data:`_FIELDS` but the last), each with
        ``created_at``, skipping those whose sequence is stored."""
        for start in range(0, len(rows), self.size):
            part = rows[start : start + self.size]
            sql = self.full if len(part) == self.size else self._sql(len(part))
            cursor.execute(sql, list(chain.from_iterable((*row, created_at) for row in part)))


def _json_text(event: SessionEvent, dumps: Callable[[Any], str]) -> str | None:
    """The JSON text stored for ``event.data``: the text it came as, else ``dumps`` of it."""
    if event.data is None:
        return None
    return event.json_text if event.json_text is not None else dumps(event.data)


def _sqlite_datetime_adapter(connection: BaseDatabaseWrapper) -> Callable[[Any], Any]:
    """What Django's SQLite backend stores for an aware datetime (or ``None``)."""
    if not settings.USE_TZ:
        # It refuses aware datetimes, as saving through the model does.
        return connection.ops.adapt_datetimefield_value
    tz = connection.timezone

    def adapt(value: datetime | None) -> str | None:
        # adapt_datetimefield_value without its per-call checks (a fifth of the row's cost).
        return None if value is None else str(value.astimezone(tz).replace(tzinfo=None))

    return adapt


# --- PostgreSQL ----------------------------------------------------------------------------


class _PostgresWriter:
    """Binary ``COPY`` of one stream's rows (see the module documentation)."""

    def __init__(
        self, connection: BaseDatabaseWrapper, alias: str, interaction: Interaction, size: int
    ) -> None:
        self.connection = connection
        self.alias = alias
        self.interaction_id = interaction.pk
        self.batch_size = size
        #: The highest sequence stored when this stream began.
        self.stored_before = -1
        #: Set once a concurrent writer was caught: every batch is checked then.
        self.checking = False
        # Every row starts with its field count and the interaction's key.
        self.row_start = copy_binary.row_start(len(_FIELDS)) + copy_binary.uuid_field(
            interaction.pk
        )
        table = _Table.of(connection)
        # Identifiers from the model's meta, quoted; every value is a parameter.
        self.copy_sql = f"COPY {table.name} ({table.columns}) FROM STDIN (FORMAT BINARY)"
        self.highest_sql = (
            f"SELECT MAX({table.sequence}) FROM {table.name} WHERE {table.interaction} = %s"  # noqa: S608
        )
        self.stored_sql = (
            f"SELECT {table.sequence} FROM {table.name} "  # noqa: S608
            f"WHERE {table.interaction} = %s AND {table.sequence} BETWEEN %s AND %s"
        )

    def store(self, events: Iterable[SessionEvent]) -> int:
        """Write ``events``; returns how many came."""
        highest = self.stored_before = self._highest_stored()
        pipeline = self._pipeline()
        # The batch whose COPY the server is running (read from the stream before it was
        # sent, and kept to be copied again if it is refused).
        in_flight: list[_PreparedRow] | None = None
        count = 0
        try:
            # Outside a transaction, the next batch is read while the server stores the last.
            for batch, _ in batches(map(self._prepare, events), self.batch_size):
                count += len(batch)
                if pipeline is not None and in_flight is not None:
                    self._settle(pipeline, in_flight)
                    in_flight = None
                if self.checking or not _rising_above(batch, highest):
                    self._copy_missing(batch)
                    notify_changed(Interaction, self.interaction_id)
                elif pipeline is not None:
                    pipeline.send(self.copy_sql, self._payload(batch))
                    in_flight = batch
                else:
                    try:
                        with self._scope() as cursor:
                            self._copy(cursor, batch)
                    except IntegrityError:
                        self._refused(batch)
                    notify_changed(Interaction, self.interaction_id)
                highest = max(highest, *(sequence for sequence, _ in batch))
        finally:
            # The batches before an error are stored before it propagates.
            if pipeline is not None and pipeline.pending and in_flight is not None:
                self._settle(pipeline, in_flight)
        return count

    def _pipeline(self) -> CopyPipeline | None:
        """A :class:`.CopyPipeline` when each batch may commit on its own (autocommit, outside
        the caller's transaction); ``None`` when batches go through the caller's transaction."""
        self.connection.ensure_connection()
        if self.connection.in_atomic_block or not self.connection.get_autocommit():
            return None
        return CopyPipeline(self.connection)

    def _settle(self, pipeline: CopyPipeline, batch: list[_PreparedRow]) -> None:
        """Wait for ``batch``'s COPY to end; copy what is missing when it was refused."""
        try:
            pipeline.wait()
        except IntegrityError:
            self._refused(batch)
        notify_changed(Interaction, self.interaction_id)

    def _refused(self, batch: list[_PreparedRow]) -> None:
        """``batch``'s COPY was refused by the unique constraint: a concurrent fetch stored
        some of its sequences first. Copy the others, and check every later batch."""
        self.checking = True
        self._copy_missing(batch)

    def _highest_stored(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(self.highest_sql, [self.interaction_id])
            (highest,) = cursor.fetchone()
        return -1 if highest is None else int(highest)

    def _prepare(self, event: SessionEvent) -> _PreparedRow:
        """``event`` with its ``COPY`` row, encoded as it is read (while the server stores the
        batch before); left to encode if needed when its sequence was stored before this
        stream began (a re-fetch, whose rows are mostly skipped)."""
        sequence = event.sequence
        return (sequence, event if sequence <= self.stored_before else self._encode(event))

    def _encoded(self, row: bytes | SessionEvent) -> bytes:
        return self._encode(row) if isinstance(row, SessionEvent) else row

    def _encode(self, event: SessionEvent) -> bytes:
        """``event`` as a ``COPY`` row without its last field, ``created_at`` (which
        :meth:`_copy` adds).

        ``data`` is the text as it came, or ``json.dumps`` of it as Django's ``JSONField``
        does; the server parses it into ``jsonb``. NUL characters are replaced (see
        :mod:`.storable`).
        """
        encode = copy_binary
        text = _json_text(event, json.dumps)
        row = b"".join(
            (
                self.row_start,
                encode.int4(event.sequence),
                encode.text(storable_text((event.name or "")[:255])),
                encode.text(storable_text((event.id or "")[:255])),
                encode.jsonb(None if text is None else storable_json(text)),
                encode.timestamptz(parse_timestamp(event.timestamp)),
            )
        )
        return row

    def _copy_missing(self, batch: list[_PreparedRow]) -> None:
        """Copy those rows of ``batch`` whose sequence is not stored yet (the first of
        duplicates)."""
        unique: dict[int, bytes | SessionEvent] = {}
        for sequence, row in batch:
            unique.setdefault(sequence, row)
        for attempt in range(_ATTEMPTS):
            try:
                with self._scope() as cursor:
                    # A range, not "= ANY(array)": the planner picks the unique index for it
                    # even when the table's statistics are stale (just after a big insert).
                    bounds = [min(unique), max(unique)]
                    cursor.execute(self.stored_sql, [self.interaction_id, *bounds])
                    stored = {sequence for (sequence,) in cursor.fetchall()}
                    self._copy(
                        cursor,
                        [
                            (sequence, row)
                            for sequence, row in unique.items()
                            if sequence not in stored
                        ],
                    )
                return
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise

    @contextmanager
    def _scope(self) -> Iterator[Any]:
        """A cursor, in a savepoint inside the caller's transaction (so that a refused copy
        leaves it usable); outside one, each statement commits on its own (a transaction
        around it would only add round trips)."""
        if self.connection.in_atomic_block:
            with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                yield cursor
        else:
            with self.connection.cursor() as cursor:
                yield cursor

    def _copy(self, cursor: Any, rows: list[_PreparedRow]) -> None:
        """Send ``rows`` in one ``COPY``, in one call, and wait for it to end."""
        if not rows:
            return
        # copy() is the psycopg cursor's, outside Django's wrapper: raise its errors as Django's.
        with self.connection.wrap_database_errors, cursor.cursor.copy(self.copy_sql) as copy:
            copy.write(self._payload(rows))

    def _payload(self, rows: list[_PreparedRow]) -> bytes:
        """The ``COPY`` data of ``rows``, each given ``created_at`` (now) as its last field."""
        now = timezone.now()
        if timezone.is_naive(now):  # USE_TZ = False: the ORM stores local time
            now = timezone.make_aware(now, self.connection.timezone)
        created_at = copy_binary.timestamptz(now)
        return copy_binary.payload(
            [created_at.join(self._encoded(row) for _, row in rows), created_at]
        )


#: An event's sequence, and its ``COPY`` row (or the event, when not encoded yet).
_PreparedRow = tuple[int, "bytes | SessionEvent"]


def _rising_above(batch: list[_PreparedRow], highest: int) -> bool:
    """Whether the sequences of ``batch`` rise strictly, from above ``highest``."""
    previous = highest
    for sequence, _ in batch:
        if sequence <= previous:
            return False
        previous = sequence
    return True


# --- any other database --------------------------------------------------------------------


def _orm_row(interaction: Interaction, event: SessionEvent, nul: bool) -> InteractionEvent:
    """The instance ``bulk_create`` stores; with NUL characters replaced when ``nul``."""
    values = {
        "name": (event.name or "")[:255],
        "event_id": (event.id or "")[:255],
        "data": event.data,
    }
    if nul:
        values = nul_replaced(InteractionEvent, values)
    return InteractionEvent(
        interaction=interaction,
        sequence=event.sequence,
        timestamp=parse_timestamp(event.timestamp),
        **values,
    )


def _store_with_orm(
    interaction: Interaction, events: Iterable[SessionEvent], batch_size: int
) -> int:
    nul = refuses_nul(connections[router.db_for_write(InteractionEvent)])

    def instance(event: SessionEvent) -> InteractionEvent:
        return _orm_row(interaction, event, nul)

    count = 0
    for rows, _ in read_ahead_batches(events, batch_size, instance):
        InteractionEvent.objects.bulk_create(rows, ignore_conflicts=True)
        notify_changed(Interaction, interaction.pk)
        count += len(rows)
    return count
