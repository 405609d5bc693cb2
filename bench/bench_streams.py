"""Benchmark the stream parsers of ``django_scout.client.streams``.

Run from the repository root::

    python bench/bench_streams.py [--events N] [--chunk-size BYTES] [--rounds R]
                                  [--event-bytes BYTES] [--formats sse,ndjson,json,wrapped]
                                  [--code DIR]

For each format (SSE, NDJSON, JSON array, JSON object wrapping the array) it generates the body
lazily (never held whole in memory) and parses it with ``iter_session_events``; the SSE body is
also parsed with ``iter_sse`` and, when the ``httpx-sse`` package is installed, with its
``EventSource.iter_sse`` (the SSE parser django-scout does not use). ``--code DIR`` adds the same
cases for the ``django_scout`` package found in ``DIR`` (for instance an older version:
``git archive <commit> django_scout | tar -x -C DIR``), imported beside this tree's under another
name, so that both run in the same rounds on the same bodies. The cases run in ``R``
alternating rounds (the order rotates from round to round, so that load changes fall on every
case alike) without ``tracemalloc``; the table gives events per second as the median and the
lowest-highest of the rounds, the median CPU time per event (``time.process_time``: less
sensitive to other jobs than the rates), the peak memory traced by ``tracemalloc`` in one more
parse per case and, with ``--code``, the median over the rounds of each round's ratio of this
tree's rate to the ``--code`` one's. The machine's load is printed at the start and the end.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _history_common import load_line

from django_scout.client.streams import iter_session_events, iter_sse

Parse = Callable[[httpx.Response], Iterator[object]]

PADDING = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 2


def event(index: int, text: str = PADDING) -> dict[str, object]:
    """One realistic-looking workflow event."""
    return {
        "id": f"evt_{index:08d}",
        "name": "block_state_updated",
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {"i": index, "update_type": "partial", "update_data": {"text": text}},
    }


def template(event_bytes: int = 0) -> str:
    """``event(i)`` as JSON with ``%d`` placeholders, its text padded to about ``event_bytes``."""
    short = json.dumps(event(0))
    text = PADDING * max(1, round((event_bytes - len(short)) / len(PADDING)) + 1)
    return (
        json.dumps(event(0, text))
        .replace('"evt_00000000"', '"evt_%08d"')
        .replace('"i": 0,', '"i": %d,')
    )


#: ``event(i)`` as JSON with ``%d`` placeholders, so that generating a body costs little.
TEMPLATE = template()
assert json.loads(TEMPLATE % (7, 7)) == event(7)


def event_lines(fmt: str, count: int, pattern: str = TEMPLATE) -> Iterator[bytes]:
    """The body of ``count`` events in format ``fmt`` (each ``pattern``), piece by piece."""
    if fmt == "json":
        yield b"["
    elif fmt == "wrapped":
        yield b'{"object": "list", "events": ['
    for index in range(count):
        text = pattern % (index, index)
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

    def __init__(self, fmt: str, count: int, chunk_size: int, pattern: str = TEMPLATE) -> None:
        self.fmt = fmt
        self.count = count
        self.chunk_size = chunk_size
        self.pattern = pattern
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        pending: list[bytes] = []
        pending_size = 0
        for piece in event_lines(self.fmt, self.count, self.pattern):
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
    fmt: str, count: int, chunk_size: int, parse: Parse, pattern: str = TEMPLATE
) -> tuple[int, int, float, float]:
    """Parse one generated body; return (events, body bytes, seconds, CPU seconds)."""
    stream = GeneratedStream(fmt, count, chunk_size, pattern)
    response = httpx.Response(200, headers={"content-type": CONTENT_TYPES[fmt]}, stream=stream)
    started, cpu_started = time.perf_counter(), time.process_time()
    parsed = sum(1 for _ in parse(response))
    return parsed, stream.size, time.perf_counter() - started, time.process_time() - cpu_started


FORMATS = ("sse", "ndjson", "json", "wrapped")


def streams_from(code: Path) -> ModuleType:
    """``django_scout.client.streams`` of the package in ``code`` (as ``baseline_scout``)."""
    init = code / "django_scout" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "baseline_scout", init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no django_scout package in {code}")
    package = importlib.util.module_from_spec(spec)
    sys.modules["baseline_scout"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("baseline_scout.client.streams")


def cases(formats: list[str], code: Path | None) -> list[tuple[str, str, Parse]]:
    """(parser, format, parse function) of every case; httpx-sse's only when it is installed."""
    found: list[tuple[str, str, Parse]] = []
    if "sse" in formats:
        found.append(("iter_sse", "sse", iter_sse))
        try:
            from httpx_sse import EventSource
        except ImportError:
            print("httpx-sse is not installed: its case is skipped")
        else:
            found.append(("httpx-sse", "sse", lambda response: EventSource(response).iter_sse()))
    found += [("iter_session_events", fmt, iter_session_events) for fmt in formats]
    if code is not None:
        baseline = streams_from(code)
        print(f"'--code' rows: django_scout from {code}")
        if "sse" in formats:
            found.append(("iter_sse --code", "sse", baseline.iter_sse))
        found += [
            ("iter_session_events --code", fmt, baseline.iter_session_events) for fmt in formats
        ]
    return found


