"""Admin search by exact ids and codes, one indexed lookup per column.

A ``LIKE '%term%'`` over several columns (Django's default search) reads every row, and a search
through a relation adds ``DISTINCT``. Operators search by things they copied — an interaction
id, a session id, an error code — so each column is matched exactly, with its own index, and the
list is then narrowed to the primary keys found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from django.db.models import Model, QuerySet

__all__ = ["SEARCH_LIMIT", "ExactSearchMixin", "as_uuid", "exact_search"]

#: Rows one column may contribute to a search's result.
SEARCH_LIMIT = 1000


def as_uuid(term: str) -> UUID | None:
    """``term`` as a UUID, or ``None``."""
    try:
        return UUID(term)
    except ValueError:
        return None


def exact_search(
    queryset: QuerySet[Any],
    term: str,
    *,
    fields: Iterable[str] = (),
    uuid_fields: Iterable[str] = (),
    related: Iterable[Callable[[str], QuerySet[Any]]] = (),
) -> QuerySet[Any]:
    """``queryset`` narrowed to rows where one of ``fields`` equals ``term``.

    ``uuid_fields`` are tried only when ``term`` is a UUID; each of ``related`` maps the term to
    a ``values_list`` of primary keys found through another table (e.g. a callback id → its
    interaction).
    """
    term = term.strip()
    if not term:
        return queryset
    model: type[Model] = queryset.model
    found: set[Any] = set()
    lookups: list[tuple[str, Any]] = [(field, term) for field in fields]
    uuid = as_uuid(term)
    if uuid is not None:
        lookups += [(field, uuid) for field in uuid_fields]
    for field, value in lookups:
        found.update(
            model._default_manager.filter(**{field: value})
            .order_by()
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
    for lookup in related:
        found.update(pk for pk in lookup(term)[:SEARCH_LIMIT] if pk is not None)
    return queryset.filter(pk__in=found)


class ExactSearchMixin:
    """A ModelAdmin searching with :func:`exact_search` over the columns it names.

    Set ``exact_search_fields``, ``exact_search_uuid_fields`` and ``exact_search_related``; the
    first of ``exact_search_fields`` also becomes ``search_fields`` (which shows the box).
    """

    exact_search_fields: tuple[str, ...] = ()
    exact_search_uuid_fields: tuple[str, ...] = ()
    exact_search_related: tuple[Callable[[str], QuerySet[Any]], ...] = ()

    def get_search_fields(self, request: Any) -> tuple[str, ...]:
        """Just enough for Django to show the search box."""
        return self.exact_search_fields[:1]

    def get_search_results(
        self, request: Any, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """Rows matching the term exactly in one of the named columns; never duplicates."""
        results = exact_search(
            queryset,
            search_term,
            fields=self.exact_search_fields,
            uuid_fields=self.exact_search_uuid_fields,
            related=self.exact_search_related,
        )
        return results, False
