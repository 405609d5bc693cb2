"""How fast the callback endpoint answers Scout while the Celery broker is down (issue 7).

Scout gives up on a callback after 10 seconds. The view stores the delivery and enqueues its
processing after the commit through ``TaskPublisher``, which waits at most ``PUBLISH_TIMEOUT``
for the broker and then opens a breaker for ``PUBLISH_RETRY_AFTER`` seconds. This script posts
signed callbacks through Django's test client, in alternating rounds within one run, with this
process's publishing pointed at:

- ``up``: the real broker (``CELERY_BROKER_URL``, else ``redis://127.0.0.1:6379/0``; skipped
  with a note when it is unreachable), each round after one callback that warms the connection
  (as in a live web process); the very first of those, the process's first publish, is a row
  of its own;
- ``refused``: a closed loopback port (a stopped Redis);
- ``hung``: a loopback socket that accepts connections and never answers (a frozen Redis).

Every outage round starts with the breaker closed, so its first callback pays the bounded wait
and is reported apart from the rest of the round (breaker open: the broker is not tried). The
"before" rows repeat both outages with the publisher bypassed by a plain
``apply_async(retry=False)`` on the request's thread, as the code did before; each hung one is
cut off after ``--hung-cap`` seconds. Optionally (on by default) the same through gunicorn with
2 sync workers and ``--clients`` concurrent callbacks, counting answers past Scout's limit.

The database is PostgreSQL when ``DATABASE_URL`` is set (a test database of its own), else a
temporary SQLite *file*: the cut-off requests run on threads of their own and gunicorn's workers
are other processes, and an in-memory database is visible to neither. Tasks go to a queue of
their own (``django-scout-bench-outage``), purged at the end. Run from the repository root:

    .venv/bin/python bench/bench_broker_outage.py [--rounds N --per-round M] [--no-server]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import (
    ROOT,
    callback_body,
    create_database,
    create_target,
    drop_database,
    install_publisher,
    percentile,
    post_callback,
    publisher_bypassed,
    purge,
    setup_django,
    signed_headers,
)

QUEUE = "django-scout-bench-outage"
REAL_BROKER = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
SCOUT_LIMIT = 10.0
OUTAGES = ("refused", "hung")
setup_django(QUEUE, REAL_BROKER)

import httpx  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402

from django_scout.conf import scout_settings  # noqa: E402
from django_scout.services.publishing import TaskPublisher  # noqa: E402
from tests import celery_app  # noqa: E402
from tests.helpers import running_server  # noqa: E402

# --- the broker this process publishes to ------------------------------------------------------


def broker_problem() -> str | None:
    """Why the real broker cannot serve as the ``up`` baseline, or None."""
    parts = urlsplit(REAL_BROKER)
    if parts.scheme not in ("redis", "rediss", "amqp", "amqps"):
        return f"CELERY_BROKER_URL={REAL_BROKER} is not a network broker"
    default_port = 6379 if parts.scheme.startswith("redis") else 5672
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 2)
    except OSError as exc:
        return f"{parts.scheme}://{parts.netloc} is unreachable ({exc})"
    return None


def publish_to(url: str | None) -> None:
    """Point this process's publishing at ``url`` (``None``: the real broker).

    Celery reads ``broker_url`` from the environment first, so the write URL is what changes;
    the pools are dropped so that the next publish connects again.
    """
    app = celery_app.app
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    app.conf["broker_write_url"] = url


class CountingPublisher(TaskPublisher):
    """The product's publisher, counting the publishes the broker took."""

    def __init__(self) -> None:
        super().__init__()
        self.published = 0

    def publish(self, task: Any, args: Sequence[Any]) -> bool:
        ok = super().publish(task, args)
        self.published += ok
        return ok


@dataclass
class Broker:
    """Where this process publishes, and the (fresh) publisher callbacks enqueue through."""

    url: str
    publisher: CountingPublisher


