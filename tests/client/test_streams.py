"""``django_scout.client.streams``: SSE, NDJSON and JSON bodies, sync and async.

Every body is fed through a real ``httpx.Response`` whose stream yields it in awkward chunks (one
byte at a time, chunks that split multi-byte UTF-8 characters, escapes and ``\\r\\n`` pairs), and
most tests run once per chunking and once per flavour (``iter_*`` and ``aiter_*``).
"""

from __future__ import annotations

import itertools
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from django_scout.client import streams
from django_scout.client._json_depth import MAX_JSON_DEPTH
from django_scout.client.errors import ScoutStreamError
from django_scout.client.streams import (
    DONE_SENTINELS,
    SessionEvent,
    SSEMessage,
    aiter_session_events,
    aiter_sse,
    is_done,
    iter_session_events,
    iter_sse,
    parse_json_data,
)

# --------------------------------------------------------------------------- harness


class ChunkedStream(httpx.SyncByteStream):
    """A sync response body made of the given chunks, produced lazily."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


class AsyncChunkedStream(httpx.AsyncByteStream):
    """An async response body made of the given chunks, produced lazily."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


def split(body: bytes, size: int | None) -> list[bytes]:
    """``body`` in chunks of ``size`` bytes (one chunk when ``size`` is None)."""
    if size is None:
        return [body]
    return [body[i : i + size] for i in range(0, len(body), size)]


def make_response(
    chunks: Iterable[bytes], content_type: str | None, mode: str
) -> tuple[httpx.Response, ChunkedStream | AsyncChunkedStream]:
    headers = {"content-type": content_type} if content_type is not None else {}
    stream: ChunkedStream | AsyncChunkedStream
    stream = ChunkedStream(chunks) if mode == "sync" else AsyncChunkedStream(chunks)
    return httpx.Response(200, headers=headers, stream=stream), stream


async def collect_sse(
    body: bytes, chunk: int | None = None, mode: str = "sync"
) -> list[SSEMessage]:
    response, _ = make_response(split(body, chunk), "text/event-stream", mode)
    if mode == "sync":
        return list(iter_sse(response))
    return [message async for message in aiter_sse(response)]


