"""Store a callback delivery in one statement: insert it, or count a repeat of it.

On PostgreSQL and SQLite (3.35+) a delivery is stored by a single
``INSERT … ON CONFLICT (callback_event_id) DO UPDATE … RETURNING id, delivery_count``:

- one round trip, and no transaction of its own: in autocommit the statement commits itself;
- exactly one row per ``callback_event_id`` under concurrent duplicates: the unique index
  decides, and a repeat that meets a row still being inserted waits for it and counts;
- it cannot fail on the conflict, so inside an outer transaction (``ATOMIC_REQUESTS``) it needs
  no savepoint and a duplicate never breaks the transaction;
- the repeat sets ``delivery_count`` to ``max(delivery_count, 1) + 1``, at least 2, so a row
  that comes back with ``delivery_count = 1`` is exactly one this statement inserted;
- it returns only the key and the count: a new delivery's other values are the ones just sent,
  so nothing is converted back. A repeat, which is rare, reads its stored row in a second
  query. (Returning the other columns only for a repeat, with a ``CASE`` per column, cost the
  server more to parse and plan on every callback than that read costs on a repeat.)

Other databases have no such statement with ``RETURNING``; :func:`upsert_delivery` returns
``None`` there and the caller stores the delivery through the ORM instead.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, JSONField

from ..models import CallbackDelivery

__all__ = ["new_delivery_values", "supports_upsert", "upsert_delivery"]

#: The SQL of the statement, per (database vendor, table): built once per process.
_SQL: dict[tuple[str, str], str] = {}


def supports_upsert(connection: BaseDatabaseWrapper) -> bool:
    """True when ``connection`` can run the one-statement insert-or-count."""
    features = connection.features
    return bool(
        connection.vendor in ("postgresql", "sqlite")
        and features.can_return_columns_from_insert
        and features.supports_update_conflicts_with_target
    )


@functools.cache
def _insert_fields() -> tuple[Field[Any, Any], ...]:
    """The columns the statement inserts: every concrete field but the key and generated ones."""
    return tuple(
        field
        for field in CallbackDelivery._meta.concrete_fields
        if not field.primary_key and not getattr(field, "generated", False)
    )


@functools.cache
def _insert_positions() -> tuple[int, ...]:
    """Where each of :func:`_insert_fields` is among the model's concrete fields."""
    fields = list(CallbackDelivery._meta.concrete_fields)
    return tuple(fields.index(field) for field in _insert_fields())


@functools.cache
def _parameter_names() -> tuple[str, ...]:
    """The statement's parameter names, one per each of :func:`_insert_fields`."""
    return tuple(f"p{number}" for number in range(len(_insert_fields())))


@functools.cache
def _pk_position() -> int:
    """Where the primary key is among the model's concrete fields."""
    return list(CallbackDelivery._meta.concrete_fields).index(CallbackDelivery._meta.pk)


def _statement(connection: BaseDatabaseWrapper) -> str:
    meta = CallbackDelivery._meta
    key = (connection.vendor, meta.db_table)
    sql = _SQL.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        table = quote(meta.db_table)
        count = f"{table}.{quote(meta.get_field('delivery_count').column)}"
        last = quote(meta.get_field("last_received_at").column)
        larger = "GREATEST" if connection.vendor == "postgresql" else "MAX"
        columns = ", ".join(quote(field.column) for field in _insert_fields())
        placeholders = ", ".join(f"%({name})s" for name in _parameter_names())
        returning = f"{quote(meta.pk.column)}, {count}"
        # Only quoted identifiers from the model go into the text; every value is a parameter,
        # named: Django's SQLite backend then rewrites the placeholders by ``%`` formatting
        # rather than by a regular expression over the whole text, a cost that grows with it.
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT ({quote(meta.get_field('callback_event_id').column)}) DO UPDATE SET "
            f"{quote(meta.get_field('delivery_count').column)} = {larger}({count}, 1) + 1, "
            f"{last} = EXCLUDED.{last} "
            f"RETURNING {returning}"
        )
        _SQL[key] = sql
    return sql


@functools.cache
def _attnames() -> list[str]:
    return [field.attname for field in CallbackDelivery._meta.concrete_fields]


