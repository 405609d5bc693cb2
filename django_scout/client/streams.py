"""Constant-memory parsers for the streamed bodies Scout sends.

Three wire formats appear (see ``SCOUT_API.md`` §7 and §12 U1/U3/U13):

* Server-Sent Events (agent, workflow and app streams, and perhaps an ``events_url``):
  :func:`iter_sse` / :func:`aiter_sse` yield one :class:`SSEMessage` per event as on the wire.
* An agent session's ``events_url``, whose format Scout does not document:
  :func:`iter_session_events` / :func:`aiter_session_events` pick SSE, NDJSON or JSON from the
  ``Content-Type`` (sniffing the body when that says nothing useful) and yield
  :class:`SessionEvent` objects.

Every parser reads ``response.iter_bytes()`` / ``response.aiter_bytes()`` chunk by chunk and keeps
at most one line, one event or one JSON element in memory, whatever the size of the whole body.
Anything that does not parse, or that nests arrays and objects more than
:data:`~django_scout.client._json_depth.MAX_JSON_DEPTH` levels deep (each event, line or element
counted on its own), raises :class:`~django_scout.client.errors.ScoutStreamError`.

The parsers are push parsers (bytes in, items out) shared by the sync and async entry points, so
both behave identically. This module is part of the wire layer: it must not import Django.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from ._json_depth import MAX_JSON_DEPTH, JSONNestingError, is_too_deep, load_json
from .errors import ScoutStreamError

__all__ = [
    "DONE_SENTINELS",
    "SSEMessage",
    "SessionEvent",
    "aiter_session_events",
    "aiter_sse",
    "is_done",
    "iter_session_events",
    "iter_sse",
    "parse_json_data",
]

#: ``data`` values that end a stream (Scout's legacy Apps API documents both spellings, D15).
DONE_SENTINELS: frozenset[str] = frozenset({"[DONE]", "DONE"})

#: Largest single SSE line / event data, NDJSON line or JSON element accepted, in bytes.
_MAX_ELEMENT_BYTES = 16 * 1024 * 1024
#: Characters of offending input quoted in error messages.
_EXCERPT_CHARS = 80
#: Keys of a JSON object that may hold the list of events, tried in document order.
_WRAPPER_KEYS: Final = frozenset({"events", "data", "items", "results"})
_WRAPPER_KEYS_TEXT: Final = "'events', 'data', 'items', 'results'"
#: How many keys of a wrapper object an error message lists.
_MAX_KEYS_REPORTED = 20

_NDJSON_TYPES: Final = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/x-jsonlines",
        "application/json-lines",
        "application/jsonlines",
    }
)
_SSE_PREFIXES: Final = (b"data:", b"event:", b"id:", b"retry:", b":")
_SNIFF_BYTES: Final = max(len(prefix) for prefix in _SSE_PREFIXES)

_NAME_KEYS: Final = ("name", "event", "type")
_TIMESTAMP_KEYS: Final = ("timestamp", "created_at", "time")


@dataclass(frozen=True)
class SSEMessage:
    """One Server-Sent Event as it appeared on the wire.

    ``event`` is ``"message"`` when the stream gave no ``event:`` field; ``data`` is the event's
    ``data:`` lines joined with ``"\\n"``; ``id`` and ``retry`` are the event's own ``id:`` and
    ``retry:`` fields (``None`` when the event had none; an ``id`` is not inherited from earlier
    events).
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


@dataclass(frozen=True)
class SessionEvent:
    """One event of an agent session's ``events_url`` stream.

    ``sequence`` is the event's 0-based position among the events yielded (keep-alives are not
    counted). ``name`` is the SSE event name when it is not the default ``"message"``, otherwise the
    event object's ``"name"``, ``"event"`` or ``"type"`` string, otherwise ``None``. ``data`` is the
    whole parsed JSON value (an object with a ``"data"`` key is kept whole, not unwrapped). ``id``
    is the SSE ``id:`` or the object's ``"id"`` string; ``timestamp`` is the object's
    ``"timestamp"``, ``"created_at"`` or ``"time"`` string. ``json_text`` is the JSON text
    ``data`` was parsed from, when the body gave it on its own (an NDJSON line, an SSE event's
    data), so that storing the event need not serialize ``data`` again; ``None`` otherwise. It
    takes no part in comparisons.
    """

    sequence: int
    name: str | None
    data: Any
    id: str | None
    timestamp: str | None
    json_text: str | None = field(default=None, repr=False, compare=False)