async def collect_events(
    body: bytes,
    content_type: str | None,
    chunk: int | None = None,
    mode: str = "sync",
    *,
    into: list[SessionEvent] | None = None,
) -> list[SessionEvent]:
    """All session events of ``body``; ``into`` (if given) receives them one by one."""
    response, _ = make_response(split(body, chunk), content_type, mode)
    events = [] if into is None else into
    if mode == "sync":
        for event in iter_session_events(response):
            events.append(event)
    else:
        async for event in aiter_session_events(response):
            events.append(event)
    return events


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test through ``iter_*`` and through ``aiter_*``."""
    return str(request.param)


@pytest.fixture(params=[None, 1, 2, 3, 7], ids=lambda size: f"chunk{size or 'whole'}")
def chunk(request: pytest.FixtureRequest) -> int | None:
    """Feed the body whole, or in chunks of 1, 2, 3 or 7 bytes."""
    return request.param  # type: ignore[no-any-return]


def datas(events: list[SessionEvent]) -> list[Any]:
    return [event.data for event in events]


# --------------------------------------------------------------------------- SSE

SSE_BODY = (
    b": a comment, ignored\n"
    b"event: start\n"
    b"id: 1\n"
    b"retry: 1500\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"data: line one\n"
    b"data:line two\n"
    b"data:  two spaces\n"
    b"\n"
    b"data\n"
    b"\n"
    b"event: ping\n"
    b": an event with no data line is not dispatched\n"
    b"\n"
    b"id: 7\n"
    b"retry: soon\n"
    b"unknown: field\n"
    b"data: x\n"
    b"\n"
    b"id: bad\x00id\n"
    b"data: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac\n"
    b"\n"
    b"data: last event, no blank line after it"
)
SSE_EXPECTED = [
    SSEMessage(event="start", data='{"a": 1}', id="1", retry=1500),
    SSEMessage(event="message", data="line one\nline two\n two spaces"),
    SSEMessage(event="message", data=""),
    SSEMessage(event="message", data="x", id="7"),
    SSEMessage(event="message", data="café € 😀 日本"),
    SSEMessage(event="message", data="last event, no blank line after it"),
]


async def test_sse_fields_comments_and_final_event(mode: str, chunk: int | None) -> None:
    assert await collect_sse(SSE_BODY, chunk, mode) == SSE_EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
async def test_sse_line_endings(mode: str, chunk: int | None, newline: bytes) -> None:
    body = SSE_BODY.replace(b"\n", newline)
    assert await collect_sse(body, chunk, mode) == SSE_EXPECTED


async def test_sse_mixed_line_endings_and_bom(mode: str, chunk: int | None) -> None:
    body = b"\xef\xbb\xbfdata: a\r\ndata: b\rdata: c\n\r\nevent: e\rdata: d\r\r"
    assert await collect_sse(body, chunk, mode) == [
        SSEMessage(event="message", data="a\nb\nc"),
        SSEMessage(event="e", data="d"),
    ]


async def test_sse_id_is_not_inherited_and_data_is_kept_verbatim(mode: str) -> None:
    body = b"id: 1\ndata: first\n\ndata: second\n\nid:\ndata:  [DONE] \n\n"
    assert await collect_sse(body, 3, mode) == [
        SSEMessage(event="message", data="first", id="1"),
        SSEMessage(event="message", data="second"),
        SSEMessage(event="message", data=" [DONE] ", id=""),
    ]


async def test_sse_invalid_utf8_is_replaced(mode: str, chunk: int | None) -> None:
    body = b"data: a\xffb \xe2\x82\n\n"
    assert await collect_sse(body, chunk, mode) == [
        SSEMessage(event="message", data="a\ufffdb \ufffd")
    ]


async def test_sse_empty_body(mode: str) -> None:
    assert await collect_sse(b"", None, mode) == []
    assert await collect_sse(b"\n\n: only comments\n\n", 1, mode) == []


async def test_sse_data_larger_than_the_limit(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "_MAX_ELEMENT_BYTES", 1000)
    assert len(await collect_sse(b"data: " + b"x" * 900 + b"\n\n", 64, mode)) == 1
    with pytest.raises(ScoutStreamError, match="SSE line is larger than 1000 bytes"):
        await collect_sse(b"data: " + b"x" * 5000 + b"\n\n", 64, mode)
    with pytest.raises(ScoutStreamError, match="SSE event's data is larger than 1000 bytes"):
        await collect_sse(b"data: " + b"x" * 300 + b"\n" + b"data: yyyy\n" * 300, 64, mode)


def test_is_done() -> None:
    assert frozenset({"[DONE]", "DONE"}) == DONE_SENTINELS
    assert is_done(SSEMessage(event="message", data="[DONE]"))
    assert is_done(SSEMessage(event="message", data=" DONE\n"))
    assert is_done(SSEMessage(event="complete", data="DONE"))
    assert not is_done(SSEMessage(event="message", data="done"))
    assert not is_done(SSEMessage(event="message", data='"[DONE]"'))
    assert not is_done(SSEMessage(event="DONE", data="{}"))


def test_parse_json_data() -> None:
    assert parse_json_data(SSEMessage(event="message", data='{"a": [1, 2]}'), position=0) == {
        "a": [1, 2]
    }
    assert parse_json_data(SSEMessage(event="message", data="null"), position=0) is None
    text = "start_message is plain text " + "x" * 500
    with pytest.raises(ScoutStreamError) as caught:
        parse_json_data(SSEMessage(event="start_message", data=text), position=4)
    message = str(caught.value)
    assert "SSE event 4" in message
    assert "'start_message'" in message
    assert "start_message is plain text" in message
    assert len(message) < 250  # only an excerpt of the data


# --------------------------------------------------------------------------- session events: SSE

SESSION_SSE = (
    b": keep-alive\n\n"
    b"event: message\n"
    b'data: {"name": "block_state_updated", "id": "e1", "timestamp": "t1", "data": {"x": 1}}\n\n'
    b"event: agent_delta\n"
    b"id: sse-2\n"
    b'data: {"type": "ignored", "id": "elem-2", "created_at": "t2", "name": 3}\n\n'
    b"data:\n\n"
    b"event: ping\ndata: \n\n"
    b'data: {"name": 7, "event": "from-event-key", "time": "t3", "id": 5, "timestamp": 1}\n\n'
    b'data: {"type": "from-type-key", "text": "caf\xc3\xa9 ] } ,"}\n\n'
    b"data: [1,\ndata:  2]\n\n"
    b'data: "text"\n\n'
)


async def test_session_sse_events(mode: str, chunk: int | None) -> None:
    events = await collect_events(SESSION_SSE, "text/event-stream", chunk, mode)
    assert events == [
        SessionEvent(
            sequence=0,
            name="block_state_updated",
            data={"name": "block_state_updated", "id": "e1", "timestamp": "t1", "data": {"x": 1}},
            id="e1",
            timestamp="t1",
        ),
        SessionEvent(
            sequence=1,
            name="agent_delta",
            data={"type": "ignored", "id": "elem-2", "created_at": "t2", "name": 3},
            id="sse-2",
            timestamp="t2",
        ),
        SessionEvent(
            sequence=2,
            name="from-event-key",
            data={"name": 7, "event": "from-event-key", "time": "t3", "id": 5, "timestamp": 1},
            id=None,
            timestamp="t3",
        ),
        SessionEvent(
            sequence=3,
            name="from-type-key",
            data={"type": "from-type-key", "text": "café ] } ,"},
            id=None,
            timestamp=None,
        ),
        SessionEvent(sequence=4, name=None, data=[1, 2], id=None, timestamp=None),
        SessionEvent(sequence=5, name=None, data="text", id=None, timestamp=None),
    ]


@pytest.mark.parametrize("sentinel", sorted(DONE_SENTINELS))
async def test_session_sse_done_ends_the_stream(
    mode: str, chunk: int | None, sentinel: str
) -> None:
    body = b'data: {"n": 1}\n\ndata: ' + sentinel.encode() + b"\n\ndata: not JSON, never parsed\n\n"
    events = await collect_events(body, "text/event-stream; charset=utf-8", chunk, mode)
    assert datas(events) == [{"n": 1}]


async def test_session_sse_done_stops_reading_the_body(mode: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'data: {"n": 1}\n\n'
        yield b"data: [DONE]\n\n"
        raise AssertionError("the body was read past [DONE]")

    response, stream = make_response(chunks(), "text/event-stream", mode)
    if mode == "sync":
        events = list(iter_session_events(response))
    else:
        events = [event async for event in aiter_session_events(response)]
    assert datas(events) == [{"n": 1}]
    assert stream.pulled == 2


async def test_session_sse_data_that_is_not_json(mode: str, chunk: int | None) -> None:
    body = (
        b'data: {"ok": 1}\n\n: comment\n\ndata:\n\nevent: update\ndata: oops {not json'
        + b" padding" * 40
        + b"\n\ndata: {}\n\n"
    )
    received: list[SessionEvent] = []
    with pytest.raises(ScoutStreamError) as caught:
        await collect_events(body, "text/event-stream", chunk, mode, into=received)
    message = str(caught.value)
    assert "SSE event 2 (event: 'update')" in message
    assert "oops {not json" in message
    assert len(message) < 250
    assert datas(received) == [{"ok": 1}]  # events before the bad one were delivered


async def test_session_sse_error_event_with_text(mode: str) -> None:
    body = (
        b'data: {"n": 1}\n\n'
        b"event: error\ndata: the agent crashed\n\n"
        b'event: error\ndata: {"code": 5}\n\n'
    )
    events = await collect_events(body, "text/event-stream", 4, mode)
    assert [(e.sequence, e.name, e.data) for e in events] == [
        (0, None, {"n": 1}),
        (1, "error", "the agent crashed"),
        (2, "error", {"code": 5}),
    ]


async def test_session_events_keep_the_json_text_they_were_parsed_from(mode: str) -> None:
    """SSE data and NDJSON lines are kept as ``json_text`` (so storing need not serialize them
    again); a plain-text error event and the elements of a JSON array have none."""
    sse = b'data: {"n":  1}\n\nevent: error\ndata: the agent crashed\n\ndata: [1,\ndata: 2]\n\n'
    events = await collect_events(sse, "text/event-stream", 5, mode)
    assert [e.json_text for e in events] == ['{"n":  1}', None, "[1,\n2]"]
    ndjson = b'\xef\xbb\xbf {"a": "caf\xc3\xa9"} \r\n\n[1, 2]\n7'
    events = await collect_events(ndjson, "application/x-ndjson", 3, mode)
    assert [e.json_text for e in events] == ['{"a": "café"}', "[1, 2]", "7"]
    assert [e.data for e in events] == [{"a": "café"}, [1, 2], 7]
    events = await collect_events(b'[{"a": 1}, 2]', "application/json", None, mode)
    assert [e.json_text for e in events] == [None, None]
    # Not part of equality: an event equals one built without it.
    assert events[1] == SessionEvent(sequence=1, name=None, data=2, id=None, timestamp=None)


# --------------------------------------------------------------------------- session events: NDJSON

NDJSON_TYPES = [
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
    "application/jsonlines",
    "Application/X-NDJSON; charset=utf-8",
]

NDJSON_BODY = (
    b'\xef\xbb\xbf{"name": "a", "id": "1", "timestamp": "2025-01-01T00:00:00Z"}\n'
    b"\n"
    b'{"type": "b", "text": "caf\xc3\xa9 \xf0\x9f\x98\x80 \\" ] } ,", '
    b'"data": {"k": [1, {"z": null}]}}\r\n'
    b"   \t \r\n"
    b"[1, 2, 3]\n"
    b"42\n"
    b'  {"event": "last", "created_at": "yesterday"}  '
)


@pytest.mark.parametrize("content_type", NDJSON_TYPES)
async def test_ndjson_events(mode: str, chunk: int | None, content_type: str) -> None:
    events = await collect_events(NDJSON_BODY, content_type, chunk, mode)
    assert events == [
        SessionEvent(
            sequence=0,
            name="a",
            data={"name": "a", "id": "1", "timestamp": "2025-01-01T00:00:00Z"},
            id="1",
            timestamp="2025-01-01T00:00:00Z",
        ),
        SessionEvent(
            sequence=1,
            name="b",
            data={"type": "b", "text": 'café 😀 " ] } ,', "data": {"k": [1, {"z": None}]}},
            id=None,
            timestamp=None,
        ),
        SessionEvent(sequence=2, name=None, data=[1, 2, 3], id=None, timestamp=None),
        SessionEvent(sequence=3, name=None, data=42, id=None, timestamp=None),
        SessionEvent(
            sequence=4,
            name="last",
            data={"event": "last", "created_at": "yesterday"},
            id=None,
            timestamp="yesterday",
        ),
    ]


async def test_ndjson_bad_line_names_its_number(mode: str, chunk: int | None) -> None:
    body = b'{"a": 1}\n\n{"b": 2}\n{"c": oops}\n{"d": 4}\n'
    received: list[SessionEvent] = []
    with pytest.raises(ScoutStreamError, match=r"NDJSON line 4 is not JSON .*oops") as caught:
        await collect_events(body, "application/x-ndjson", chunk, mode, into=received)
    assert "line 4" in str(caught.value)
    assert datas(received) == [{"a": 1}, {"b": 2}]


async def test_ndjson_bad_last_line_and_bad_utf8(mode: str) -> None:
    with pytest.raises(ScoutStreamError, match="NDJSON line 2 is not JSON"):
        await collect_events(b'{"a": 1}\n{"b": ', "application/x-ndjson", 2, mode)
    with pytest.raises(ScoutStreamError, match="NDJSON line 1 is not JSON"):
        await collect_events(b'{"a": "\xff"}\n', "application/x-ndjson", 2, mode)


async def test_ndjson_line_larger_than_the_limit(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "_MAX_ELEMENT_BYTES", 1000)
    body = b'{"a": 1}\n{"big": "' + b"x" * 5000 + b'"}\n'
    with pytest.raises(ScoutStreamError, match="NDJSON line 2 is larger than 1000 bytes"):
        await collect_events(body, "application/x-ndjson", 100, mode)
    with pytest.raises(ScoutStreamError, match="NDJSON line 2 is larger than 1000 bytes"):
        await collect_events(body, "application/x-ndjson", None, mode)


# --------------------------------------------------------------------------- session events: JSON

TRICKY_ELEMENTS: list[Any] = [
    {
        "name": "a",
        "text": "brackets ] } [ { and commas , , inside",
        "nested": {"list": [1, [2, [3, []]], {"k": "v", "e": {}}]},
    },
    {"type": "b", "quote": 'she said "hi", then left]', "backslash": "ends with \\", "id": "x"},
    {"event": "c", "unicode": "café € 😀 日本", "escapes": '\u00e9\t\n\\"/', "data": {"in": True}},
    {"k": '\\\\\\"]', "t": "\\", "u": '"', "v": "\\]"},
    [1, 2, {"a": []}, "]"],
    'plain string ] with a bracket, and "quotes"',
    -12.5e3,
    0,
    True,
    False,
    None,
    {},
    [],
]


@pytest.mark.parametrize(
    "dumps",
    [
        lambda value: json.dumps(value, ensure_ascii=False),
        lambda value: json.dumps(value, ensure_ascii=True, separators=(",", ":")),
        lambda value: json.dumps(value, ensure_ascii=False, indent=3).replace("\n", "\r\n"),
    ],
    ids=["spaced", "compact", "indented"],
)
async def test_json_array_elements(
    mode: str, chunk: int | None, dumps: Callable[[Any], str]
) -> None:
    body = dumps(TRICKY_ELEMENTS).encode()
    events = await collect_events(body, "application/json", chunk, mode)
    assert datas(events) == TRICKY_ELEMENTS
    assert [event.sequence for event in events] == list(range(len(TRICKY_ELEMENTS)))
    assert [event.name for event in events[:4]] == ["a", "b", "c", None]
    assert [event.id for event in events[:4]] == [None, "x", None, None]
    # an element with a "data" key is kept whole
    assert events[2].data["data"] == {"in": True}
    assert events[2].data["event"] == "c"


async def test_json_elements_larger_than_the_chunks(mode: str) -> None:
    elements = [{"n": 1}, {"big": "é" * 300_000, "list": list(range(20_000))}, {"n": 3}, "x" * 1000]
    body = json.dumps(elements * 3, ensure_ascii=False).encode()
    assert len(body) > 2_000_000
    for chunk in (None, 65536, 1000):
        events = await collect_events(body, "application/json", chunk, mode)
        assert datas(events) == elements * 3
        assert [event.sequence for event in events] == list(range(12))


async def test_json_many_multibyte_elements(mode: str) -> None:
    # Chunks end inside multi-byte characters; nothing may be lost or doubled.
    elements = [{"i": i, "t": "日本語 é 😀" * (i % 7)} for i in range(30_000)]
    body = json.dumps(elements, ensure_ascii=False).encode()
    assert len(body) > 1_000_000
    for chunk in (None, 65_536):
        events = await collect_events(body, "application/json", chunk, mode)
        assert datas(events) == elements


@pytest.mark.parametrize("body", [b"[]", b" [ ] ", b"\r\n[\n\t]\n", b"\xef\xbb\xbf[]"])
async def test_json_empty_array(mode: str, chunk: int | None, body: bytes) -> None:
    assert await collect_events(body, "application/json", chunk, mode) == []


def big_irrelevant_value() -> Any:
    return {
        "blobs": [{"s": '] } , " [ {' * 3, "n": [i, [i, {"deep": [[[]]]}]]} for i in range(300)],
        "events": "not a list",
    }


@pytest.mark.parametrize("key", ["events", "data", "items", "results"])
async def test_json_wrapper_object(mode: str, key: str) -> None:
    elements = [{"name": "first", "v": "]}"}, {"name": "second", "data": {"x": [1]}}]
    wrapper = {
        "object": "list",
        "meta": big_irrelevant_value(),
        "count": 2,
        "flag": True,
        "nothing": None,
        key: elements,
        "has_more": False,
        "next": "cursor ] }",
        "tail": {"x": [1, {"y": "]}"}]},
    }
    body = json.dumps(wrapper).encode()
    assert len(body) > 20_000
    for chunk in (None, 1, 7, 4096):
        events = await collect_events(body, "application/json", chunk, mode)
        assert datas(events) == elements
        assert [event.name for event in events] == ["first", "second"]


async def test_json_wrapper_uses_the_first_list_under_a_known_key(
    mode: str, chunk: int | None
) -> None:
    body = (
        b'{"data": {"not": "a list"}, "items": null, "results": [{"n": 1}], "events": [{"n": 2}]}'
    )
    assert datas(await collect_events(body, "application/json", chunk, mode)) == [{"n": 1}]
    body = b'{"events": [], "data": [{"n": 2}]}'
    assert await collect_events(body, "application/json", chunk, mode) == []


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"object": "session", "id": "s1", "status": "done"}', "'object', 'id', 'status'"),
        (b'{"events": "not-a-list", "data": 3, "items": {"a": [1]}}', "'events', 'data', 'items'"),
        (b"{}", "none"),
        (b' { "results" : null } ', "'results'"),
    ],
)
async def test_json_object_without_a_list_of_events(
    mode: str, chunk: int | None, body: bytes, shown: str
) -> None:
    with pytest.raises(ScoutStreamError) as caught:
        await collect_events(body, "application/json", chunk, mode)
    message = str(caught.value)
    assert "'events', 'data', 'items', 'results'" in message
    assert message.endswith(f"its keys are: {shown}")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'[{"a": 1}', "truncated"),
        (b'[{"a": 1}, {"b": "unterminated', "truncated: it ends inside a string"),
        (b'[{"a": 1}, {"b": [1, 2', "truncated: it ends inside an array or object"),
        (b'[{"a": 1}, 12', "truncated"),
        (b'[{"a": 1},]', "no value where one is expected at byte 10"),
        (b'[{"a": 1} {"b": 2}]', r"no ',' or '\]' after event 0 at byte 10"),
        (b'[{"a": 1}, {"b": tru}]', "event 1 at byte 11 does not parse"),
        (b'[{"a": 1]]', r"mismatched '\]' at byte 8"),
        (b'[{"a": [1}]', "mismatched '}'"),
        (b'[{"a": 1}] trailing', "data after its end at byte 11"),
        (b"[1, 2] [3]", "data after its end"),
        (b'[{"a": "\xff"}]', "event 0 at byte 1 does not parse"),
        (b'[{"a": "\\ud800 \x01"}]', "does not parse"),
        (b"[nul]", "does not parse"),
        (b"[01]", r"event 0 at byte 1 does not parse \(Extra data\): '01'$"),
        (b"[1, truex]", r"event 1 at byte 4 does not parse \(Extra data\): 'truex'$"),
        (b"[1, \xff]", "JSON body is not UTF-8: invalid start byte at byte 4$"),
        (b'[1, "\xc3\xa9\xff"]', r"event 1 at byte 4 does not parse \(not UTF-8: invalid start"),
        (b'["caf\xc3', "truncated: it ends inside a string"),
        (b"[1]\xc3", "data after its end at byte 3"),
        (b'{"events": [1, 2]', "truncated"),
        (b'{"events": [1, 2], "x"', "truncated"),
        (b'{"events" [1]}', "no ':' after the key 'events'"),
        (b"{events: [1]}", "no key where one is expected"),
        (b'{"events": [1] "x": 2}', r"no ',' or '}' after the value of 'events'"),
        (b'{"x": tru, "events": [1]}', "value at byte 6 does not parse"),
        (b'{"x": [1}, "events": [1]}', "mismatched"),
        (b'{"x": [1.5e], "events": [1]}', "value at byte 6 does not parse"),
        (b'"just a string"', "neither an array nor an object"),
        (b"42", "neither an array nor an object"),
        (b"", "JSON body is empty"),
        (b" \r\n ", "JSON body is empty"),
    ],
)
async def test_json_invalid_or_truncated(
    mode: str, chunk: int | None, body: bytes, error: str
) -> None:
    with pytest.raises(ScoutStreamError, match=error):
        await collect_events(body, "application/json", chunk, mode)


async def test_json_numbers_cut_between_chunks(mode: str, chunk: int | None) -> None:
    # "1" may go on as "12", "1." as "1.5", "1e" as "1e+3": a number is only complete once
    # something that cannot continue it follows
    numbers = [12345, -0.5, 1.5e-7, -12e30, 0, 7, 10**25, -(10**25)]
    for body in (json.dumps(numbers), json.dumps(numbers, indent=1), json.dumps({"data": numbers})):
        events = await collect_events(body.encode(), "application/json", chunk, mode)
        assert datas(events) == numbers


async def test_json_large_element_is_decoded_a_few_times(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An element cut across many chunks is decoded again only once the text has grown by a
    good part, not once per chunk (which would take time quadratic in its size)."""
    scanned: list[int] = []
    raw_decode = json.JSONDecoder.raw_decode

    def counting(self: json.JSONDecoder, text: str, index: int = 0) -> tuple[Any, int]:
        scanned.append(len(text) - index)
        return raw_decode(self, text, index)

    monkeypatch.setattr(json.JSONDecoder, "raw_decode", counting)
    big = {"list": [{"k": index, "s": "é ] }"} for index in range(20_000)]}
    body = json.dumps([{"n": 1}, big, {"n": 2}], ensure_ascii=False).encode()
    # 1 kB chunks that each end with "}", the end of an inner object, as a network read may
    chunks: list[bytes] = []
    start = 0
    while start < len(body):
        end = body.find(b"}", start + 1000) + 1 or len(body)
        chunks.append(body[start:end])
        start = end
    assert len(chunks) > 300
    assert all(chunk.endswith(b"}") for chunk in chunks[:-1])
    response, _ = make_response(chunks, "application/json", mode)
    if mode == "sync":
        events = list(iter_session_events(response))
    else:
        events = [event async for event in aiter_session_events(response)]
    assert datas(events) == [{"n": 1}, big, {"n": 2}]
    assert sum(scanned) < 8 * len(body)


