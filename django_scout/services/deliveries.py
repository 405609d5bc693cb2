"""Store a callback delivery in one statement: insert it, or count a repeat of it.

On PostgreSQL and SQLite (3.35+) a delivery is stored by a single
``INSERT … ON CONFLICT (callback_event_id) DO UPDATE … RETURNING …``:

- one round trip, and no transaction of its own: in autocommit the statement commits itself;
- exactly one row per ``callback_event_id`` under concurrent duplicates: the unique index
  decides, and a repeat that meets a row still being inserted waits for it and counts;
- it cannot fail on the conflict, so inside an outer transaction (``ATOMIC_REQUESTS``) it needs
  no savepoint and a duplicate never breaks the transaction;
- the repeat sets ``delivery_count`` to ``max(delivery_count, 1) + 1``, at least 2, so a row
  that comes back with ``delivery_count = 1`` is exactly one this statement inserted.

Other databases have no such statement with ``RETURNING``; :func:`upsert_delivery` returns
``None`` there and the caller stores the delivery through the ORM instead.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from ..models import CallbackDelivery

__all__ = ["supports_upsert", "upsert_delivery"]

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
def _positions() -> tuple[int, int]:
    """Where the primary key and ``delivery_count`` are in a returned row."""
    fields = list(CallbackDelivery._meta.concrete_fields)
    return (
        fields.index(CallbackDelivery._meta.pk),
        fields.index(CallbackDelivery._meta.get_field("delivery_count")),
    )


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
        placeholders = ", ".join(["%s"] * len(_insert_fields()))
        returning = ", ".join(quote(field.column) for field in meta.concrete_fields)
        # Only quoted identifiers from the model go into the text; every value is a parameter.
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT ({quote(meta.get_field('callback_event_id').column)}) DO UPDATE SET "
            f"{quote(meta.get_field('delivery_count').column)} = {larger}({count}, 1) + 1, "
            f"{last} = EXCLUDED.{last} "
            f"RETURNING {returning}"
        )
        _SQL[key] = sql
    return sql


def _from_row(connection: BaseDatabaseWrapper, using: str, row: Any) -> CallbackDelivery:
    """The model instance of a returned row, converted as the ORM converts a fetched one."""
    meta = CallbackDelivery._meta
    values = []
    for field, value in zip(meta.concrete_fields, row, strict=True):
        column = field.get_col(meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        for convert in converters:
            value = convert(value, column, connection)
        values.append(value)
    return CallbackDelivery.from_db(
        using, [field.attname for field in meta.concrete_fields], values
    )


def upsert_delivery(delivery: CallbackDelivery) -> tuple[CallbackDelivery, bool] | None:
    """Insert the unsaved ``delivery``, or count a repeat of its ``callback_event_id``.

    Returns ``(stored delivery, created)`` in one round trip: the instance passed in, now with
    its primary key, when it was inserted; the stored row (its count and ``last_received_at``
    just updated from ``delivery``) when it is a repeat. Returns ``None``, having done
    nothing, when the database cannot run the statement (see :func:`supports_upsert`) or a
    field's value is an expression (a database default) that only the ORM can insert.

    A database error inside an outer transaction marks that transaction for rollback, as
    leaving an ``atomic`` block with the error would: on PostgreSQL it cannot continue anyway.
    """
    using = router.db_for_write(CallbackDelivery, instance=delivery)
    connection = connections[using]
    if not supports_upsert(connection):
        return None
    values = [field.pre_save(delivery, True) for field in _insert_fields()]
    if any(hasattr(value, "resolve_expression") for value in values):
        return None  # a database default or an expression: the ORM knows how to insert it
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(_insert_fields(), values, strict=True)
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_statement(connection), params)
            rows = cursor.fetchall()  # all of them: SQLite ends the statement only then
    except DatabaseError:
        if connection.in_atomic_block:
            transaction.set_rollback(True, using=using)
        raise
    (row,) = rows
    pk_index, count_index = _positions()
    if row[count_index] == 1:
        delivery.pk = row[pk_index]
        delivery._state.adding = False
        delivery._state.db = using
        return delivery, True
    return _from_row(connection, using, row), False
