"""A ``SELECT`` built once per database and run with new values, converted as the ORM would.

For a read repeated at a high rate with the same shape (the live relay reads a row each time it
changes, for every viewer), building the query through the ORM each time costs several times
the query itself: :class:`CompiledSelect` builds the SQL once per database alias from the
model's meta (quoted names; every value a parameter), prepares each value with its field's
``get_db_prep_value`` and converts each column with the backend's and the field's converters,
the ones the ORM's compiler applies (aware datetimes, decoded JSON).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["CompiledSelect"]

#: The comparisons a ``where`` term may use.
OPERATORS = frozenset({"=", ">", ">=", "<", "<="})

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class _Built:
    """One database's SQL, and each column's expression and converters."""

    sql: str
    where_fields: tuple[models.Field[Any, Any], ...]
    columns: tuple[tuple[Any, tuple[Converter, ...]], ...]


class CompiledSelect:
    """``SELECT <columns> FROM <model> WHERE <field> <op> %s AND … [ORDER BY] [LIMIT]``.

    ``columns`` and the ``where`` terms name fields (a foreign key by its attname, such as
    ``interaction_id``; ``pk`` for the primary key); ``order_by`` is a field name, ``-`` first
    for descending. Call :meth:`rows` with one value per ``where`` term. Reads go to
    ``router.db_for_read(model)``.
    """

    def __init__(
        self,
        model: type[models.Model],
        columns: Sequence[str],
        where: Sequence[tuple[str, str]],
        *,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> None:
        for _, operator in where:
            if operator not in OPERATORS:
                raise ValueError(f"unsupported operator {operator!r}")
        self.model = model
        self.columns = tuple(columns)
        self.where = tuple(where)
        self.order_by = order_by
        self.limit = limit
        self._built: dict[str, _Built] = {}
        self._lock = threading.Lock()

    def rows(self, *values: Any) -> list[tuple[Any, ...]]:
        """The rows matching ``values`` (one per ``where`` term), converted."""
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        built = self._built.get(alias) or self._build(alias, connection)
        params = [
            field.get_db_prep_value(value, connection)
            for field, value in zip(built.where_fields, values, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(built.sql, params)
            fetched = cursor.fetchall()
        return [_converted(row, built.columns, connection) for row in fetched]

    def _build(self, alias: str, connection: BaseDatabaseWrapper) -> _Built:
        meta = self.model._meta
        quote = connection.ops.quote_name
        table = meta.db_table

        def field(name: str) -> models.Field[Any, Any]:
            if name == "pk":
                return meta.pk
            return meta.get_field(name)  # type: ignore[return-value]

        selected = [field(name) for name in self.columns]
        where_fields = tuple(field(name) for name, _ in self.where)
        sql = "SELECT {} FROM {} WHERE {}".format(  # noqa: S608 (names quoted, values parameters)
            ", ".join(quote(f.column) for f in selected),
            quote(table),
            " AND ".join(
                f"{quote(f.column)} {operator} %s"
                for f, (_, operator) in zip(where_fields, self.where, strict=True)
            ),
        )
        if self.order_by:
            name = self.order_by.removeprefix("-")
            direction = "DESC" if self.order_by.startswith("-") else "ASC"
            sql += f" ORDER BY {quote(field(name).column)} {direction}"
        if self.limit is not None:
            sql += " " + connection.ops.limit_offset_sql(0, self.limit)
        columns = []
        for f in selected:
            col = f.get_col(table)
            converters = [
                *connection.ops.get_db_converters(col),
                *col.get_db_converters(connection),
            ]
            columns.append((col, tuple(converters)))
        built = _Built(sql, where_fields, tuple(columns))
        with self._lock:
            self._built[alias] = built
        return built


def _converted(
    row: Sequence[Any],
    columns: tuple[tuple[Any, tuple[Converter, ...]], ...],
    connection: BaseDatabaseWrapper,
) -> tuple[Any, ...]:
    values = list(row)
    for index, (col, converters) in enumerate(columns):
        value = values[index]
        for convert in converters:
            value = convert(value, col, connection)
        values[index] = value
    return tuple(values)