async def test_json_large_element_is_yielded_when_its_last_chunk_arrives(mode: str) -> None:
    big = {"name": "big", "text": "x" * 200_000}
    body = b"[" + json.dumps(big).encode()
    chunks = split(body, 4096)
    assert chunks[-1].endswith(b"}")
    more = (f', {{"n": {index}}}'.encode() for index in itertools.count())
    response, stream = make_response(itertools.chain(chunks, more), "application/json", mode)
    if mode == "sync":
        first = next(iter_session_events(response))
    else:
        events = aiter_session_events(response)
        first = await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]
    assert first.data == big
    assert stream.pulled == len(chunks)


async def test_json_events_before_an_error_are_delivered(mode: str, chunk: int | None) -> None:
    received: list[SessionEvent] = []
    with pytest.raises(ScoutStreamError, match="truncated"):
        await collect_events(
            b'{"events": [{"n": 1}, {"n": 2}, {"n": 3',
            "application/json",
            chunk,
            mode,
            into=received,
        )
    assert datas(received) == [{"n": 1}, {"n": 2}]


async def test_json_element_larger_than_the_limit(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "_MAX_ELEMENT_BYTES", 1000)
    small = b'[{"a": "' + b"x" * 900 + b'"}]'
    assert len(await collect_events(small, "application/json", 64, mode)) == 1
    for body in (
        b'[{"a": 1}, {"big": "' + b"x" * 5000 + b'"}]',
        b'[{"a": 1}, {"big": [' + b"1," * 2500 + b"1]}]",
        b'{"events": [1, "' + b"x" * 5000 + b'"]}',
    ):
        for chunk in (None, 64):
            with pytest.raises(ScoutStreamError, match="larger than 1000 bytes"):
                await collect_events(body, "application/json", chunk, mode)
    # the wrapper object's other values are decoded (then thrown away) under the same limit
    body = b'{"meta": {"big": "' + b"x" * 900 + b'"}, "events": [{"n": 1}]}'
    assert datas(await collect_events(body, "application/json", 64, mode)) == [{"n": 1}]
    body = b'{"meta": {"big": "' + b"x" * 5000 + b'"}, "events": [{"n": 1}]}'
    for chunk in (None, 64):
        with pytest.raises(ScoutStreamError, match="JSON value at byte 9 is larger than 1000"):
            await collect_events(body, "application/json", chunk, mode)


