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
      document whose value is an array; every other key's value is decoded and thrown away).
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


# JSON: an array of events, or an object wrapping one. The body is decoded to text as it arrives
# and cut into values by the standard library's C scanner, ``JSONDecoder.raw_decode``; the code
# below only steps over the syntax between them. A value that the text received so far ends inside
# is decoded again once that text has doubled, or grown by a quarter with a chunk ending in ``]``,
# ``}``, ``"`` or ``,``, or at the end of the body: so a large value costs a few decodings, not one
# per chunk, and the text kept is at most about twice the value (and the size limit) plus a chunk.
# The splitter is a generator over the parser's text that yields each element, or ``_NEED`` to
# wait for more text; only ``buf.pos`` is kept across a wait (taking text drops what was read).

_NEED: Final = object()
_WS = re.compile(r"[ \t\r\n]*")
_WS_CHARS: Final = (" ", "\t", "\r", "\n")
#: A whole string, a bracket, or the quote of a string that the text ends in.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}"]', re.DOTALL)
#: A number, ``true``, ``NaN``...: everything up to the next delimiter.
_SCALAR = re.compile(r'[^ \t\r\n,:\[\]{}"]*')
_VALUE_START: Final = frozenset('"[{-0123456789tfnNI')  # json.loads accepts NaN and Infinity
#: How near the end of the text a decoding error may come from the text ending there.
_LOOKAHEAD = 16
_DECODER: Final = json.JSONDecoder()
_SKIPPER: Final = json.JSONDecoder(object_pairs_hook=lambda pairs: None)  # builds no objects
_Splitter = Generator[object, None, None]


class _JSONParser(_ValueParser):
    """A JSON array of events (or an object wrapping one), split element by element.

    It holds the body's text not consumed yet: ``text[pos:]``, then the pieces decoded since the
    splitter last ran. The splitter runs again once ``want`` characters are not consumed, or
    ``soon`` with a chunk ending in a closing bracket, a quote or a comma.
    """

    def __init__(self) -> None:
        self.text, self.pos, self.eof = "", 0, False
        self.dropped = self.received = 0  # bytes of the body before text[0]; decoded so far
        self.invalid: str | None = None  # why the body's next bytes are not UTF-8
        self.want = self.soon = 1
        self._tail = b""  # a UTF-8 sequence cut by the end of the last chunk
        self._pending: list[str] = []
        self._pending_size = 0
        self._splitter = _json_events(self)

    def feed(self, chunk: bytes) -> Iterator[_Parsed]:
        if self.invalid is not None:
            return self._run()
        data = self._tail + chunk
        try:
            piece, self._tail = data.decode(), b""
        except UnicodeDecodeError as exc:
            piece, self._tail = data[: exc.start].decode(), data[exc.start :]
            if exc.end < len(data) or exc.reason != "unexpected end of data":
                self.invalid = f"not UTF-8: {exc.reason} at byte {self.received + exc.start}"
        if not self.received and piece[:1] == "\ufeff":
            piece, self.dropped = piece[1:], 3
        self.received += len(data) - len(self._tail)
        self._pending.append(piece)
        self._pending_size += len(piece)
        size = len(self.text) - self.pos + self._pending_size
        if size >= self.want or self.invalid is not None:
            return self._run()
        if size >= self.soon and chunk.rstrip()[-1:] in (b"]", b"}", b'"', b","):
            return self._run()
        return iter(())

    def finish(self) -> Iterator[_Parsed]:
        self.eof = True
        if self._tail and self.invalid is None:  # the body ends inside a character
            self._pending.append(self._tail.decode(errors="replace"))
        return self._run()

    def _run(self) -> Iterator[_Parsed]:
        self.dropped = self.offset(self.pos)
        self.text = "".join([self.text[self.pos :], *self._pending])
        self.pos = self._pending_size = 0
        self._pending.clear()
        for item in self._splitter:
            if item is _NEED:
                return
            yield item, None

    def offset(self, index: int) -> int:
        """Where ``text[index]`` is in the body, in bytes."""
        text = self.text
        return self.dropped + (index if text.isascii() else len(text[:index].encode()))

    def found(self, index: int) -> str:
        if index >= len(self.text):
            return "the end of the body"
        return _excerpt(self.text[index : index + 20])


