"""Benchmark the stream parsers of ``django_scout.client.streams``.

Run from the repository root::

    python bench/bench_streams.py [--events N] [--chunk-size BYTES]

For each format (SSE, NDJSON, JSON array, JSON object wrapping the array) it generates the body
lazily (never held whole in memory), parses it with ``iter_session_events`` (and the SSE body also
with ``iter_sse``), and prints events per second and the peak memory traced by ``tracemalloc``
while parsing. Speed is measured in a run without ``tracemalloc`` (which slows Python down); the
memory figure comes from a second run with it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_scout.client.streams import iter_session_events, iter_sse

PADDING = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 2


def event(index: int) -> dict[str, object]:
    """One realistic-looking workflow event."""
    return {
        "id": f"evt_{index:08d}",
        "name": "block_state_updated",
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {"i": index, "update_type": "partial", "update_data": {"text": PADDING}},
    }


#: ``event(i)`` as JSON with ``%d`` placeholders, so that generating a body costs little.
TEMPLATE = (
    json.dumps(event(0)).replace('"evt_00000000"', '"evt_%08d"').replace('"i": 0,', '"i": %d,')
)
assert json.loads(TEMPLATE % (7, 7)) == event(7)


def event_lines(fmt: str, count: int) -> Iterator[bytes]:
    """The body of ``count`` events in format ``fmt``, piece by piece."""
    if fmt == "json":
        yield b"["
    elif fmt == "wrapped":
        yield b'{"object": "list", "events": ['
    for index in range(count):
        text = TEMPLATE % (index, index)
        if fmt == "sse":
            yield f"id: {index}\ndata: {text}\n\n".encode()
        elif fmt == "ndjson":
            yield f"{text}\n".encode()
        else:
            yield (text if index == 0 else "," + text).encode()
    if fmt == "json":
        yield b"]"
    elif fmt == "wrapped":
        yield b'], "has_more": false}'


class GeneratedStream(httpx.SyncByteStream):
    """A response body generated on the fly, in chunks of about ``chunk_size`` bytes."""

    def __init__(self, fmt: str, count: int, chunk_size: int) -> None:
        self.fmt = fmt
        self.count = count
        self.chunk_size = chunk_size
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        pending: list[bytes] = []
        pending_size = 0
        for piece in event_lines(self.fmt, self.count):
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= self.chunk_size:
                self.size += pending_size
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            self.size += pending_size
            yield b"".join(pending)


CONTENT_TYPES = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "wrapped": "application/json",
}


def run(
    fmt: str, count: int, chunk_size: int, parse: Callable[[httpx.Response], Iterator[object]]
) -> tuple[int, int, float]:
    """Parse one generated body; return (events, body bytes, seconds)."""
    stream = GeneratedStream(fmt, count, chunk_size)
    response = httpx.Response(200, headers={"content-type": CONTENT_TYPES[fmt]}, stream=stream)
    started = time.perf_counter()
    parsed = sum(1 for _ in parse(response))
    return parsed, stream.size, time.perf_counter() - started


def main() -> None:
    """Parse arguments, run every format, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=64 * 1024)
    args = parser.parse_args()

    cases: list[tuple[str, str, Callable[[httpx.Response], Iterator[object]]]] = [
        ("iter_sse", "sse", iter_sse),
        ("iter_session_events", "sse", iter_session_events),
        ("iter_session_events", "ndjson", iter_session_events),
        ("iter_session_events", "json", iter_session_events),
        ("iter_session_events", "wrapped", iter_session_events),
    ]
    print(f"{args.events} events per body, chunks of ~{args.chunk_size} bytes")
    print(
        f"{'parser':<20} {'format':<8} {'body MB':>8} {'events/s':>10} {'MB/s':>7} {'peak MB':>8}"
    )
    for name, fmt, parse in cases:
        events, size, seconds = run(fmt, args.events, args.chunk_size, parse)
        tracemalloc.start()
        run(fmt, args.events, args.chunk_size, parse)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{name:<20} {fmt:<8} {size / 1e6:>8.1f} {events / seconds:>10,.0f} "
            f"{size / 1e6 / seconds:>7.1f} {peak / 1e6:>8.2f}"
        )


if __name__ == "__main__":
    main()