async def test_json_nested_too_deeply(mode: str) -> None:
    body = b"[" + b"[" * 5000 + b"]" * 5000 + b"]"
    for chunk in (None, 512):
        with pytest.raises(
            ScoutStreamError,
            match=f"nested more than {MAX_JSON_DEPTH} levels deep at byte {MAX_JSON_DEPTH + 1}",
        ):
            await collect_events(body, "application/json", chunk, mode)
    # a deep value is refused even where it would only be skipped
    body = b'{"meta": ' + b"[" * 5000 + b"]" * 5000 + b', "events": []}'
    with pytest.raises(ScoutStreamError, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
        await collect_events(body, "application/json", 512, mode)


def nested(depth: int, inner: bytes = b"1") -> bytes:
    """``inner`` inside ``depth`` levels of arrays and objects, alternating."""
    body = inner
    for level in range(depth):
        body = b'{"k": ' + body + b"}" if level % 2 else b"[" + body + b"]"
    return body


#: An object whose strings hold brackets, escaped quotes and backslashes, none of them counted.
TRICKY_STRINGS = (
    b'{"s": "' + b"[{" * 300 + rb'", "q": "\"[[[\"{{{", "b": "\\", "u": "\u005b ]]] }}}"}'
)

#: (content type, body holding the value twice, error for a value one level too deep)
NESTING_FORMATS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    (
        "application/json",
        lambda value: b"[" + value + b", " + value + b"]",
        rf"JSON body is nested more than {MAX_JSON_DEPTH} levels deep at byte \d+$",
    ),
    (
        "application/json",
        lambda value: b'{"meta": ' + value + b', "events": [' + value + b"]}",
        rf"JSON body is nested more than {MAX_JSON_DEPTH} levels deep at byte \d+$",
    ),
    (
        "application/x-ndjson",
        lambda value: value + b"\n" + value + b"\n",
        r"NDJSON line 1 is not JSON \(nested too deeply\)",
    ),
    (
        "text/event-stream",
        lambda value: b"data: " + value + b"\n\ndata: " + value + b"\n\n",
        r"SSE event 0 \(event: 'message'\) has data that is not JSON \(nested too deeply\)",
    ),
]

