"""docs/settings.md lists every key of ``settings.SCOUT`` with its type and true default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from django_scout.conf import ScoutSettings

PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
ROW = re.compile(r"^\| `(?P<key>[A-Z_]+)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \|", re.M)


def documented() -> dict[str, tuple[str, str]]:
    section = PAGE.read_text().split("## Keys", 1)[1].split("\n## ", 1)[0]
    return {m["key"]: (m["type"], m["default"]) for m in ROW.finditer(section)}


def test_every_key_is_documented_and_nothing_else() -> None:
    assert set(documented()) == set(ScoutSettings.model_fields)


@pytest.mark.parametrize("key", sorted(ScoutSettings.model_fields))
def test_the_documented_default_is_the_real_one(key: str) -> None:
    default = ScoutSettings.model_fields[key].default
    type_cell, default_cell = documented()[key]
    assert type_cell.strip()
    if default is None or default == ():
        expected = "`None`" if default is None else "`()`"
    elif isinstance(default, str):
        expected = f'`"{default}"`'
    else:
        expected = f"`{default}`"
    assert default_cell.strip().startswith(expected), (key, default_cell)
