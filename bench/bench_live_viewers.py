"""Live viewers: the live relay under 200 concurrent viewers, beside a bare polling relay.

One uvicorn worker per configuration serves ``bench/live_viewers`` on loopback, against a
PostgreSQL database of this run's own:

* ``notify-pg``: the product's relay (``scout/live/interactions/<id>/``), ``LIVE_NOTIFY =
  "postgresql"`` (one ``LISTEN`` connection per process);
* ``notify-redis``: the same with ``LIVE_NOTIFY = "redis"`` (one pub/sub connection);
* ``poll``: the same with ``LIVE_NOTIFY = "poll"`` (each viewer reads every
  ``LIVE_POLL_INTERVAL``, 1 s by default: the SQLite mode);
* ``bare``: the yardstick, a hand-written async view that reads its row every ``--bare-poll``
  seconds (0.5) on the thread pool (``live_viewers/views.py``).

Each round, per configuration (the order rotating from round to round): a writer process
(``live_viewers/writer.py``) creates ``--rows`` accepted interactions; ``--viewers`` clients
(this process, one asyncio loop, plain sockets) connect, spread evenly over the rows; once each
has its first ``status`` message, the writer stores ``--rate`` events a second for
``--duration`` seconds through the product's event store (commit, then ``NOTIFY``/``PUBLISH``),
then ends every row ``succeeded``. Printed per round and configuration: the delay from stored
(the writer's store call returned) to delivered (a viewer read the message off its socket),
p50/p99/max over every event and viewer; events missing; the server's resident memory before
the viewers connect and at its peak; its threads and PostgreSQL connections at their peak
(sampled every 0.2 s, by ``application_name``); and its CPU time per delivered event. The
summary gives medians over the rounds (p99 with its range) and, per round, the ratio of each
configuration's figure to the bare relay's. Run from the repository root (needs PostgreSQL and
Redis on localhost):

    .venv/bin/python bench/bench_live_viewers.py [--viewers 200] [--rows 50] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIGS = {
    "notify-pg": {"BENCH_LIVE_NOTIFY": "postgresql"},
    "notify-redis": {"BENCH_LIVE_NOTIFY": "redis"},
    "poll": {"BENCH_LIVE_NOTIFY": "poll"},
    "bare": {"BENCH_LIVE_NOTIFY": "poll"},
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def load_line(label: str) -> str:
    """The machine's load average, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"{label}: load average {one:.2f} {five:.2f} {fifteen:.2f}; {os.cpu_count()} CPUs"


def free_port() -> int:
    """A TCP port on loopback nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_stat(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system), resident bytes and threads of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / float(CLOCK_TICKS)
    return cpu, int(fields[21]) * PAGE, int(fields[17])


def environment(database_url: str, config: str, args: argparse.Namespace) -> dict[str, str]:
    """The environment of a configuration's server and writer."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
        "DJANGO_SETTINGS_MODULE": "live_viewers.settings",
        "DATABASE_URL": database_url,
        "BENCH_APP_NAME": f"bench-{config}",
        "BENCH_REDIS_URL": args.redis_url if config == "notify-redis" else "",
        "BENCH_BARE_POLL": str(args.bare_poll),
        **CONFIGS[config],
    }


@dataclass
class Server:
    """One configuration's uvicorn."""

    config: str
    process: subprocess.Popen[bytes]
    port: int
    path: str