def is_done(message: SSEMessage) -> bool:
    """Whether ``message`` is an end-of-stream sentinel (its data is ``[DONE]`` or ``DONE``)."""
    return message.data.strip() in DONE_SENTINELS


def parse_json_data(message: SSEMessage, *, position: int) -> Any:
    """Return ``json.loads(message.data)``, refusing data nested more than ``MAX_JSON_DEPTH`` deep.

    ``position`` is the event's position in its stream (such as its 0-based index among the
    stream's SSE events); it only appears in the :class:`ScoutStreamError` raised when the data is
    not JSON.
    """
    try:
        return load_json(message.data)
    except (ValueError, RecursionError) as exc:
        raise ScoutStreamError(
            f"SSE event {position} (event: {message.event!r}) has data that is not JSON "
            f"({_reason(exc)}): {_excerpt(message.data)}"
        ) from exc


def iter_sse(response: httpx.Response) -> Iterator[SSEMessage]:
    """Yield the Server-Sent Events of ``response``, reading its body incrementally.

    Follows the SSE parsing rules: ``\\r\\n``, ``\\r`` and ``\\n`` end lines; lines starting with
    ``:`` are comments; one space after a field's colon is dropped; ``data:`` lines are joined with
    ``"\\n"``; a blank line dispatches the event; events without any ``data:`` line are not
    dispatched; a last event not followed by a blank line is still dispatched at the end of the
    body. The ``Content-Type`` is not checked; ``[DONE]`` is yielded like any event (see
    :func:`is_done`).
    """
    parser = _SSEParser()
    chunks = response.iter_bytes()
    try:
        for chunk in chunks:
            yield from parser.feed(chunk)
        yield from parser.finish()
    finally:
        _close(chunks)


async def aiter_sse(response: httpx.Response) -> AsyncIterator[SSEMessage]:
    """Async twin of :func:`iter_sse`, reading ``response.aiter_bytes()``."""
    parser = _SSEParser()
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            for message in parser.feed(chunk):
                yield message
        for message in parser.finish():
            yield message
    finally:
        await _aclose(chunks)


def iter_session_events(
    response: httpx.Response, *, on_done: Callable[[], None] | None = None
) -> Iterator[SessionEvent]:
    """Yield the events of an ``events_url`` response in constant memory.

    The format follows the ``Content-Type``:

    * ``text/event-stream``: SSE; each event's data is one JSON value. Events with empty data
      (keep-alives) are skipped, a ``[DONE]`` / ``DONE`` event ends the stream, and an ``error``
      event whose data is not JSON is yielded with the text as ``data``.
    * ``application/x-ndjson`` (and the JSON-lines aliases): one JSON value per non-blank line.
    * ``application/json`` or ``*/*+json``: a top-level array of events, or an object holding the
      array under ``events``, ``data``, ``items`` or ``results`` (the first such key in the
      document whose value is an array; every other key is skipped unread).
    * anything else: the first non-blank bytes decide (``[`` or ``{`` → JSON, an SSE field → SSE);
      an empty body has no events.

    Raises :class:`ScoutStreamError` for a body that does not parse (with the event, line or byte
    number) and for an unsupported format. Stopping at ``[DONE]`` leaves the rest of the body
    unread (the caller closes the response) and calls ``on_done``, when given, first.
    """
    parser = _SessionEventsParser(response.headers.get("content-type"))
    chunks = response.iter_bytes()
    try:
        for chunk in chunks:
            yield from parser.feed(chunk)
            if parser.done:
                _call(on_done)
                return
        yield from parser.finish()
        if parser.done:
            _call(on_done)
    finally:
        _close(chunks)


async def aiter_session_events(
    response: httpx.Response, *, on_done: Callable[[], None] | None = None
) -> AsyncIterator[SessionEvent]:
    """Async twin of :func:`iter_session_events`, reading ``response.aiter_bytes()``."""
    parser = _SessionEventsParser(response.headers.get("content-type"))
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            for event in parser.feed(chunk):
                yield event
            if parser.done:
                _call(on_done)
                return
        for event in parser.finish():
            yield event
        if parser.done:
            _call(on_done)
    finally:
        await _aclose(chunks)