#: Fields whose values go to the database as they are (``str``, ``int`` or ``None``).
_AS_IS = ("CharField", "TextField", "PositiveIntegerField", "IntegerField")


def _adapter(field: Field[Any, Any], connection: BaseDatabaseWrapper) -> Callable[[Any], Any]:
    """A function that turns a Python value of ``field`` into a query parameter.

    What ``field.get_db_prep_save`` does for the values :func:`upsert_delivery` is given, at a
    fraction of its cost on the path every callback takes.
    """
    internal = field.get_internal_type()
    if internal in _AS_IS and not field.is_relation:
        return lambda value: value
    if internal == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, JSONField) and hasattr(connection.ops, "adapt_json_value"):
        encoder = field.encoder
        return lambda value: connection.ops.adapt_json_value(value, encoder)
    return lambda value: field.get_db_prep_save(value, connection)


#: :func:`_adapter` of each of :func:`_insert_fields`, per connection (each thread has its own).
_ADAPTERS: weakref.WeakKeyDictionary[BaseDatabaseWrapper, tuple[Callable[[Any], Any], ...]] = (
    weakref.WeakKeyDictionary()
)


def _adapters(connection: BaseDatabaseWrapper) -> tuple[Callable[[Any], Any], ...]:
    adapters = _ADAPTERS.get(connection)
    if adapters is None:
        adapters = tuple(_adapter(field, connection) for field in _insert_fields())
        _ADAPTERS[connection] = adapters
    return adapters


def new_delivery_values(values: Mapping[str, Any], now: datetime) -> list[Any]:
    """Every concrete field's value of a new delivery, in the model's field order.

    ``values`` maps attribute names to values; a field not in it takes the model's default
    (``now`` for ``auto_now_add``). The primary key is ``None``.
    """
    row = []
    for field in CallbackDelivery._meta.concrete_fields:
        if field.attname in values:
            row.append(values[field.attname])
        elif getattr(field, "auto_now_add", False):
            row.append(now)
        elif field.primary_key:
            row.append(None)
        else:
            row.append(field.get_default())
    return row


def upsert_delivery(
    values: Mapping[str, Any], now: datetime, using: str | None = None
) -> tuple[CallbackDelivery, bool] | None:
    """Insert a new delivery of ``values`` (attribute names to plain Python values), or count a
    repeat of its ``callback_event_id``.

    Fields missing from ``values`` take the model's defaults, ``now`` for ``received_at``.
    Returns ``(stored delivery, created)``: in one round trip, a new instance holding the
    inserted values and its primary key when it was inserted; when it is a repeat, the stored
    row (``last_received_at`` just updated from ``values``), read by a second query, with the
    ``delivery_count`` this repeat made it (a concurrent repeat may have counted since).
    Returns ``None``,
    having done nothing, when the database cannot run the statement (see
    :func:`supports_upsert`); the caller then stores the delivery through the ORM.

    A database error inside an outer transaction marks that transaction for rollback, as
    leaving an ``atomic`` block with the error would: on PostgreSQL it cannot continue anyway.
    """
    using = using or router.db_for_write(CallbackDelivery)
    connection = connections[using]
    if not supports_upsert(connection):
        return None
    row = new_delivery_values(values, now)
    params = {
        name: adapt(row[position])
        for name, adapt, position in zip(
            _parameter_names(), _adapters(connection), _insert_positions(), strict=True
        )
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute(_statement(connection), params)
            rows = cursor.fetchall()  # all of them: SQLite ends the statement only then
    except DatabaseError:
        if connection.in_atomic_block:
            transaction.set_rollback(True, using=using)
        raise
    ((pk, count),) = rows
    row[_pk_position()] = pk
    if count == 1:
        return CallbackDelivery.from_db(using, _attnames(), row), True
    stored = CallbackDelivery.objects.using(using).filter(pk=pk).first()
    if stored is None:  # pruned in between: what this delivery knows of it
        stored = CallbackDelivery.from_db(using, _attnames(), row)
    # The count this delivery made, not a concurrent repeat's since.
    stored.delivery_count = count
    return stored, False