def start_server(database_url: str, config: str, args: argparse.Namespace) -> Server:
    """Start uvicorn (one worker) for ``config`` and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "uvicorn", "live_viewers.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--log-level", "warning", "--no-access-log"),
        ],
        cwd=BENCH,
        env=environment(database_url, config, args),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if process.poll() is not None:
            raise SystemExit(f"the {config} server exited with {process.returncode}")
        time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit(f"the {config} server did not start")
    path = "/bare/interactions/{}/" if config == "bare" else "/scout/live/interactions/{}/"
    return Server(config, process, port, path)


@dataclass
class Viewer:
    """One client: what it received, and when."""

    row: int
    received: list[tuple[int, int, float]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    error: str = ""


async def watch(viewer: Viewer, port: int, path: str) -> None:
    """Read one SSE stream over HTTP/1.0 (the body ends with the connection)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    except OSError as exc:
        viewer.error = str(exc)
        viewer.ready.set()
        return
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status_line = await reader.readline()
        if b" 200 " not in status_line:
            viewer.error = status_line.decode(errors="replace").strip() or "no answer"
            return
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        name, event_id = "", -1
        while line := await reader.readline():
            if line == b"\n":
                if name == "scout_event":
                    viewer.received.append((viewer.row, event_id, time.monotonic()))
                elif name == "status":
                    viewer.ready.set()
                elif name == "end":
                    viewer.ended = True
                    return
                name, event_id = "", -1
            elif line.startswith(b"event: "):
                name = line[7:].strip().decode()
            elif line.startswith(b"id: "):
                event_id = int(line[4:])
    except (OSError, ValueError) as exc:
        viewer.error = str(exc)
    finally:
        viewer.ready.set()
        writer.close()
        with suppress(Exception):
            await writer.wait_closed()


@dataclass
class Round:
    """One configuration's figures in one round."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    delivered: int
    missing: int
    rss_idle_mb: float
    rss_peak_mb: float
    threads_peak: int
    connections_peak: int
    cpu_us_per_event: float
    writer_late_s: float
    errors: int
    error_sample: str = ""


def server_connections(database_url: str, config: str) -> int:
    """The PostgreSQL connections the configuration's server holds now."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (f"bench-{config}",),
        ).fetchone()
    return int(row[0]) if row else 0


