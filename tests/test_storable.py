"""NUL characters, which PostgreSQL cannot store, replaced (``services.storable``)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from django_scout.models import InteractionEvent
from django_scout.services.scrubbing import scrub_text
from django_scout.services.storable import (
    NUL_REPLACEMENT,
    nul_replaced,
    storable_data,
    storable_fields,
    storable_json,
    storable_text,
)


def test_text_loses_only_its_nul_characters() -> None:
    assert storable_text("a\x00b\x00") == f"a{NUL_REPLACEMENT}b{NUL_REPLACEMENT}"
    same = "no nul here"
    assert storable_text(same) is same


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",
        {"k\x00": ["\x00", {"deep": "x\x00y"}], "n": 1},
        "\\u0000 is text, not NUL",  # a backslash then "u0000": kept
        "\\\x00",  # a backslash, then NUL
        ["\\\\\x00", "\\\\u0000"],
    ],
)
def test_json_loads_as_the_value_with_nul_replaced(value: object) -> None:
    def replaced(item: object) -> object:
        if isinstance(item, str):
            return item.replace("\x00", NUL_REPLACEMENT)
        if isinstance(item, list):
            return [replaced(element) for element in item]
        if isinstance(item, dict):
            return {replaced(key): replaced(element) for key, element in item.items()}
        return item

    for dumps in (json.dumps, lambda item: json.dumps(item, ensure_ascii=False)):
        text = dumps(value)
        assert json.loads(storable_json(text)) == replaced(value)
        assert "\\u0000" not in storable_json(text).replace("\\\\", "")
    assert storable_data(value) == replaced(value)


def test_values_without_nul_are_kept() -> None:
    plain = {"text": "no nul"}
    assert storable_data(plain) is plain
    value = {"text": "\\u0000 stays"}
    assert storable_data(value) == value
    text = json.dumps(value)
    assert storable_json(text) == text


def test_stored_error_texts_carry_no_nul() -> None:
    """Every stored error text passes through ``scrub_text``, on every database."""
    assert scrub_text("boom\x00!") == f"boom{NUL_REPLACEMENT}!"


def test_fields_lose_nul_in_text_and_json_values_and_only_there() -> None:
    fields = {"name": "a\x00", "event_id": "", "data": {"k\x00": ["v\x00"]}, "sequence": 3}
    replaced = {
        "name": f"a{NUL_REPLACEMENT}",
        "event_id": "",
        "data": {f"k{NUL_REPLACEMENT}": [f"v{NUL_REPLACEMENT}"]},
        "sequence": 3,
    }
    assert nul_replaced(InteractionEvent, fields) == replaced
    assert fields["name"] == "a\x00"  # the caller's dict is left as it was
    # storable_fields replaces only where the database cannot store NUL.
    expected = replaced if connection.vendor == "postgresql" else fields
    assert storable_fields(InteractionEvent, fields) == expected