@contextmanager
def broker(kind: str) -> Iterator[Broker]:
    """Publish to the ``up``, ``refused`` or ``hung`` broker through a fresh publisher.

    Fresh: breaker closed and its threads idle, as in a web process when an outage starts (a
    reused one could still have its threads busy with the previous condition's publishes, see
    bench/README.md). Closing the hung listener at the end resets the connections it left
    waiting, so no publish stays blocked on it afterwards.
    """
    listener: socket.socket | None = None
    url = REAL_BROKER
    if kind != "up":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        if kind == "hung":
            listener.listen(128)
        else:
            listener.close()  # nothing listens on the port: connections are refused
    publish_to(None if kind == "up" else url)
    fresh = CountingPublisher()
    saved = install_publisher(fresh)
    try:
        yield Broker(url, fresh)
    finally:
        install_publisher(saved)
        publish_to(None)
        if listener is not None:
            listener.close()


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Series:
    """One row of the table: answer times in seconds per round (``inf``: cut off)."""

    label: str
    rounds: dict[int, list[float]] = field(default_factory=dict)
    #: How many of these callbacks had their processing published to the broker.
    enqueued: int = 0

    def add(self, round_index: int, seconds: float) -> None:
        self.rounds.setdefault(round_index, []).append(seconds)

    @property
    def values(self) -> list[float]:
        return [value for values in self.rounds.values() for value in values]