NESTING_IDS = ["json-array", "json-wrapper", "ndjson", "sse"]


#: (accepted value, value refused as too deep)
NESTING_CASES = {
    "limit": (nested(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH + 1)),
    # brackets, escaped quotes and backslashes in strings do not count, so that neither the
    # opening brackets of the first make it deeper nor the closing ones of the second shallower
    "strings": (
        nested(MAX_JSON_DEPTH - 1, TRICKY_STRINGS),
        b'["' + b"]}" * 300 + rb'\\", ' + nested(MAX_JSON_DEPTH) + b"]",
    ),
}


@pytest.mark.parametrize("chunk", [None, 7], ids=["whole", "chunk7"])
@pytest.mark.parametrize(("content_type", "wrap", "error"), NESTING_FORMATS, ids=NESTING_IDS)
@pytest.mark.parametrize("case", NESTING_CASES)
async def test_nesting_limit(
    mode: str,
    chunk: int | None,
    content_type: str,
    wrap: Callable[[bytes], bytes],
    error: str,
    case: str,
) -> None:
    accepted, refused = NESTING_CASES[case]
    events = await collect_events(wrap(accepted), content_type, chunk, mode)
    assert datas(events)[-1] == json.loads(accepted)
    with pytest.raises(ScoutStreamError, match=error):
        await collect_events(wrap(refused), content_type, chunk, mode)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.scout.events+json"],
)
async def test_json_content_types(mode: str, content_type: str) -> None:
    body = b'{"items": [{"name": "x"}]}'
    events = await collect_events(body, content_type, 5, mode)
    assert [(e.name, e.data) for e in events] == [("x", {"name": "x"})]


