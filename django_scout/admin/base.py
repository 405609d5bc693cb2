"""What every django-scout admin page shares: read-only rows, lists that stay fast at millions
of rows, and filters that never scan a table to draw themselves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

__all__ = [
    "COUNT_CAP",
    "CappedCountPaginator",
    "ChoicesFilter",
    "InputFilter",
    "ReadOnlyAdminMixin",
    "ScaledListMixin",
    "choices_filter",
    "input_filter",
]

#: Changelists count matching rows up to this many and show "10000" beyond it.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts at most :data:`COUNT_CAP` + 1 rows (``COUNT(*)`` over a ``LIMIT`` subquery).

    Counting a million rows on every page view is what makes big admin lists slow; nobody pages
    past the first hundred pages anyway.
    """

    @cached_property
    def count(self) -> int:
        """The number of rows, or :data:`COUNT_CAP` when there are more."""
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            return min(object_list[: COUNT_CAP + 1].count(), COUNT_CAP)
        return len(object_list)


class ReadOnlyAdminMixin:
    """No add, change or delete from the admin: the rows are Scout's record."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are created by django-scout only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows change only through django-scout's services."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting is ``scout_prune``'s job."""
        return False


class ScaledListMixin:
    """Changelist settings for tables of millions of rows: a capped count, no full count."""

    show_full_result_count = False
    paginator: ClassVar[type] = CappedCountPaginator
    list_per_page = 50

    class Media:
        css = {"all": ("django_scout/admin.css",)}


class InputFilter(admin.SimpleListFilter):
    """A list filter with a text box, matching one indexed column exactly.

    Unlike Django's field filters it lists no values, so drawing it never reads the table.
    Subclasses set ``title``, ``parameter_name`` and ``field``.
    """

    template = "admin/django_scout/input_filter.html"
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """One dummy lookup, so that Django shows the filter at all."""
        return [("", "")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Rows whose ``field`` equals the typed value."""
        value = (self.value() or "").strip()
        return queryset.filter(**{self.field: value}) if value else queryset

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        """One entry for the template: the current value and the other filters' parameters."""
        others: list[tuple[str, str]] = []
        for name, value in changelist.params.items():
            if name == self.parameter_name or self.parameter_name is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                others.append((name, item))
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "others": others,
            "clear_url": changelist.get_query_string(remove=[self.parameter_name or ""]),
        }


class ChoicesFilter(admin.SimpleListFilter):
    """A list filter over fixed choices (for columns without ``choices``): no ``DISTINCT``."""

    field = ""
    options: tuple[tuple[str, str], ...] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        """The fixed choices."""
        return self.options

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Rows with the chosen value."""
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


def input_filter(title: str, field: str, parameter: str | None = None) -> type[InputFilter]:
    """An :class:`InputFilter` subclass for ``field``."""
    return type(
        f"{field.title().replace('_', '')}InputFilter",
        (InputFilter,),
        {"title": title, "parameter_name": parameter or field, "field": field},
    )


def choices_filter(
    title: str, field: str, options: tuple[tuple[str, str], ...]
) -> type[ChoicesFilter]:
    """A :class:`ChoicesFilter` subclass for ``field`` with ``options``."""
    return type(
        f"{field.title().replace('_', '')}ChoicesFilter",
        (ChoicesFilter,),
        {"title": title, "parameter_name": field, "field": field, "options": options},
    )
