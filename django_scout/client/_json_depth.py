"""How deeply the JSON that django-scout accepts from the network may nest: one rule, one place.

``json.loads`` recurses once per level of arrays and objects, so where it gives up depends on the
Python version and on how deep the caller's stack already is: Python 3.10 and 3.11 raise
``RecursionError`` just under 1,000 levels (fewer when called from deep in a stack), 3.12 at a few
thousand and 3.13 only at tens of thousands. The product does not inherit that: every JSON value
decoded from Scout's answers and streams is first checked against :data:`MAX_JSON_DEPTH` by a
linear, non-recursive scan, so that a document is accepted or refused the same way on every Python.

The limit is also below what the rest of the product can handle whatever the Python version:
pydantic-core refuses JSON nested more than 201 levels (the callback view's
``model_validate_json``) and cannot serialize values nested much more than 255 levels
(``model_dump(mode="json")`` of workflow events and callback payloads).

This module is part of the wire layer: it must not import Django.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from itertools import accumulate, repeat
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "JSONNestingError", "check_json_depth", "is_too_deep", "load_json"]

#: Deepest nesting of arrays and objects accepted in one JSON value (``[[]]`` is 2 levels deep).
MAX_JSON_DEPTH: Final = 200

_BRACKETS_AND_QUOTES: Final = b'"[]{}'
_ALL_BUT_BRACKETS_AND_QUOTES: Final = bytes(set(range(256)).difference(_BRACKETS_AND_QUOTES))
#: ``bytes.translate`` table: 1 for a quote, 0 for anything else.
_QUOTE_FLAGS: Final = bytes(byte == ord('"') for byte in range(256))
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1, ord('"'): 0}


class JSONNestingError(ValueError):
    """A JSON document nests arrays and objects more than :data:`MAX_JSON_DEPTH` levels deep.

    A :class:`ValueError`, like :class:`json.JSONDecodeError`, so that code refusing input that
    is not JSON refuses this too.
    """

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(f"nested more than {limit} levels deep")
        self.limit = limit


def is_too_deep(
    text: str | bytes | bytearray,
    start: int = 0,
    end: int | None = None,
    *,
    limit: int = MAX_JSON_DEPTH,
) -> bool:
    """Whether the JSON in ``text[start:end]`` nests arrays and objects more than ``limit`` deep.

    Counts ``[`` and ``{`` against ``]`` and ``}`` outside strings (escaped quotes do not end a
    string), without recursion and in linear time; text that is not JSON gives an answer too, and
    it is never less than the depth ``json.loads`` would reach before finding the error. UTF-8
    bytes may be given instead of text.
    """
    if end is None:
        end = len(text)
    data: bytes | bytearray
    if isinstance(text, str):
        if text.count("[", start, end) + text.count("{", start, end) <= limit:
            return False
        data = text[start:end].encode("utf-8", "surrogatepass")
    else:
        if text.count(b"[", start, end) + text.count(b"{", start, end) <= limit:
            return False
        data = text[start:end]
    # Only C-level passes, no loop in Python. UTF-8 never encodes a non-ASCII character with ASCII
    # bytes, so the bytes looked at are the characters looked at.
    if b"\\" in data:
        # Drop escaped backslashes, then escaped quotes; a backslash left escapes a character that
        # is neither, dropped below with it.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _ALL_BUT_BRACKETS_AND_QUOTES)
    # Dropping two adjacent quotes (an empty string, or the end of a string and the start of the
    # next) leaves every bracket inside or outside a string as it was.
    skeleton = skeleton.replace(b'""', b"")
    steps: Iterator[int] = map(_STEP.__getitem__, skeleton)
    if b'"' in skeleton:
        # Some strings hold brackets: a bracket counts only after an even number of quotes.
        odd_quotes = accumulate(skeleton.translate(_QUOTE_FLAGS), operator.xor)
        steps = map(operator.mul, steps, map(operator.xor, odd_quotes, repeat(1)))
    return max(accumulate(steps), default=0) > limit


def check_json_depth(text: str | bytes | bytearray, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JSONNestingError` when ``text`` nests more than ``limit`` levels deep."""
    if is_too_deep(text, limit=limit):
        raise JSONNestingError(limit)


def load_json(text: str | bytes | bytearray) -> Any:
    """``json.loads(text)`` for JSON from the network, refusing it when nested too deeply.

    Raises :class:`JSONNestingError` (before decoding) or :class:`json.JSONDecodeError`, both
    :class:`ValueError`.
    """
    check_json_depth(text)
    return json.loads(text)