# --------------------------------------------------------------------------- sniffing

SNIFFED = [
    (b'  \n [{"name": "a"}]', "a"),
    (b'\xef\xbb\xbf\n{"items": [{"name": "a"}]}', "a"),
    (b'data: {"name": "a"}\n\n', "a"),
    (b': comment\n\ndata: {"name": "a"}\n\n', "a"),
    (b'\r\n\r\nevent: a\ndata: {"x": 1}\n\n', "a"),
    (b'id: 1\ndata: {"name": "a"}\n\n', "a"),
    (b'retry: 10\ndata: {"name": "a"}\n\n', "a"),
]


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/octet-stream"])
@pytest.mark.parametrize(("body", "name"), SNIFFED)
async def test_sniffs_the_format(
    mode: str, content_type: str | None, body: bytes, name: str
) -> None:
    for chunk in (None, 1, 3):
        events = await collect_events(body, content_type, chunk, mode)
        assert [event.name for event in events] == [name]


@pytest.mark.parametrize(
    ("content_type", "body", "shown"),
    [
        ("text/html", b"<html><body>nope</body></html>", "'<html><body>nope</body></html>'"),
        (None, b"hello world", "'hello world'"),
        ("text/plain", b"\n\ndat", "'dat'"),
        (None, b"  data without colon\n\n", "'data without colon"),
    ],
)
async def test_unsupported_content_type(
    mode: str, chunk: int | None, content_type: str | None, body: bytes, shown: str
) -> None:
    with pytest.raises(ScoutStreamError) as caught:
        await collect_events(body, content_type, chunk, mode)
    message = str(caught.value)
    assert message.startswith(f"unsupported events content type {content_type!r}")
    assert shown in message


