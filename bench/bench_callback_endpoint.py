"""Callback endpoint throughput: the product's view beside a bare Django view, same gunicorn.

One gunicorn (2 sync workers by default) serves ``bench/bare_callback``: the product's callback
view at ``/scout/callbacks/<id>/`` and, at ``/bare/callback/``, a bare view that verifies the
same HMAC signature and inserts one row through the ORM. ``wrk`` loads each in turn, in
alternating rounds (product first in odd rounds, bare first in even ones), with callbacks
signed beforehand, each with its own ``callback_event_id`` (so every request is a new
delivery).

Printed per database and view: requests per second (median and range over the rounds), p50 and
p99 latency (medians over the rounds), the product/bare ratio (the median over the rounds of
the ratio within each round, so that load from other processes between rounds cancels out),
and the CPU time each request costs the server's workers, the database's backends (PostgreSQL)
and wrk — on a busy shared machine, that is the figure least disturbed by the neighbours.

Databases: PostgreSQL (its own database, created and dropped) with Redis as the broker, and a
SQLite file (WAL) with, by default, the same Redis. The product enqueues processing to a
dedicated queue that is purged after every round, so no worker ever runs it. Run from the
repository root (needs ``wrk``, PostgreSQL and Redis on localhost):

    .venv/bin/python bench/bench_callback_endpoint.py [--databases postgres,sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT = BENCH / "bare_callback"
SECRET = "bench-signing-secret"
QUEUE = "django-scout-bench-endpoint"
INTERACTION_ID = "6f1c9a52-6a1e-4a43-9a51-0d1f2b7c8e90"
VIEWS = {"product": f"/scout/callbacks/{INTERACTION_ID}/", "bare": "/bare/callback/"}

sys.path.insert(0, str(ROOT))
from django_scout.signing import sign  # noqa: E402


@dataclass
class Round:
    """One wrk run's figures; ``cpu_ms`` is per request (server + database + wrk)."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrapped: int
    cpu_ms: float = 0.0


@dataclass
class Series:
    """The rounds of one view on one database."""

    rounds: list[Round] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(r, name) for r in self.rounds)


def load_line(label: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"{label}: load average {one:.2f} {five:.2f} {fifteen:.2f}; {os.cpu_count()} CPUs"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / float(CLOCK_TICKS)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def database_backends(database_url: str) -> list[int]:
    """PostgreSQL's server processes serving ``database_url`` (the workers' connections)."""
    if not database_url.startswith("postgres"):
        return []
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_bodies(path: Path, count: int) -> None:
    """``count`` signed callbacks, one per line: ``<signature>\\t<body>``, signed now."""
    timestamp = int(time.time())
    with path.open("w") as out:
        for _ in range(count):
            body = json.dumps(
                {
                    "callback_event_id": f"evt_{uuid.uuid4().hex}",
                    "session_id": "sess_bench",
                    "status": "succeeded",
                    "completed_at": "2026-03-05T14:30:00Z",
                    "events_url": "https://api.scoutos.test/v1/agent-sessions/sess_bench/events",
                }
            )
            out.write(f"{sign(body.encode(), SECRET, timestamp)}\t{body}\n")


def run_wrk(
    args: argparse.Namespace, url: str, duration: int, workdir: Path, pids: Sequence[int] = ()
) -> Round:
    """Load ``url`` for ``duration`` seconds; ``pids`` are the processes whose CPU counts."""
    bodies = workdir / "bodies.txt"
    write_bodies(bodies, int(args.max_rate * duration))
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(PROJECT / "sign.lua"),
        url,
        "--",
        str(bodies),
        str(args.threads),
    ]
    served = cpu_seconds(pids)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    served = cpu_seconds(pids) - served
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    load = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    requests = max(1, figures["requests"])
    return Round(
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["status_errors"] + figures["socket_errors"],
        wrapped=figures["wrapped"],
        cpu_ms=1000 * (served + load) / requests,
    )


def environment(database_url: str, broker_url: str, code: Path | None) -> dict[str, str]:
    """The servers' environment; ``code`` (a directory holding ``django_scout``) comes first."""
    paths = [BENCH, *([code] if code else []), ROOT]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bare_callback.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "BENCH_QUEUE": QUEUE,
        "PYTHONPATH": os.pathsep.join(str(path) for path in paths),
    }


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """Create the (empty) database ``url`` names, yield ``url``, drop it afterwards."""
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        yield f"sqlite:///{directory / 'db.sqlite3'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def gunicorn(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """A running gunicorn serving the bench project; yields its base URL and its pid."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                *("--workers", str(workers), "--worker-class", "sync"),
                "bare_callback.wsgi:application",
            ],
            cwd=BENCH,  # not the repository root: ``-m`` puts the working directory first
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def purge_queue(broker_url: str) -> int:
    """Drop what the product enqueued (kombu keeps a Redis queue as a list of that name)."""
    if not broker_url.startswith("redis://"):
        return 0
    client = redis.Redis.from_url(broker_url)
    try:
        count = int(client.llen(QUEUE))
        client.delete(QUEUE)
        return count
    finally:
        client.close()