# --------------------------------------------------------------------------------------------
# helpers


def _call(callback: Callable[[], None] | None) -> None:
    if callback is not None:
        callback()


def _close(iterator: Iterator[bytes]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


async def _aclose(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def _excerpt(text: str | bytes | bytearray) -> str:
    if not isinstance(text, str):
        text = bytes(text[: _EXCERPT_CHARS * 4]).decode("utf-8", errors="replace")
    if len(text) > _EXCERPT_CHARS:
        return repr(text[:_EXCERPT_CHARS]) + "…"
    return repr(text)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (JSONNestingError, RecursionError)):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return str(exc)


def _too_large(what: str) -> ScoutStreamError:
    return ScoutStreamError(f"{what} is larger than {_MAX_ELEMENT_BYTES} bytes")


# --------------------------------------------------------------------------------------------
# Server-Sent Events

_NEWLINE = re.compile(r"\r\n|\r|\n")


class _SSELineSplitter:
    """Split decoded text into lines ending in ``\\r\\n``, ``\\r`` or ``\\n``, across chunks."""

    __slots__ = ("_parts", "_size", "_skip_lf")

    def __init__(self) -> None:
        self._parts: list[str] = []  # the unfinished last line, in pieces
        self._size = 0
        self._skip_lf = False  # the previous text ended in "\r": a leading "\n" belongs to it

    def feed(self, text: str) -> list[str]:
        """Return the lines completed by ``text``; see :meth:`check` for the size limit."""
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        # str.split is several times faster than the regular expression, and splits the same
        # way when there is no "\r".
        lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")
        tail = lines.pop()
        if not lines:
            self._parts.append(tail)
            self._size += len(tail)
            return []
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = "".join(self._parts)
            self._parts = []
        self._size = len(tail)
        if tail:
            self._parts.append(tail)
        self._skip_lf = text[-1] == "\r"
        return lines

    def check(self) -> None:
        """Refuse an unfinished line that has grown too large."""
        if self._size > _MAX_ELEMENT_BYTES:
            raise _too_large("an SSE line")

    def flush(self) -> list[str]:
        if not self._parts:
            return []
        line = "".join(self._parts)
        self._parts = []
        self._size = 0
        return [line]


class _SSEParser:
    """Push parser: body bytes in, :class:`SSEMessage` objects out.

    ``feed`` and ``finish`` return generators, so that the messages before a malformed part of a
    chunk are delivered before the error; each must be consumed before the next call.
    """

    __slots__ = ("_data", "_data_size", "_decoder", "_event", "_id", "_lines", "_retry", "_started")

    def __init__(self) -> None:
        # The SSE spec decodes with replacement of invalid UTF-8 rather than failing.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = _SSELineSplitter()
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> Iterator[SSEMessage]:
        yield from self._process(self._decoder.decode(chunk))
        self._lines.check()

    def finish(self) -> Iterator[SSEMessage]:
        yield from self._process(self._decoder.decode(b"", final=True))
        self._lines.check()
        for line in self._lines.flush():
            self._field(line)
        message = self._dispatch()
        if message is not None:
            yield message

    def _process(self, text: str) -> Iterator[SSEMessage]:
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        for line in self._lines.feed(text):
            if line:
                self._field(line)
            else:
                message = self._dispatch()
                if message is not None:
                    yield message

    def _field(self, line: str) -> None:
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > _MAX_ELEMENT_BYTES:
                raise _too_large("an SSE event's data")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEMessage | None:
        message = None
        if self._data:
            message = SSEMessage(
                event=self._event or "message",
                data="\n".join(self._data),
                id=self._id,
                retry=self._retry,
            )
        self._event = ""
        self._data = []
        self._data_size = 0
        self._id = None
        self._retry = None
        return message


# --------------------------------------------------------------------------------------------
# Value parsers (NDJSON and JSON): body bytes in, parsed JSON values out


#: A parsed JSON value and the text it was parsed from (``None`` when the parser has no text).
_Parsed = tuple[Any, "str | None"]


class _ValueParser:
    """Push parser: body bytes in, parsed JSON values out (generators, as for SSE)."""

    def feed(self, chunk: bytes) -> Iterator[_Parsed]:
        raise NotImplementedError

    def finish(self) -> Iterator[_Parsed]:
        raise NotImplementedError


class _NDJSONParser(_ValueParser):
    """One JSON value per line; blank lines are skipped."""

    __slots__ = ("_line_number", "_partial")

    def __init__(self) -> None:
        self._partial = bytearray()
        self._line_number = 0

    def feed(self, chunk: bytes) -> Iterator[_Parsed]:
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if lines and self._partial:
            self._partial += lines[0]
            lines[0] = bytes(self._partial)
            self._partial.clear()
        for line in lines:
            parsed = self._load(line)
            if parsed is not None:
                yield parsed
        self._partial += tail
        if len(self._partial) > _MAX_ELEMENT_BYTES:
            raise _too_large(f"NDJSON line {self._line_number + 1}")

    def finish(self) -> Iterator[_Parsed]:
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            parsed = self._load(line)
            if parsed is not None:
                yield parsed

    def _load(self, line: bytes) -> _Parsed | None:
        """The line's value and text; ``None`` for a blank line."""
        self._line_number += 1
        if len(line) > _MAX_ELEMENT_BYTES:
            raise _too_large(f"NDJSON line {self._line_number}")
        if self._line_number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.strip()
        if not line:
            return None
        try:
            text = line.decode("utf-8")
            return load_json(text), text
        except (ValueError, RecursionError) as exc:
            raise ScoutStreamError(
                f"NDJSON line {self._line_number} is not JSON ({_reason(exc)}): {_excerpt(line)}"
            ) from exc


# The JSON splitter is written as a generator that works on a shared byte buffer: it yields each
# parsed element, or ``_NEED`` when it has to wait for the next chunk. Positions are only kept in
# the buffer (``pos``, ``mark``) across a wait, because appending a chunk drops consumed bytes.

_NEED: Final = object()
_WS = re.compile(rb"[ \t\r\n]*")
#: Everything up to and including the next bracket, or the quote of a string that does not end in
#: the buffer, skipping whole strings (written as an unrolled loop, so failing is linear).
_TO_BRACKET = re.compile(
    rb'[^"\[\]{}]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"\[\]{}]*)*["\[\]{}]', re.DOTALL
)
#: A whole string, or a bracket, or a quote opening a string that does not end in the buffer.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|["\[\]{}]', re.DOTALL)
_STRING_SPECIAL = re.compile(rb'["\\]')
_SCALAR_END = re.compile(rb'[ \t\r\n,:\[\]{}"]')
_QUOTE: Final = ord('"')
_OPEN_ARRAY: Final = ord("[")
_CLOSE_ARRAY: Final = ord("]")
_OPEN_OBJECT: Final = ord("{")
_CLOSE_OBJECT: Final = ord("}")
_COMMA: Final = ord(",")
_COLON: Final = ord(":")
_SCALAR_START: Final = frozenset(b"-0123456789tfnNI")  # json.loads accepts NaN and Infinity
_WS_TEXT = re.compile(r"[ \t\r\n]*")
_DECODER: Final = json.JSONDecoder()
#: Bytes of the buffer decoded at a time for the fast path of :func:`_events_array`.
_WINDOW_BYTES = 256 * 1024

_Splitter = Generator[object, None, None]


class _ByteBuffer:
    """Bytes received and not yet consumed; ``mark`` (or -1) pins the element being collected."""

    __slots__ = ("consumed", "data", "eof", "mark", "pos")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pos = 0
        self.mark = -1
        self.eof = False
        self.consumed = 0  # bytes dropped from the front: absolute offset of data[0]

    def append(self, chunk: bytes) -> None:
        keep_from = self.mark if self.mark >= 0 else self.pos
        if keep_from:
            del self.data[:keep_from]
            self.consumed += keep_from
            self.pos -= keep_from
            if self.mark >= 0:
                self.mark = 0
        self.data += chunk

    def offset(self, index: int | None = None) -> int:
        return self.consumed + (self.pos if index is None else index)

    def found(self) -> str:
        if self.pos >= len(self.data):
            return "the end of the body"
        return _excerpt(self.data[self.pos : self.pos + 20])


def _skip_ws(data: bytearray, index: int) -> int:
    match = _WS.match(data, index)
    return match.end() if match is not None else index


def _skip_text_ws(text: str, index: int) -> int:
    match = _WS_TEXT.match(text, index)
    return match.end() if match is not None else index


def _wait(buf: _ByteBuffer, inside: str) -> _Splitter:
    """Wait for the next chunk; at the end of the body the document is truncated."""
    if buf.eof:
        raise ScoutStreamError(f"JSON body is truncated: it ends inside {inside}")
    if buf.mark >= 0 and buf.pos - buf.mark > _MAX_ELEMENT_BYTES:
        raise _too_large(f"the JSON element at byte {buf.offset(buf.mark)}")
    yield _NEED


def _peek(buf: _ByteBuffer, inside: str) -> Generator[object, None, int]:
    """Skip whitespace and return the next byte (not consumed)."""
    data = buf.data
    while True:
        buf.pos = _skip_ws(data, buf.pos)
        if buf.pos < len(data):
            return data[buf.pos]
        yield from _wait(buf, inside)


def _scan_string(buf: _ByteBuffer) -> _Splitter:
    """Advance ``buf.pos`` from just after an opening quote to just after the closing one."""
    data = buf.data
    pos = buf.pos
    while True:
        match = _STRING_SPECIAL.search(data, pos)
        if match is None:
            buf.pos = len(data)
        else:
            index = match.start()
            if data[index] == _QUOTE:
                buf.pos = index + 1
                return
            if index + 1 < len(data):  # a backslash and the character it escapes
                pos = index + 2
                continue
            buf.pos = index  # a backslash at the end of the buffer: rescan it with more bytes
        yield from _wait(buf, "a string")
        pos = buf.pos


def _scan_container(buf: _ByteBuffer) -> _Splitter:
    """Advance ``buf.pos`` from an opening bracket to just after its matching closing bracket.

    Only brackets and strings are checked here; the element's full syntax is checked by
    ``json.loads`` once it is complete.
    """
    data = buf.data
    stack = bytearray((data[buf.pos],))
    pos = buf.pos + 1
    while True:
        match = _TO_BRACKET.match(data, pos)
        if match is not None:
            pos = match.end()
            index = pos - 1
        else:  # no bracket before the end of the buffer: move on string by string
            match = _TOKEN.search(data, pos)
            if match is None:
                buf.pos = len(data)
                yield from _wait(buf, "an array or object")
                pos = buf.pos
                continue
            index = match.start()
            pos = match.end()
            if pos - index > 1:
                continue  # a whole string
        char = data[index]
        if char == _QUOTE:
            # A string that does not end in the buffer: step through it, waiting for chunks.
            while True:
                match = _STRING_SPECIAL.search(data, pos)
                if match is not None:
                    index = match.start()
                    if data[index] == _QUOTE:
                        pos = index + 1
                        break
                    if index + 1 < len(data):
                        pos = index + 2
                        continue
                    buf.pos = index
                else:
                    buf.pos = len(data)
                yield from _wait(buf, "a string")
                pos = buf.pos
        elif char in (_OPEN_ARRAY, _OPEN_OBJECT):
            stack.append(char)
            if len(stack) > MAX_JSON_DEPTH:
                raise ScoutStreamError(
                    f"JSON body is nested more than {MAX_JSON_DEPTH} levels deep "
                    f"at byte {buf.offset(index)}"
                )
        else:
            opener = stack.pop()
            if (char == _CLOSE_ARRAY) != (opener == _OPEN_ARRAY):
                raise ScoutStreamError(
                    f"JSON body has a mismatched {chr(char)!r} at byte {buf.offset(index)}"
                )
            if not stack:
                buf.pos = pos
                return


def _scan_value(buf: _ByteBuffer) -> _Splitter:
    """Advance ``buf.pos`` past the JSON value starting there (after whitespace was skipped)."""
    data = buf.data
    first = data[buf.pos]
    if first == _QUOTE:
        buf.pos += 1
        yield from _scan_string(buf)
    elif first in (_OPEN_ARRAY, _OPEN_OBJECT):
        yield from _scan_container(buf)
    elif first in _SCALAR_START:
        while True:
            match = _SCALAR_END.search(data, buf.pos)
            if match is not None:
                buf.pos = match.start()
                return
            buf.pos = len(data)
            if buf.eof:
                return  # the caller reports the missing ']' or '}'
            yield from _wait(buf, "a value")
    else:
        raise ScoutStreamError(
            f"JSON body has no value where one is expected at byte {buf.offset()}: {buf.found()}"
        )


def _load_marked(buf: _ByteBuffer, what: str | int) -> Any:
    """``json.loads`` the bytes between ``buf.mark`` and ``buf.pos``, then drop the mark.

    ``what`` names the value in error messages (an int means "event <what>").
    """
    if isinstance(what, int):
        what = f"event {what}"
    start = buf.mark
    buf.mark = -1
    if buf.pos - start > _MAX_ELEMENT_BYTES:
        raise _too_large(f"the JSON {what} at byte {buf.offset(start)}")
    raw = buf.data[start : buf.pos]
    try:
        return load_json(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ScoutStreamError(
            f"JSON {what} at byte {buf.offset(start)} does not parse ({_reason(exc)}): "
            f"{_excerpt(raw)}"
        ) from exc


def _events_array(buf: _ByteBuffer) -> _Splitter:
    """Yield each element of the events array; ``buf.pos`` is just after its ``[``.

    Two paths: the elements that are whole in the buffer and followed by ``,`` or ``]`` are parsed
    straight from a decoded window of it by ``raw_decode`` (fast, and the common case); an element
    that is cut by the end of the buffer or the window, or that is malformed, is delimited byte by
    byte (waiting for more chunks) and then parsed, or reported, on its own.
    """
    data = buf.data
    char = yield from _peek(buf, "the events array")
    if char == _CLOSE_ARRAY:
        buf.pos += 1
        return
    index = 0
    while True:
        # Fast path.
        start = buf.pos
        text = _decode_window(data, start)
        cursor = resume = 0
        separator = ""
        while cursor < len(text):
            try:
                value, end = _DECODER.raw_decode(text, cursor)
            except (ValueError, RecursionError):
                break
            separator_at = _skip_text_ws(text, end)
            if separator_at >= len(text) or end - cursor > _MAX_ELEMENT_BYTES:
                break
            if is_too_deep(text, cursor, end):
                break  # the slow path refuses it, with its byte offset
            separator = text[separator_at]
            if separator not in ",]":
                break
            yield value
            index += 1
            resume = cursor = _skip_text_ws(text, separator_at + 1)
            if separator == "]":
                break
        if resume:
            buf.pos = start + (resume if text.isascii() else len(text[:resume].encode()))
            if separator == "]":
                return
        # Slow path, for one element.
        yield from _peek(buf, "the events array")
        buf.mark = buf.pos
        yield from _scan_value(buf)
        yield _load_marked(buf, index)
        char = yield from _peek(buf, "the events array")
        buf.pos += 1
        if char == _CLOSE_ARRAY:
            return
        if char != _COMMA:
            buf.pos -= 1
            raise ScoutStreamError(
                f"JSON events array has no ',' or ']' after event {index} "
                f"at byte {buf.offset()}: {buf.found()}"
            )
        yield from _peek(buf, "the events array")
        index += 1


def _decode_window(data: bytearray, start: int) -> str:
    """Decode up to ``_WINDOW_BYTES`` of ``data`` from ``start``, stopping before bad UTF-8."""
    window = data[start : start + _WINDOW_BYTES]
    try:
        return window.decode("utf-8")
    except UnicodeDecodeError as exc:  # a cut or invalid character: the slow path decides
        return window[: exc.start].decode("utf-8")


def _skip_value(buf: _ByteBuffer) -> _Splitter:
    """Skip a value of the wrapper object without keeping it (scalars are still validated)."""
    char = buf.data[buf.pos]
    if char in (_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT):
        yield from _scan_value(buf)
    else:
        buf.mark = buf.pos
        yield from _scan_value(buf)
        _load_marked(buf, "value")


def _wrapped_events(buf: _ByteBuffer) -> _Splitter:
    """Yield the events of a wrapper object; ``buf.pos`` is just after its ``{``."""
    keys: list[str] = []
    found = False
    char = yield from _peek(buf, "the top-level object")
    if char == _CLOSE_OBJECT:
        buf.pos += 1
    else:
        while True:
            if char != _QUOTE:
                raise ScoutStreamError(
                    f"JSON object has no key where one is expected at byte {buf.offset()}: "
                    f"{buf.found()}"
                )
            buf.mark = buf.pos
            buf.pos += 1
            yield from _scan_string(buf)
            key = _load_marked(buf, "key")
            if len(keys) < _MAX_KEYS_REPORTED:
                keys.append(key)
            char = yield from _peek(buf, "the top-level object")
            if char != _COLON:
                raise ScoutStreamError(
                    f"JSON object has no ':' after the key {key!r} at byte {buf.offset()}: "
                    f"{buf.found()}"
                )
            buf.pos += 1
            char = yield from _peek(buf, f"the value of {key!r}")
            if not found and char == _OPEN_ARRAY and key in _WRAPPER_KEYS:
                found = True
                buf.pos += 1
                yield from _events_array(buf)
            else:
                yield from _skip_value(buf)
            char = yield from _peek(buf, "the top-level object")
            buf.pos += 1
            if char == _CLOSE_OBJECT:
                break
            if char != _COMMA:
                buf.pos -= 1
                raise ScoutStreamError(
                    f"JSON object has no ',' or '}}' after the value of {key!r} "
                    f"at byte {buf.offset()}: {buf.found()}"
                )
            char = yield from _peek(buf, "the top-level object")
    if not found:
        shown = ", ".join(repr(key) for key in keys) if keys else "none"
        raise ScoutStreamError(
            f"JSON object holds no list of events under any of the keys {_WRAPPER_KEYS_TEXT}; "
            f"its keys are: {shown}"
        )


def _json_events(buf: _ByteBuffer) -> _Splitter:
    """Yield the events of a whole JSON body: an array, or a wrapper object."""
    bom = codecs.BOM_UTF8
    while len(buf.data) < len(bom) and not buf.eof:
        yield _NEED
    if buf.data.startswith(bom):
        buf.pos = len(bom)
    while True:
        buf.pos = _skip_ws(buf.data, buf.pos)
        if buf.pos < len(buf.data):
            break
        if buf.eof:
            raise ScoutStreamError("JSON body is empty; expected an array or an object of events")
        yield _NEED
    char = buf.data[buf.pos]
    if char == _OPEN_ARRAY:
        buf.pos += 1
        yield from _events_array(buf)
    elif char == _OPEN_OBJECT:
        buf.pos += 1
        yield from _wrapped_events(buf)
    else:
        raise ScoutStreamError(
            f"JSON body is neither an array nor an object of events: it starts with {buf.found()}"
        )
    while True:
        buf.pos = _skip_ws(buf.data, buf.pos)
        if buf.pos < len(buf.data):
            raise ScoutStreamError(
                f"JSON body has data after its end at byte {buf.offset()}: {buf.found()}"
            )
        if buf.eof:
            return
        yield _NEED


class _JSONParser(_ValueParser):
    """A JSON array of events (or an object wrapping one), split element by element."""

    __slots__ = ("_buf", "_splitter")

    def __init__(self) -> None:
        self._buf = _ByteBuffer()
        self._splitter = _json_events(self._buf)

    def feed(self, chunk: bytes) -> Iterator[_Parsed]:
        self._buf.append(chunk)
        return self._run()

    def finish(self) -> Iterator[_Parsed]:
        self._buf.eof = True
        return self._run()

    def _run(self) -> Iterator[_Parsed]:
        for item in self._splitter:
            if item is _NEED:
                return
            yield item, None


# --------------------------------------------------------------------------------------------
# Session events


def _format_of(content_type: str | None) -> str | None:
    """``"sse"``, ``"ndjson"``, ``"json"``, or ``None`` when the body must be sniffed."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "text/event-stream":
        return "sse"
    if media_type in _NDJSON_TYPES:
        return "ndjson"
    if media_type == "application/json" or media_type.endswith("+json"):
        return "json"
    return None


def _first_string(value: dict[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        item = value.get(key)
        if isinstance(item, str):
            return item
    return None


class _SessionEventsParser:
    """Body bytes in, :class:`SessionEvent` objects out; ``done`` once a sentinel was seen."""

    __slots__ = (
        "_bom_checked",
        "_content_type",
        "_sequence",
        "_sniffed",
        "_sse",
        "_sse_count",
        "_values",
        "done",
    )

    def __init__(self, content_type: str | None) -> None:
        self._content_type = content_type
        self._sse: _SSEParser | None = None
        self._values: _ValueParser | None = None
        self._sniffed = bytearray()
        self._bom_checked = False
        self._sequence = 0
        self._sse_count = 0
        self.done = False
        body_format = _format_of(content_type)
        if body_format is not None:
            self._start(body_format)

    def feed(self, chunk: bytes) -> Iterator[SessionEvent]:
        """The events completed by ``chunk`` (a generator: consume it before the next call)."""
        if self.done or not chunk:
            return
        if self._sse is None and self._values is None:
            chunk = self._sniff(chunk, final=False)
            if not chunk:
                return
        if self._sse is not None:
            yield from self._from_sse(self._sse.feed(chunk))
        else:
            assert self._values is not None
            for value, text in self._values.feed(chunk):
                yield self._event(value, text=text)

    def finish(self) -> Iterator[SessionEvent]:
        """The events left at the end of the body."""
        if self.done:
            return
        if self._sse is None and self._values is None:
            rest = self._sniff(b"", final=True)
            if self._sse is None and self._values is None:
                return  # an empty (or blank) body: no events
            yield from self.feed(rest)
            if self.done:
                return
        if self._sse is not None:
            yield from self._from_sse(self._sse.finish())
        else:
            assert self._values is not None
            for value, text in self._values.finish():
                yield self._event(value, text=text)

    def _start(self, body_format: str) -> None:
        if body_format == "sse":
            self._sse = _SSEParser()
        elif body_format == "ndjson":
            self._values = _NDJSONParser()
        else:
            self._values = _JSONParser()

    def _sniff(self, chunk: bytes, *, final: bool) -> bytes:
        """Buffer the start of the body until its format is known; return the bytes to parse."""
        buffered = self._sniffed
        buffered += chunk
        if not self._bom_checked:
            bom = codecs.BOM_UTF8
            if len(buffered) < len(bom) and bom.startswith(buffered) and not final:
                return b""
            if buffered.startswith(bom):
                del buffered[: len(bom)]
            self._bom_checked = True
        start = len(buffered) - len(buffered.lstrip())
        del buffered[:start]  # leading whitespace means nothing in any format: drop it
        if not buffered:
            return b""
        head = bytes(buffered[:_SNIFF_BYTES])
        if head[:1] in (b"[", b"{"):
            self._start("json")
        elif head.startswith(_SSE_PREFIXES):
            self._start("sse")
        elif (
            not final
            and len(head) < _SNIFF_BYTES
            and any(p.startswith(head) for p in _SSE_PREFIXES)
        ):
            return b""  # could still become "data:", "event:", ...
        elif not final and len(buffered) < _EXCERPT_CHARS:
            return b""  # not a known format: wait for a longer excerpt for the error message
        else:
            raise ScoutStreamError(
                f"unsupported events content type {self._content_type!r}: the body is neither "
                f"SSE, NDJSON nor JSON; it starts with {_excerpt(buffered[:_EXCERPT_CHARS])}"
            )
        rest = bytes(buffered)
        buffered.clear()
        return rest

    def _from_sse(self, messages: Iterator[SSEMessage]) -> Iterator[SessionEvent]:
        for message in messages:
            position = self._sse_count  # 0-based, counting every SSE event (as enumerate would)
            self._sse_count += 1
            if is_done(message):
                self.done = True
                break
            if not message.data.strip():
                continue  # keep-alive
            text: str | None = message.data
            try:
                value = parse_json_data(message, position=position)
            except ScoutStreamError:
                if message.event != "error":
                    raise
                value = message.data  # an error event carries its message as plain text (D16)
                text = None
            name = message.event if message.event != "message" else None
            yield self._event(value, name=name, event_id=message.id or None, text=text)

    def _event(
        self,
        value: Any,
        *,
        name: str | None = None,
        event_id: str | None = None,
        text: str | None = None,
    ) -> SessionEvent:
        timestamp = None
        if isinstance(value, dict):
            if name is None:
                name = _first_string(value, _NAME_KEYS)
            if event_id is None:
                element_id = value.get("id")
                event_id = element_id if isinstance(element_id, str) else None
            timestamp = _first_string(value, _TIMESTAMP_KEYS)
        event = SessionEvent(
            sequence=self._sequence,
            name=name,
            data=value,
            id=event_id,
            timestamp=timestamp,
            json_text=text,
        )
        self._sequence += 1
        return event