@pytest.mark.parametrize("body", [b"", b"  \r\n\t ", b"\xef\xbb\xbf"])
async def test_unknown_type_with_an_empty_body_has_no_events(mode: str, body: bytes) -> None:
    assert await collect_events(body, "text/plain", 1, mode) == []
    assert await collect_events(body, None, None, mode) == []


# --------------------------------------------------------------------------- incremental reading


def endless_body(fmt: str) -> Iterator[bytes]:
    """A body that never ends, one event per chunk: events must be yielded as they arrive."""
    if fmt == "json":
        yield b"["
    elif fmt == "wrapped":
        yield b'{"x": [1, {"]": "["}], "events": ['
    for index in itertools.count():
        text = json.dumps({"n": index})
        if fmt == "sse":
            piece = f"data: {text}\n\n"
        elif fmt == "ndjson":
            piece = text + "\n"
        else:
            piece = ("," if index else "") + text
        yield piece.encode()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("sse", "text/event-stream"),
        ("ndjson", "application/x-ndjson"),
        ("json", "application/json"),
        ("wrapped", "application/json"),
        ("sse", None),
        ("json", None),
    ],
)
async def test_events_are_yielded_as_the_body_arrives(
    mode: str, fmt: str, content_type: str | None
) -> None:
    response, stream = make_response(endless_body(fmt), content_type, mode)
    received: list[Any] = []
    if mode == "sync":
        for event in iter_session_events(response):
            received.append(event.data)
            if len(received) == 3:
                break
    else:
        async for event in aiter_session_events(response):
            received.append(event.data)
            if len(received) == 3:
                break
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert stream.pulled <= 5