async def run_round(server: Server, database_url: str, args: argparse.Namespace) -> Round:
    """One round of one configuration (see the module docs)."""
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "live_viewers.writer", "--rows", str(args.rows), "--rate", str(args.rate)),
        *("--duration", str(args.duration), "--event-bytes", str(args.event_bytes)),
        cwd=BENCH,
        env={
            **environment(database_url, server.config, args),
            "BENCH_APP_NAME": "bench-writer",
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    rows = json.loads(await writer.stdout.readline())["rows"]
    pid = server.process.pid
    _, rss_idle, _ = process_stat(pid)
    viewers = [Viewer(n % len(rows)) for n in range(args.viewers)]
    tasks = [
        asyncio.create_task(watch(v, server.port, server.path.format(rows[v.row]))) for v in viewers
    ]
    await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in viewers)), 60)

    peaks = {"rss": rss_idle, "threads": 0, "connections": 0}

    async def sample() -> None:
        while True:
            _, rss, threads = process_stat(pid)
            connections = await asyncio.to_thread(server_connections, database_url, server.config)
            peaks["rss"] = max(peaks["rss"], rss)
            peaks["threads"] = max(peaks["threads"], threads)
            peaks["connections"] = max(peaks["connections"], connections)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    cpu_before, _, _ = process_stat(pid)
    writer.stdin.write(b"go\n")
    await writer.stdin.drain()
    result = json.loads(await writer.stdout.readline())
    await writer.wait()
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), 15 + 2 * args.bare_poll)
    cpu_after, _, _ = process_stat(pid)
    sampler.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, sampler, return_exceptions=True)

    stored = {(row, sequence): at for row, sequence, at in result["stored"]}
    per_row: dict[int, int] = {}
    for row, _, _ in result["stored"]:
        per_row[row] = per_row.get(row, 0) + 1
    delays = sorted(
        (at - stored[row, sequence]) * 1000
        for v in viewers
        for row, sequence, at in v.received
        if (row, sequence) in stored
    )
    expected = sum(per_row.get(v.row, 0) for v in viewers)
    delivered = len(delays)
    return Round(
        p50_ms=percentile(delays, 50),
        p99_ms=percentile(delays, 99),
        max_ms=delays[-1] if delays else float("nan"),
        delivered=delivered,
        missing=expected - delivered,
        rss_idle_mb=rss_idle / 2**20,
        rss_peak_mb=peaks["rss"] / 2**20,
        threads_peak=peaks["threads"],
        connections_peak=peaks["connections"],
        cpu_us_per_event=(cpu_after - cpu_before) * 1e6 / max(delivered, 1),
        writer_late_s=float(result["late_s"]),
        errors=sum(1 for v in viewers if v.error),
        error_sample=next((v.error for v in viewers if v.error), ""),
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of sorted ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    rank = max(0, min(len(values) - 1, round(pct / 100 * len(values) + 0.5) - 1))
    return values[rank]


def create_database(admin_url: str) -> str:
    """Create and migrate this run's database; returns its URL."""
    name = f"bench_live_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
    env |= {"DJANGO_SETTINGS_MODULE": "live_viewers.settings", "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=BENCH,
        env=env,
        check=True,
    )
    return url


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database :func:`create_database` made."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(series: dict[str, list[Round]], baseline: str) -> None:
    """The summary table: medians over the rounds, and ratios to ``baseline`` within rounds."""
    print()
    print(
        "| relay | p50 ms | p99 ms median (range) | max ms | p99 / bare | missing | "
        "RSS idle → peak MB | threads peak | PG connections peak | CPU µs/event | CPU / bare |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = series.get(baseline, [])
    for config, rounds in series.items():

        def med(name: str, rounds: list[Round] = rounds) -> float:
            return float(statistics.median(getattr(r, name) for r in rounds))

        p99s = [r.p99_ms for r in rounds]
        if base and config != baseline:
            p99_ratio = statistics.median(
                r.p99_ms / b.p99_ms for r, b in zip(rounds, base, strict=True)
            )
            cpu_ratio = statistics.median(
                r.cpu_us_per_event / b.cpu_us_per_event for r, b in zip(rounds, base, strict=True)
            )
            ratios = f"{p99_ratio:.2f}x", f"{cpu_ratio:.2f}x"
        else:
            ratios = ("1", "1") if config == baseline else ("-", "-")
        print(
            f"| {config} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} "
            f"({min(p99s):.1f}-{max(p99s):.1f}) | {med('max_ms'):.0f} | {ratios[0]} | "
            f"{sum(r.missing for r in rounds)} | {med('rss_idle_mb'):.0f} → "
            f"{med('rss_peak_mb'):.0f} | {max(r.threads_peak for r in rounds)} | "
            f"{max(r.connections_peak for r in rounds)} | {med('cpu_us_per_event'):.0f} | "
            f"{ratios[1]} |"
        )


async def run(args: argparse.Namespace) -> None:
    """Every round of every configuration."""
    configs = args.configs.split(",")
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configurations: {', '.join(sorted(unknown))}")
    print(load_line("start"), flush=True)
    database_url = create_database(args.postgres_url)
    series: dict[str, list[Round]] = {config: [] for config in configs}
    with ExitStack() as stack:
        stack.callback(drop_database, args.postgres_url, database_url)
        servers = {}
        for config in configs:
            servers[config] = server = start_server(database_url, config, args)
            stack.callback(server.process.wait, 10)
            stack.callback(server.process.terminate)
        for number in range(args.rounds):
            shift = number % len(configs)
            for config in configs[shift:] + configs[:shift]:
                result = await run_round(servers[config], database_url, args)
                series[config].append(result)
                print(
                    f"  round {number + 1} {config:<12} p50 {result.p50_ms:6.1f} ms  "
                    f"p99 {result.p99_ms:6.1f} ms  max {result.max_ms:6.0f} ms  "
                    f"delivered {result.delivered}  missing {result.missing}  "
                    f"RSS {result.rss_idle_mb:.0f}→{result.rss_peak_mb:.0f} MB  "
                    f"threads {result.threads_peak}  PG conns {result.connections_peak}  "
                    f"CPU {result.cpu_us_per_event:.0f} µs/event  "
                    f"writer late {result.writer_late_s:.2f} s  errors {result.errors} "
                    f"{result.error_sample!r}  "
                    f"{load_line('load')}",
                    flush=True,
                )
    report(series, "bare")
    print(load_line("end"), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--rows", type=int, default=50, help="interactions watched")
    parser.add_argument("--rate", type=float, default=100, help="events stored a second, in all")
    parser.add_argument("--duration", type=float, default=10, help="seconds of writing a round")
    parser.add_argument("--event-bytes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="notify-pg,notify-redis,poll,bare")
    parser.add_argument("--bare-poll", type=float, default=0.5)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