def bench_database(
    args: argparse.Namespace, label: str, database_url: str, broker_url: str
) -> dict[str, Series]:
    env = environment(database_url, broker_url, args.code)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--run-syncdb", "--no-input", "-v", "0"],
        cwd=BENCH,
        env=env,
        check=True,
    )
    series = {view: Series() for view in VIEWS}
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        workdir = Path(tmp)
        with gunicorn(env, args.workers, workdir / "gunicorn.log") as (base, server):
            for path in VIEWS.values():  # warm both workers' imports, caches and connections
                run_wrk(args, base + path, args.warmup, workdir)
            purge_queue(broker_url)
            # Persistent connections: the same backends serve every round.
            pids = [server, *children(server), *database_backends(database_url)]
            for number in range(args.rounds):
                order = list(VIEWS) if number % 2 == 0 else list(reversed(VIEWS))
                for view in order:
                    result = run_wrk(args, base + VIEWS[view], args.duration, workdir, pids)
                    series[view].rounds.append(result)
                    enqueued = purge_queue(broker_url)
                    note = f", {enqueued} enqueued" if view == "product" and enqueued else ""
                    print(
                        f"  {label:<10} round {number + 1} {view:<8} {result.rps:7.0f} req/s  "
                        f"p50 {result.p50_ms:5.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                        f"cpu {result.cpu_ms:4.2f} ms/req  load {os.getloadavg()[0]:4.2f}  "
                        f"errors {result.errors}{note}",
                        flush=True,
                    )
            log = (workdir / "gunicorn.log").read_text(errors="replace")
            if os.environ.get("BENCH_SHOW_LOG"):
                print(log[-4000:])
            if "Traceback" in log:
                print(f"  gunicorn logged errors:\n{log[-3000:]}")
    return series


def summary(label: str, series: dict[str, Series]) -> list[str]:
    """Table rows; the ratios are medians over rounds of product/bare within each round."""
    pairs = list(zip(series["product"].rounds, series["bare"].rounds, strict=True))
    ratios = sorted(product.rps / bare.rps for product, bare in pairs)
    cpu_ratios = sorted(bare.cpu_ms / product.cpu_ms for product, bare in pairs)
    rows = []
    for view in VIEWS:
        s = series[view]
        rps = [r.rps for r in s.rounds]
        repeats = sum(r.wrapped for r in s.rounds)
        ratio, cpu_ratio = "1", "1"
        if view == "product":
            ratio = f"**{statistics.median(ratios):.2f}x** ({ratios[0]:.2f}-{ratios[-1]:.2f})"
            cpu_ratio = f"{statistics.median(cpu_ratios):.2f}x"
        rows.append(
            f"| {label} | {view} | {s.median('rps'):.0f} ({min(rps):.0f}-{max(rps):.0f}) | "
            f"{s.median('p50_ms'):.2f} | {s.median('p99_ms'):.2f} | {ratio} | "
            f"{s.median('cpu_ms'):.2f} | {cpu_ratio} | {sum(r.errors for r in s.rounds)}"
            + (f" ({repeats} repeated bodies)" if repeats else "")
            + " |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per view, unmeasured")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument(
        "--max-rate", type=int, default=5000, help="signed bodies prepared per second of a run"
    )
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/bench_ingest")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--sqlite-broker-url", default=None, help="default: --broker-url")
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="serve the django_scout package found in this directory (e.g. an export of main)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    print(load_line("start"))
    if args.code:
        print(f"django_scout from {args.code}")
    print(
        f"gunicorn {args.workers} sync workers; wrk -t{args.threads} -c{args.connections}, "
        f"{args.rounds} rounds of {args.duration:g} s per view"
    )
    rows: list[str] = []
    for name in args.databases.split(","):
        if name == "postgres":
            broker = args.broker_url
            with postgres_database(args.postgres_url) as url:
                series = bench_database(args, "PostgreSQL", url, broker)
            rows += summary(f"PostgreSQL + {broker.split('://')[0]}", series)
        elif name == "sqlite":
            broker = args.sqlite_broker_url or args.broker_url
            with sqlite_database() as url:
                series = bench_database(args, "SQLite", url, broker)
            rows += summary(f"SQLite (WAL) + {broker.split('://')[0]}", series)
        else:
            sys.exit(f"unknown database {name!r} (postgres, sqlite)")
    print()
    print(
        "| database + broker | view | req/s median (range) | p50 ms | p99 ms "
        "| req/s product/bare | CPU ms/req | CPU bare/product | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(load_line("end"))


if __name__ == "__main__":
    main()