def bounded_post(url: str, body: bytes, cap: float, stragglers: list[threading.Thread]) -> float:
    """Post on a thread of its own and wait at most ``cap`` seconds; ``inf`` when cut off."""
    outcome: list[float | BaseException] = []

    def run() -> None:
        try:
            outcome.append(post_callback(Client(), url, body))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="bench-cut-off-post", daemon=True)
    thread.start()
    thread.join(cap)
    if thread.is_alive():
        stragglers.append(thread)
        return math.inf
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def run_rounds(args: argparse.Namespace, path: str, with_up: bool) -> tuple[list[Series], int]:
    """The in-process rounds: the table's rows, and how many messages the real broker took."""
    client = Client()
    up = Series("broker up (Redis)")
    cold = Series("broker up: this process's first callback (cold)")
    first = {kind: Series(f"{kind}: first callback (breaker closed)") for kind in OUTAGES}
    steady = {kind: Series(f"{kind}: later callbacks (breaker open)") for kind in OUTAGES}
    before = {
        "refused": Series("before, refused: apply_async inline"),
        "hung": Series(f"before, hung: apply_async inline (cut off at {args.hung_cap:g} s)"),
    }
    quota = {"refused": args.before_refused, "hung": args.before_hung}
    kinds = ["up", *OUTAGES] if with_up else list(OUTAGES)
    stragglers: list[threading.Thread] = []
    messages = 0
    for r in range(args.rounds):
        started = time.monotonic()
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
        for kind in order:
            with broker(kind) as target:
                publisher = target.publisher
                if kind == "up":
                    # Apart: a live web process already holds a broker connection.
                    seconds = post_callback(client, path, callback_body())
                    warm = publisher.published
                    if r == 0:
                        cold.add(r, seconds)
                        cold.enqueued += warm
                    for _ in range(args.per_round):
                        up.add(r, post_callback(client, path, callback_body()))
                    up.enqueued += publisher.published - warm
                    messages += publisher.published
                    continue
                first[kind].add(r, post_callback(client, path, callback_body()))
                after_first = publisher.published
                first[kind].enqueued += after_first
                if not publisher.is_open:
                    print(f"  note: the breaker is still closed after a {kind} publish")
                for _ in range(args.per_round - 1):
                    steady[kind].add(r, post_callback(client, path, callback_body()))
                steady[kind].enqueued += publisher.published - after_first
                if r < quota[kind]:
                    with publisher_bypassed() as inline:
                        if kind == "hung":
                            seconds = bounded_post(path, callback_body(), args.hung_cap, stragglers)
                        else:
                            seconds = post_callback(client, path, callback_body())
                    before[kind].add(r, seconds)
                    before[kind].enqueued += inline.published
        print(
            f"  round {r + 1}/{args.rounds} ({', '.join(order)}): "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
    for thread in stragglers:  # their hung sockets were reset when the listener closed
        thread.join(10)
    if any(thread.is_alive() for thread in stragglers):
        print("  note: a cut-off request is still blocked after its hung broker went away")
    rows = [up, cold] if with_up else []
    for kind in OUTAGES:
        rows += [first[kind], steady[kind]]
    rows += [before[kind] for kind in OUTAGES if before[kind].values]
    return rows, messages


# --- through gunicorn --------------------------------------------------------------------------


def gunicorn(fd: int) -> list[str]:
    """gunicorn with 2 sync workers serving ``tests.settings`` on the listening socket ``fd``."""
    return [
        *("-m", "gunicorn", "--bind", f"fd://{fd}", "--workers", "2", "--worker-class", "sync"),
        "_outage_wsgi:application",
    ]


def burst(
    base_url: str, path: str, clients: int, body: bytes | None = None
) -> tuple[list[float], list[str]]:
    """``clients`` signed callbacks posted at once; seconds to each answer and its status.

    New callbacks, or all ``body`` (a repeat, which is stored without enqueueing anything).
    """
    barrier = threading.Barrier(clients)
    seconds = [math.nan] * clients
    statuses = ["?"] * clients

    def post(index: int) -> None:
        payload = body or callback_body()
        headers = {**signed_headers(payload), "Content-Type": "application/json"}
        with httpx.Client(base_url=base_url, timeout=180, trust_env=False) as client:
            barrier.wait()
            started = time.perf_counter()
            try:
                response = client.post(path, content=payload, headers=headers)
                statuses[index] = str(response.status_code)
            except httpx.HTTPError as exc:
                statuses[index] = type(exc).__name__
            seconds[index] = time.perf_counter() - started

    threads = [threading.Thread(target=post, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds, statuses


def run_server(
    args: argparse.Namespace, path: str, database_url: str, log_path: Path, with_up: bool
) -> None:
    """The gunicorn part: answers past Scout's limit with the broker down, now and before.

    Each run's enqueued count is what its queue held afterwards (purged before the next run).
    """
    print(
        f"\nThrough gunicorn (2 sync workers, tests.settings), {args.clients} callbacks posted "
        "at once; each worker has its own breaker:"
    )
    print(
        f"| broker, enqueue | n | median | max | > {SCOUT_LIMIT:g} s | statuses | wall "
        "| enqueued |\n|---|---|---|---|---|---|---|---|"
    )
    repeat = callback_body()  # stored now, so that posting it again enqueues nothing
    with broker("refused"):
        post_callback(Client(), path, repeat)
    runs = [("refused", "publisher"), ("hung", "publisher"), ("refused", "before: inline")]
    if with_up:
        runs.insert(0, ("up", "publisher"))
    for kind, how in runs:
        with broker(kind) as target:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": database_url,
                "CELERY_BROKER_URL": target.url,
                "SCOUT_TEST_EAGER": "0",
                "SCOUT_TEST_QUEUE": QUEUE,
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
                "BENCH_BYPASS_PUBLISHER": "1" if how.startswith("before") else "0",
            }
            with running_server(gunicorn, env, log_path) as base_url:
                # Warm both workers (Django's first request is slow) without touching the broker.
                for _ in range(2):
                    burst(base_url, path, 4, repeat)
                started = time.monotonic()
                seconds, statuses = burst(base_url, path, args.clients)
                wall = time.monotonic() - started
        enqueued = f"{purge(QUEUE)} of {len(seconds)}" if with_up else "?"
        late = sum(value > SCOUT_LIMIT for value in seconds)
        counts = ", ".join(f"{s} x{statuses.count(s)}" for s in sorted(set(statuses)))
        print(
            f"| {kind}, {how} | {len(seconds)} | {fmt(statistics.median(seconds))} | "
            f"{fmt(max(seconds))} | {late} of {len(seconds)} | {counts} | {wall:.1f} s | "
            f"{enqueued} |",
            flush=True,
        )
    print(
        "(before, hung: not run; each answer would wait until gunicorn's worker timeout, 30 s by "
        "default, killed the worker.)"
    )


# --- report ------------------------------------------------------------------------------------


def fmt(seconds: float, cap: float = math.inf) -> str:
    """``12.3 ms`` or ``6.09 s``; ``> cap s`` for a cut-off (infinite) value."""
    if math.isinf(seconds):
        return f"> {cap:g} s"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def print_table(series: Sequence[Series], cap: float) -> None:
    """n, median, p90, p99, max, per-round median range and median ratio to broker up."""
    baseline = statistics.median(series[0].values) if series[0].label.startswith("broker up") else 0
    print(
        "| condition | n | median | p90 | p99 | max | per-round medians | median / up median "
        "| enqueued |\n|---|---|---|---|---|---|---|---|---|"
    )
    for row in series:
        values = row.values
        median = statistics.median(values)
        per_round = [statistics.median(v) for v in row.rounds.values()]
        spread = f"{fmt(min(per_round), cap)} to {fmt(max(per_round), cap)}"
        if not baseline:
            ratio = "-"
        elif math.isinf(median):
            ratio = f"> {cap / baseline:,.0f}x"
        else:
            ratio = f"{median / baseline:,.1f}x"
        cells = [median, percentile(values, 0.9), percentile(values, 0.99), max(values)]
        print(
            f"| {row.label} | {len(values)} | {' | '.join(fmt(c, cap) for c in cells)} | "
            f"{spread} | {ratio} | {row.enqueued} of {len(values)} |"
        )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (8)")
    parser.add_argument("--per-round", type=int, default=30, help="callbacks per condition (30)")
    parser.add_argument("--before-refused", type=int, default=3, metavar="N", help="(3, ~6 s each)")
    parser.add_argument("--before-hung", type=int, default=2, metavar="N", help="(2)")
    parser.add_argument("--hung-cap", type=float, default=15.0, metavar="SECONDS", help="(15)")
    parser.add_argument("--clients", type=int, default=20, help="gunicorn part's callbacks (20)")
    parser.add_argument("--no-server", action="store_true", help="skip the gunicorn part")
    args = parser.parse_args()
    logging.getLogger("django_scout").disabled = True  # the outages' errors, by design
    settings = scout_settings()
    problem = broker_problem()
    tmp = Path(tempfile.mkdtemp(prefix="scout-bench-outage-"))
    sqlite_file = tmp / "bench.sqlite3"
    old_name = create_database(sqlite_file)
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{sqlite_file}"
    else:
        original = urlsplit(os.environ["DATABASE_URL"])
        database_url = original._replace(path=f"/{connection.settings_dict['NAME']}").geturl()
    print(
        f"{date.today()}, Python {sys.version.split()[0]}, {load()}\n"
        f"database: {connection.vendor} ({connection.settings_dict['NAME']}); "
        f"broker up: {problem or REAL_BROKER}; queue {QUEUE}\n"
        f"PUBLISH_TIMEOUT={settings.PUBLISH_TIMEOUT} s, "
        f"PUBLISH_RETRY_AFTER={settings.PUBLISH_RETRY_AFTER} s",
        flush=True,
    )
    if problem:
        print(f"  skipping the broker-up baseline: {problem}")
    started = time.monotonic()
    try:
        path = create_target()
        series, published = run_rounds(args, path, with_up=problem is None)
        print()
        print_table(series, args.hung_cap)
        if not problem:
            print(
                f"\nThe real broker's {QUEUE} queue held {purge(QUEUE)} messages (purged), "
                f"{published} expected: the up callbacks' and one warm-up callback a round."
            )
        print(
            "\nEach outage round starts with the breaker closed: its first callback waits up to "
            f"PUBLISH_TIMEOUT ({settings.PUBLISH_TIMEOUT} s) for the broker, later ones skip it "
            f"while the breaker is open; in a longer outage one callback per "
            f"{settings.PUBLISH_RETRY_AFTER:g} s (per process) probes again and pays that wait."
        )
        if not args.no_server:
            run_server(args, path, database_url, tmp / "gunicorn.log", with_up=problem is None)
    finally:
        connections.close_all()
        drop_database(old_name)
        shutil.rmtree(tmp, ignore_errors=True)
        if not problem:
            purge(QUEUE)
    print(f"\n{time.monotonic() - started:.0f} s; at the end: {load()}")


if __name__ == "__main__":
    main()
