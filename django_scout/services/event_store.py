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
  it ends: two round trips to the server per batch. The rows are encoded by
  :mod:`.copy_binary` on the read-ahead thread and sent in one call.
* **SQLite**: ``INSERT OR IGNORE`` of plain tuples with ``executemany``.
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

A batch is read from the stream whole before its transaction starts, so no transaction waits on
the network. Where the database is another process (PostgreSQL, other servers), the next batch is
read on a helper thread (:mod:`.read_ahead`) while the current one is written, so that parsing
overlaps the server's work; SQLite writes on the caller's thread while holding the GIL for much
of it, and there the helper cost more CPU than it saved, so it reads inline. No temporary
table or other session state is used, so a connection pooler in transaction mode is fine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..client.streams import SessionEvent
from ..models import Interaction, InteractionEvent
from . import copy_binary
from .common import parse_timestamp
from .live import notify_changed
from .read_ahead import batches, read_ahead_batches
from .storable import refuses_nul, storable_data, storable_json, storable_text

__all__ = ["store_event_stream"]

#: The model fields written, in the order of each row's values.
_FIELDS = ("interaction", "sequence", "name", "event_id", "data", "timestamp", "created_at")
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
    table = _Table.of(connection)
    # Identifiers from the model's meta, quoted; every value is a parameter.
    placeholders = ", ".join(["%s"] * len(_FIELDS))
    sql = f"INSERT OR IGNORE INTO {table.name} ({table.columns}) VALUES ({placeholders})"  # noqa: S608
    interaction_id = _field("interaction").get_db_prep_save(interaction.pk, connection)
    adapt = _sqlite_datetime_adapter(connection)
    dumps = json.dumps
    count = 0
    for batch, _ in batches(events, batch_size):
        now = adapt(timezone.now())
        rows = [
            (
                interaction_id,
                event.sequence,
                (event.name or "")[:255],
                (event.id or "")[:255],
                _json_text(event, dumps),
                adapt(parse_timestamp(event.timestamp)),
                now,
            )
            for event in batch
        ]
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        notify_changed(Interaction, interaction.pk)
        count += len(rows)
    return count


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
        checking = False  # set once a concurrent writer was caught: check every batch then
        count = 0
        for batch, _ in read_ahead_batches(events, self.batch_size, self._prepare):
            count += len(batch)
            if checking or not _rising_above(batch, highest):
                self._copy_missing(batch)
            else:
                try:
                    with self._scope() as cursor:
                        self._copy(cursor, [self._encoded(row) for _, row in batch])
                except IntegrityError:
                    # A concurrent fetch stored some of these sequences first.
                    checking = True
                    self._copy_missing(batch)
            highest = max(highest, *(sequence for sequence, _ in batch))
            notify_changed(Interaction, self.interaction_id)
        return count

    def _highest_stored(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(self.highest_sql, [self.interaction_id])
            (highest,) = cursor.fetchone()
        return -1 if highest is None else int(highest)

    def _prepare(self, event: SessionEvent) -> _PreparedRow:
        """``event`` with its ``COPY`` row, encoded on the read-ahead thread while a batch is
        written; left to encode if needed when its sequence was stored before this stream
        began (a re-fetch, whose rows are mostly skipped)."""
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
                    missing = [
                        self._encoded(row)
                        for sequence, row in unique.items()
                        if sequence not in stored
                    ]
                    if missing:
                        self._copy(cursor, missing)
                return
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise

    @contextmanager
    def _scope(self) -> Iterator[Any]:
        """A cursor, in a savepoint inside the caller's transaction (so that a refused copy
        leaves it usable); outside one, each statement commits on its own.

        A ``COPY`` in a transaction of its own (``BEGIN``, ``COPY``, ``COMMIT``) would cost
        more round trips, and after each the writer's thread waits for the GIL held by the
        read-ahead thread: the fewer, the more the server's work overlaps the reading.
        """
        if self.connection.in_atomic_block:
            with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                yield cursor
        else:
            with self.connection.cursor() as cursor:
                yield cursor

    def _copy(self, cursor: Any, rows: list[bytes]) -> None:
        """Send ``rows`` (each but its ``created_at``, which is now) in one ``COPY``, in one
        call: the server's work on them is waited for without the GIL, so the read-ahead thread
        encodes the next batch meanwhile."""
        if not rows:
            return
        now = timezone.now()
        if timezone.is_naive(now):  # USE_TZ = False: the ORM stores local time
            now = timezone.make_aware(now, self.connection.timezone)
        created_at = copy_binary.timestamptz(now)
        # copy() is the psycopg cursor's, outside Django's wrapper: raise its errors as Django's.
        with self.connection.wrap_database_errors, cursor.cursor.copy(self.copy_sql) as copy:
            # Each row is followed by its last field.
            copy.write(copy_binary.payload([created_at.join(rows), created_at]))


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
    name, event_id, data = (event.name or "")[:255], (event.id or "")[:255], event.data
    if nul:
        name, event_id, data = storable_text(name), storable_text(event_id), storable_data(data)
    return InteractionEvent(
        interaction=interaction,
        sequence=event.sequence,
        name=name,
        event_id=event_id,
        data=data,
        timestamp=parse_timestamp(event.timestamp),
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
