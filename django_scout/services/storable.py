"""Text and JSON that PostgreSQL can store: NUL characters replaced.

PostgreSQL's ``text``/``varchar`` cannot hold the NUL character, and its ``jsonb`` refuses the
``\\u0000`` escape, so an event carrying one would make the whole batch, and every retry of the
fetch, fail. On PostgreSQL the event stores replace each NUL with U+FFFD (the Unicode
replacement character) instead; everything else in the event is kept. Other databases store NUL
as it came.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = [
    "NUL_REPLACEMENT",
    "nul_replaced",
    "refuses_nul",
    "storable_data",
    "storable_fields",
    "storable_json",
    "storable_text",
]

#: What is stored in place of a NUL character.
NUL_REPLACEMENT = "\ufffd"

# A ``\u0000`` escape: the backslash not itself escaped (an even run of backslashes before it).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def refuses_nul(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``connection``'s database cannot store NUL characters (PostgreSQL)."""
    return connection.vendor == "postgresql"


def storable_text(text: str) -> str:
    """``text`` with each NUL character replaced by :data:`NUL_REPLACEMENT`."""
    return text.replace("\x00", NUL_REPLACEMENT) if "\x00" in text else text


def storable_json(json_text: str) -> str:
    """JSON text with each ``\\u0000`` escape (and any raw NUL) replaced by the replacement
    character's; it loads as the same value with NUL replaced."""
    if "\\u0000" in json_text:
        json_text = _JSON_NUL.sub(r"\1\\ufffd", json_text)
    return storable_text(json_text)


def storable_data(data: Any) -> Any:
    """A JSON-compatible value with NUL replaced in each of its strings (keys too)."""
    text = json.dumps(data)
    return data if "\\u0000" not in text else json.loads(storable_json(text))


def storable_fields(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (names of ``model``'s fields to values) as the database can store them: on
    PostgreSQL, NUL replaced in text and JSON values (:func:`nul_replaced`); elsewhere
    unchanged."""
    if not refuses_nul(connections[router.db_for_write(model)]):
        return fields
    return nul_replaced(model, fields)


def nul_replaced(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (names of ``model``'s fields to values) with NUL replaced in the values of
    text and JSON fields, whatever the database (a caller that already knows it refuses NUL)."""
    stored = dict(fields)
    for name, value in fields.items():
        field = model._meta.get_field(name)
        if isinstance(field, models.JSONField):
            stored[name] = storable_data(value)
        elif isinstance(value, str) and isinstance(field, (models.CharField, models.TextField)):
            stored[name] = storable_text(value)
    return stored