async def test_sse_messages_are_yielded_as_the_body_arrives(mode: str) -> None:
    response, stream = make_response(endless_body("sse"), "text/event-stream", mode)
    if mode == "sync":
        iterator = iter_sse(response)
        first = next(iterator)
    else:
        aiterator = aiter_sse(response)
        first = await aiterator.__anext__()
        await aiterator.aclose()  # type: ignore[attr-defined]
    assert first == SSEMessage(event="message", data='{"n": 0}')
    assert stream.pulled <= 3


# --------------------------------------------------------------------------- constant memory

EVENTS = 20_000
PAD = "the quick brown fox jumps over the lazy dog"
#: One event (~130 bytes), with ``%d`` placeholders for its index (so generating it costs little).
EVENT_TEMPLATE = json.dumps(
    {"id": "evt_%08d", "name": "block_state_updated", "data": {"i": 123456789, "text": PAD}}
).replace("123456789", "%d")


class GeneratedBody(httpx.SyncByteStream):
    """``EVENTS`` events generated on the fly in ~16 KiB chunks; counts the bytes produced."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.size = 0

    def pieces(self) -> Iterator[str]:
        if self.fmt == "json":
            yield "["
        elif self.fmt == "wrapped":
            # an irrelevant value of ~50 kB before the list: decoded, then dropped, never kept
            yield '{"object": "list", "meta": {"blobs": ['
            for index in range(1_000):
                yield ("," if index else "") + '{"s": "] } [ { , \\" ", "n": [[1], {"a": []}]}'
            yield ']}, "events": ['
        for index in range(EVENTS):
            text = EVENT_TEMPLATE % (index, index)
            if self.fmt == "sse":
                yield f"id: {index}\nevent: update\ndata: {text}\n\n"
            elif self.fmt == "ndjson":
                yield text + "\n"
            else:
                yield ("," if index else "") + text
        if self.fmt == "json":
            yield "]"
        elif self.fmt == "wrapped":
            yield '], "has_more": false}'

    def __iter__(self) -> Iterator[bytes]:
        pending: list[str] = []
        pending_size = 0
        for piece in self.pieces():
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= 16 * 1024:
                chunk = "".join(pending).encode()
                self.size += len(chunk)
                yield chunk
                pending, pending_size = [], 0
        chunk = "".join(pending).encode()
        self.size += len(chunk)
        yield chunk


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("sse", "text/event-stream"),
        ("ndjson", "application/x-ndjson"),
        ("json", "application/json"),
        ("wrapped", "application/json"),
    ],
)
def test_constant_memory(fmt: str, content_type: str) -> None:
    body = GeneratedBody(fmt)
    response = httpx.Response(200, headers={"content-type": content_type}, stream=body)
    count = 0
    last: SessionEvent | None = None
    tracemalloc.start()
    try:
        for event in iter_session_events(response):
            count += 1
            last = event
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body.size > 2_500_000  # the whole body would take 2.5 times the bound below
    assert count == EVENTS
    assert last is not None
    assert last.sequence == EVENTS - 1
    assert last.data["data"]["i"] == EVENTS - 1
    assert last.data["data"]["text"] == PAD
    assert last.id == (str(EVENTS - 1) if fmt == "sse" else f"evt_{EVENTS - 1:08d}")
    assert last.name == ("update" if fmt == "sse" else "block_state_updated")
    assert peak < 1_000_000, f"peak traced memory {peak} bytes for a {body.size}-byte body"