def main() -> None:
    """Parse arguments, run every case in alternating rounds, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=64 * 1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--event-bytes",
        type=int,
        default=0,
        help="pad each event's text to about this many bytes (default: none, ~280 bytes)",
    )
    parser.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help="comma-separated formats to parse (default: all of %(default)s)",
    )
    parser.add_argument(
        "--code",
        type=Path,
        help="also parse with the django_scout package found in this directory",
    )
    args = parser.parse_args()
    formats = [fmt for fmt in args.formats.split(",") if fmt]
    if not formats or set(formats) - set(FORMATS):
        parser.error(f"--formats takes some of {', '.join(FORMATS)}")

    todo = cases(formats, args.code)
    pattern = template(args.event_bytes)
    print(load_line("start"))
    print(
        f"{args.events} events of {len(pattern % (0, 0))} bytes per body, "
        f"chunks of ~{args.chunk_size} bytes, {args.rounds} rounds"
    )
    rates: list[list[float]] = [[] for _ in todo]
    cpu_costs: list[list[float]] = [[] for _ in todo]
    sizes = [0] * len(todo)
    for round_number in range(args.rounds):
        shift = round_number % len(todo)
        for index in [*range(shift, len(todo)), *range(shift)]:
            _, fmt, parse = todo[index]
            events, sizes[index], seconds, cpu = run(
                fmt, args.events, args.chunk_size, parse, pattern
            )
            assert events == args.events, (todo[index][:2], events)
            rates[index].append(events / seconds)
            cpu_costs[index].append(cpu / events * 1e6)
    print(
        f"{'parser':<27} {'format':<8} {'body MB':>8} {'events/s median (min-max)':>30} "
        f"{'MB/s':>6} {'CPU us/ev':>9} {'peak MB':>8} {'x --code':>8}"
    )
    positions = {(name, fmt): index for index, (name, fmt, _) in enumerate(todo)}
    for (name, fmt, parse), rate, cpu_cost, size in zip(todo, rates, cpu_costs, sizes, strict=True):
        tracemalloc.start()
        run(fmt, args.events, args.chunk_size, parse, pattern)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        median = statistics.median(rate)
        spread = f"{median:,.0f} ({min(rate):,.0f}-{max(rate):,.0f})"
        megabytes = size / 1e6
        # this tree's rate over the --code twin's, round by round (load changes cancel out)
        twin = positions.get((f"{name} --code", fmt))
        ratio = (
            f"{statistics.median(a / b for a, b in zip(rate, rates[twin], strict=True)):.2f}"
            if twin is not None
            else ""
        )
        print(
            f"{name:<27} {fmt:<8} {megabytes:>8.1f} {spread:>30} "
            f"{megabytes * median / args.events:>6.1f} {statistics.median(cpu_cost):>9.2f} "
            f"{peak / 1e6:>8.2f} {ratio:>8}"
        )
    print(load_line("end"))


if __name__ == "__main__":
    main()