def _skip_ws(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match is not None else index


def _scalar_end(text: str, index: int) -> int:
    match = _SCALAR.match(text, index)
    return match.end() if match is not None else index


def _at_end(buf: _JSONParser) -> Generator[object, None, bool]:
    """Skip whitespace, waiting for text as needed; whether the body ends there."""
    while True:
        buf.pos = _skip_ws(buf.text, buf.pos)
        if buf.pos < len(buf.text):
            return False
        if buf.invalid is not None:
            raise ScoutStreamError(f"JSON body is {buf.invalid}")
        if buf.eof:
            return True
        buf.want = buf.soon = 1
        yield _NEED


def _peek(buf: _JSONParser, inside: str) -> Generator[object, None, str]:
    """Skip whitespace and return the next character (not consumed)."""
    if (yield from _at_end(buf)):
        raise ScoutStreamError(f"JSON body is truncated: it ends inside {inside}")
    return buf.text[buf.pos]


def _take(buf: _JSONParser, inside: str, allowed: str, fault: str) -> Generator[object, None, str]:
    """Skip whitespace and consume the next character, one of ``allowed``; else raise ``fault``."""
    char = yield from _peek(buf, inside)
    if char not in allowed:
        raise _fault(buf, fault, buf.pos)
    buf.pos += 1
    return char


def _fault(buf: _JSONParser, fault: str, at: int) -> ScoutStreamError:
    """``JSON <fault> at byte <n>: <what is there>``, about ``text[at]``."""
    return ScoutStreamError(f"JSON {fault} at byte {buf.offset(at)}: {buf.found(at)}")


def _value(
    buf: _JSONParser, what: str, decoder: json.JSONDecoder = _DECODER
) -> Generator[object, None, Any]:
    """Decode the value at ``buf.pos``, waiting for the text it needs; ``what`` names it."""
    while True:
        text, start = buf.text, buf.pos
        ended = buf.eof or buf.invalid is not None
        size = len(text) - start
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            cut = isinstance(exc, json.JSONDecodeError) and (
                exc.msg.startswith("Unterminated") or exc.pos >= len(text) - _LOOKAHEAD
            )
            if ended or not cut:
                raise _value_error(buf, what, start, exc, cut=cut) from exc
            wait_for = min(2 * size, _MAX_ELEMENT_BYTES + 1)
        else:
            scalar = text[start] not in '"[{'
            token_end = _scalar_end(text, start) if scalar else end
            if not scalar or token_end < len(text) or ended:  # else "1" may go on as "12"
                if token_end != end:
                    raise _value_error(
                        buf, what, start, json.JSONDecodeError("Extra data", text, end)
                    )
                refusal = _refusal(buf, what, start, end)
                if refusal is not None:
                    raise refusal
                buf.pos = end
                return value
            wait_for = size + 1
        if size > _MAX_ELEMENT_BYTES:
            raise _too_large(f"the JSON {what} at byte {buf.offset(start)}")
        if is_too_deep(text, start):
            raise _value_error(buf, what, start, JSONNestingError())
        buf.want, buf.soon = wait_for, min(wait_for, size + size // 4 + 1)
        yield _NEED


def _refusal(buf: _JSONParser, what: str, start: int, end: int) -> ScoutStreamError | None:
    """The error for the value ``text[start:end]`` if it is too large or nested too deeply."""
    text, length = buf.text, end - start
    if (
        length > _MAX_ELEMENT_BYTES // 4
        and (length if text.isascii() else len(text[start:end].encode())) > _MAX_ELEMENT_BYTES
    ):
        return _too_large(f"the JSON {what} at byte {buf.offset(start)}")
    if length > 2 * MAX_JSON_DEPTH and is_too_deep(text, start, end):
        return _value_error(buf, what, start, JSONNestingError())
    return None


def _value_error(
    buf: _JSONParser, what: str, start: int, error: Exception, *, cut: bool = False
) -> ScoutStreamError:
    """The error for the value at ``text[start]``, which did not decode (``error``).

    ``cut``: the error may come from the text ending too soon (the body ended, or went on with
    bytes that are not UTF-8).
    """
    text = buf.text
    if text[start] not in _VALUE_START:
        return _fault(buf, "body has no value where one is expected", start)
    fault, index = _brackets(text, start)
    if fault == "deep":
        return ScoutStreamError(
            f"JSON body is nested more than {MAX_JSON_DEPTH} levels deep "
            f"at byte {buf.offset(index)}"
        )
    if fault == "mismatched":
        return ScoutStreamError(
            f"JSON body has a mismatched {text[index]!r} at byte {buf.offset(index)}"
        )
    if cut and fault and buf.invalid is None:
        return ScoutStreamError(f"JSON body is truncated: it ends inside {fault}")
    reason = buf.invalid if cut and fault else _reason(error)
    excerpt = _excerpt(text[start : min(index, start + _EXCERPT_CHARS + 1)])
    return ScoutStreamError(
        f"JSON {what} at byte {buf.offset(start)} does not parse ({reason}): {excerpt}"
    )


def _brackets(text: str, start: int) -> tuple[str, int]:
    """The first fault of the brackets and strings of the value at ``text[start]``, and where.

    ``"deep"`` or ``"mismatched"`` and that bracket; ``"a string"`` or ``"an array or object"``
    when the text ends inside one; otherwise ``""`` and the end of the value.
    """
    if text[start] not in '"[{':
        return "", _scalar_end(text, start)
    opened: list[str] = []
    for match in _TOKEN.finditer(text, start):
        part = match.group()
        if part == '"':
            return "a string", len(text)
        if part in ("[", "{"):
            opened.append(part)
            if len(opened) > MAX_JSON_DEPTH:
                return "deep", match.start()
        elif part in ("]", "}") and opened.pop() + part not in ("[]", "{}"):
            return "mismatched", match.start()
        if not opened:
            return "", match.end()
    return "an array or object", len(text)


def _events_array(buf: _JSONParser) -> _Splitter:
    """Yield each element of the events array; ``buf.pos`` is just after its ``[``."""
    if (yield from _peek(buf, "the events array")) == "]":
        buf.pos += 1
        return
    decode = _DECODER.raw_decode
    index = 0
    while True:
        # The elements the text holds whole, each followed by "," or "]", in a tight loop.
        text, pos = buf.text, buf.pos
        small = min(2 * MAX_JSON_DEPTH, _MAX_ELEMENT_BYTES // 4)  # too small to be refused
        while True:
            try:
                value, end = decode(text, pos)
            except (ValueError, RecursionError):
                break
            after = _skip_ws(text, end) if text[end : end + 1] in _WS_CHARS else end
            if after == len(text) or text[after] not in ",]":
                break
            if end - pos > small and (refusal := _refusal(buf, f"event {index}", pos, end)):
                raise refusal
            yield value
            index += 1
            if text[after] == "]":
                buf.pos = after + 1
                return
            pos = after + 1
            if text[pos : pos + 1] in _WS_CHARS:
                pos = _skip_ws(text, pos)
        # Any other one: wait for the text it needs, or raise the error it deserves.
        buf.pos = pos
        yield from _peek(buf, "the events array")
        value = yield from _value(buf, f"event {index}")
        yield value
        fault = f"events array has no ',' or ']' after event {index}"
        if (yield from _take(buf, "the events array", ",]", fault)) == "]":
            return
        index += 1
        yield from _peek(buf, "the events array")


def _wrapped_events(buf: _JSONParser) -> _Splitter:
    """Yield the events of a wrapper object; ``buf.pos`` is just after its ``{``."""
    inside = "the top-level object"
    keys: list[str] = []
    found = False
    if (yield from _peek(buf, inside)) == "}":
        buf.pos += 1
    else:
        while True:
            if (yield from _peek(buf, inside)) != '"':
                raise _fault(buf, "object has no key where one is expected", buf.pos)
            key = yield from _value(buf, "key")
            if len(keys) < _MAX_KEYS_REPORTED:
                keys.append(key)
            yield from _take(buf, inside, ":", f"object has no ':' after the key {key!r}")
            if (yield from _peek(buf, f"the value of {key!r}")) == "[" and (
                key in _WRAPPER_KEYS and not found
            ):
                found = True
                buf.pos += 1
                yield from _events_array(buf)
            else:
                yield from _value(buf, "value", _SKIPPER)
            fault = f"object has no ',' or '}}' after the value of {key!r}"
            if (yield from _take(buf, inside, ",}", fault)) == "}":
                break
    if not found:
        shown = ", ".join(repr(key) for key in keys) if keys else "none"
        raise ScoutStreamError(
            f"JSON object holds no list of events under any of the keys {_WRAPPER_KEYS_TEXT}; "
            f"its keys are: {shown}"
        )


def _json_events(buf: _JSONParser) -> _Splitter:
    """Yield the events of a whole JSON body: an array, or a wrapper object."""
    if (yield from _at_end(buf)):
        raise ScoutStreamError("JSON body is empty; expected an array or an object of events")
    char = buf.text[buf.pos]
    if char not in "[{":
        raise ScoutStreamError(
            "JSON body is neither an array nor an object of events: "
            f"it starts with {buf.found(buf.pos)}"
        )
    buf.pos += 1
    yield from _events_array(buf) if char == "[" else _wrapped_events(buf)
    if not (yield from _at_end(buf)):
        raise _fault(buf, "body has data after its end", buf.pos)


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
