"""``django_scout.client._json_depth``: one nesting limit for JSON from Scout, on every Python.

``json.loads`` gives up at a depth that depends on the Python version (just under 1,000 levels on
3.10/3.11, tens of thousands on 3.13); these tests pin the product's own limit instead, and check
that the decoders built on it refuse too-deep input the way they refuse input that is not JSON.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from django_scout.client import ScoutProtocolError, WorkflowRunCompleted, parse_workflow_event
from django_scout.client._decoders import WorkflowStreamDecoder, parse_app_execution
from django_scout.client._json_depth import (
    MAX_JSON_DEPTH,
    JSONNestingError,
    check_json_depth,
    is_too_deep,
    load_json,
)
from django_scout.client._responses import decode_body
from django_scout.client.streams import SSEMessage
from django_scout.client.workflow_events import WorkflowStreamError


def deep(depth: int) -> str:
    """An object ``depth`` levels deep: ``{"a": [{"a": [...]}]}``, innermost ``[]`` or ``{}``."""
    text = ""
    for level in range(depth):
        text = f'{{"a": {text or "{}"}}}' if level % 2 else f"[{text}]"
    return text


def test_deep_builds_exactly_that_depth() -> None:
    assert deep(1) == "[]"
    assert deep(2) == '{"a": []}'
    assert json.loads(deep(3)) == [{"a": []}]


@pytest.mark.parametrize("kind", [str, bytes, bytearray])
def test_limit_boundary(kind: type[Any]) -> None:
    def as_kind(text: str) -> str | bytes | bytearray:
        return text if kind is str else kind(text.encode())

    assert not is_too_deep(as_kind(deep(MAX_JSON_DEPTH)))
    assert is_too_deep(as_kind(deep(MAX_JSON_DEPTH + 1)))
    # many brackets but shallow: the full scan (not only the count of brackets) runs
    wide = "[" + ", ".join([deep(MAX_JSON_DEPTH - 1)] * 3) + "]"
    assert not is_too_deep(as_kind(wide))
    assert is_too_deep(as_kind(wide.replace(deep(MAX_JSON_DEPTH - 1), deep(MAX_JSON_DEPTH), 1)))


@pytest.mark.parametrize(
    "text",
    [
        '["' + "[" * 1000 + '"]',  # brackets inside a string
        '["\\"' + "{" * 1000 + '"]',  # after an escaped quote the string goes on
        '["\\\\", ' + deep(MAX_JSON_DEPTH - 1) + "]",  # an escaped backslash ends before the quote
        '["\\u005b' + "[" * 1000 + '"]',
        '"' + "[" * 1000,  # an unterminated string runs to the end
        '["' + "[" * 1000 + "\\",  # ... even when the text ends with a backslash
        "[" * MAX_JSON_DEPTH + '"' + "[" * 1000 + '\\"' + "[" * 1000,
    ],
)
def test_brackets_inside_strings_are_not_counted(text: str) -> None:
    assert not is_too_deep(text)
    assert not is_too_deep(text.encode())


def test_closing_brackets_inside_strings_do_not_hide_depth() -> None:
    text = '["' + "]" * 1000 + '\\\\", ' + deep(MAX_JSON_DEPTH) + "]"
    assert is_too_deep(text)
    assert is_too_deep(text.encode())


def reference_depth(text: str) -> int:
    """The deepest nesting in ``text``, found one character at a time."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped = char == "\\"
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def test_matches_a_character_by_character_scan() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice('[[[{{]]}}"",aé') for _ in range(rng.randint(0, 300)))
        # escapes (a backslash outside a string is not JSON, where any answer will do)
        parts = text.split('"')
        parts[1::2] = [part.replace("a", "\\\\").replace("é", '\\"') for part in parts[1::2]]
        text = '"'.join(parts)
        depth = reference_depth(text)
        for limit in (0, 1, 3, 10, 50):
            assert is_too_deep(text, limit=limit) is (depth > limit), (text, limit)
            assert is_too_deep(text.encode(), limit=limit) is (depth > limit), (text, limit)


def test_start_end_and_limit() -> None:
    text = "xx" + deep(10) + "yy"
    assert not is_too_deep(text, 2, len(text) - 2, limit=10)
    assert is_too_deep(text, 2, len(text) - 2, limit=9)
    assert not is_too_deep(text, 2 + 1, len(text) - 2 - 1, limit=9)
    assert is_too_deep(text.encode(), 2, limit=9)
    assert not is_too_deep('["\ud800' + "[" * 300 + '"]')  # text that is not valid Unicode


def test_check_and_load() -> None:
    check_json_depth(deep(MAX_JSON_DEPTH))
    assert load_json(deep(3)) == [{"a": []}]
    assert load_json(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(JSONNestingError, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
        check_json_depth(deep(MAX_JSON_DEPTH + 1))
    with pytest.raises(JSONNestingError) as caught:
        check_json_depth("[[[]]]", limit=2)
    assert caught.value.limit == 2
    assert isinstance(caught.value, ValueError)
    with pytest.raises(json.JSONDecodeError):
        load_json("[1,")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_too_deep_is_refused_before_decoding(depth: int) -> None:
    """Far past every Python's own recursion limit, still the same error (never RecursionError)."""
    with pytest.raises(JSONNestingError):
        load_json("[" * depth + "]" * depth)


def test_the_limit_holds_from_deep_in_a_stack() -> None:
    """At the limit ``json.loads`` must still work from a busy stack on Python 3.10 and 3.11."""

    def recurse(frames: int) -> Any:
        return recurse(frames - 1) if frames else load_json(deep(MAX_JSON_DEPTH))

    assert recurse(400) == json.loads(deep(MAX_JSON_DEPTH))


def test_the_limit_is_within_what_pydantic_handles() -> None:
    """The callback view parses with pydantic, and workflow events are dumped by it."""
    text = deep(MAX_JSON_DEPTH)
    assert TypeAdapter(Any).validate_json(text) == json.loads(text)
    event = {"name": "workflow_run_completed", "data": {"output": json.loads(deep(MAX_JSON_DEPTH))}}
    parsed = parse_workflow_event(event)
    assert isinstance(parsed, WorkflowRunCompleted)
    assert parsed.raw == event


def test_response_bodies_nested_too_deeply_are_not_json() -> None:
    too_deep = deep(MAX_JSON_DEPTH + 1)
    assert decode_body(too_deep) == too_deep
    assert decode_body(deep(MAX_JSON_DEPTH)) == json.loads(deep(MAX_JSON_DEPTH))
    with pytest.raises(ScoutProtocolError, match="the body is not JSON"):
        parse_app_execution(httpx.Response(200, text='{"id": "x", "outputs": ' + too_deep + "}"))
    error = WorkflowStreamDecoder().message(SSEMessage(event="error", data=too_deep), 0)
    assert error == WorkflowStreamError(message=too_deep, data=None)
