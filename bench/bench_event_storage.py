"""Storing an interaction's event stream: the old ``bulk_create`` path against the new writer.

Run from the repository root (PostgreSQL is measured when ``DATABASE_URL`` names one: give the
benchmark a database of its own, which it migrates and whose interactions and events it
deletes)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_events \\
        .venv/bin/python bench/bench_event_storage.py [--events 50000] [--rounds 3] \\
        [--databases sqlite,sqlite-wal,postgresql]

Each round, on SQLite (two files in a temporary directory: one with Django's defaults, a rollback
journal and ``synchronous=FULL``; one in WAL mode with ``synchronous=NORMAL`` as the example
project configures it) and on PostgreSQL, in an order that rotates from round to round, it
streams one NDJSON body of ``--events`` events, generated on the fly, through
``ScoutClient.sessions.events`` (what ``fetch_events`` reads) and:

* ``parse``: only iterates over the events (the raw parse rate);
* ``old``: stores them with the ``bulk_create`` code ``store_events`` had before (copied below);
* ``new``: stores them with ``services.store_events`` as it is now;
* ``new re-fetch``: stores the same stream again over the rows already stored (all skipped).

For each it prints events per second (median and spread over the rounds); the ratio to the parse
rate and to the old path (each round's rate divided by the same round's parse or old rate, then
the median: the cases of a round run back to back, so a change of the machine's load between
rounds cancels out); the CPU time per event of this process and, for a local PostgreSQL, of its
server process (``/proc/<pid>/stat``): the cost that decides the rate on a busy machine; and the
peak RSS growth: the kernel's peak RSS (``VmHWM``, reset before each case through
``/proc/self/clear_refs``) minus the RSS before the case. ``resource.getrusage``'s ``ru_maxrss``
growth over the whole run is printed too. The load average and CPU count are printed at the start
and the end. Nothing is asserted, but every stored stream is checked to have all its rows.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_streams import GeneratedStream

CASES = ("parse", "old", "new", "new re-fetch")


class Router:
    """Sends every query to :attr:`current`, the database being measured."""

    current = "sqlite"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.current

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.current


ROUTER = Router()


def configure(workdir: str) -> list[str]:
    """Configure Django with two SQLite files (Django's defaults: rollback journal, ``synchronous
    FULL``; and WAL with ``synchronous NORMAL``) and, from ``DATABASE_URL``, PostgreSQL."""
    import django
    from django.conf import settings

    databases: dict[str, Any] = {
        "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{workdir}/events.sqlite3"},
        # As the example project configures SQLite (its settings.sqlite_options).
        "sqlite-wal": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"{workdir}/events-wal.sqlite3",
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        },
    }
    if django.VERSION < (5, 1):  # no init_command for SQLite before Django 5.1
        del databases["sqlite-wal"]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import dj_database_url

        databases["postgresql"] = dj_database_url.parse(url)
    databases["default"] = databases["sqlite"]
    settings.configure(
        DATABASES=databases,
        DATABASE_ROUTERS=[ROUTER],
        INSTALLED_APPS=["django.contrib.contenttypes", "django_scout"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SCOUT={"API_KEY": "bench", "API_BASE_URL": "https://api.scoutos.test"},
    )
    django.setup()
    from django.core.management import call_command

    names = [alias for alias in databases if alias != "default"]
    for alias in names:
        call_command("migrate", database=alias, verbosity=0)
    return names


# --- the path before issue 8, kept as the baseline -------------------------------------------


def old_store_events(interaction: Any, events: Iterable[Any]) -> int:
    """``services.store_events`` as it was before the fast writer (``bulk_create``)."""
    from django_scout.conf import scout_settings
    from django_scout.models import InteractionEvent
    from django_scout.services.common import parse_timestamp

    def event_row(event: Any) -> InteractionEvent:
        return InteractionEvent(
            interaction=interaction,
            sequence=event.sequence,
            name=(event.name or "")[:255],
            event_id=(event.id or "")[:255],
            data=event.data,
            timestamp=parse_timestamp(event.timestamp),
        )

    batch_size = scout_settings().EVENTS_BATCH_SIZE
    batch: list[InteractionEvent] = []
    seen = 0
    for event in events:
        batch.append(event_row(event))
        seen += 1
        if len(batch) >= batch_size:
            InteractionEvent.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        InteractionEvent.objects.bulk_create(batch, ignore_conflicts=True)
    return seen


# --- measuring -------------------------------------------------------------------------------

_HWM = re.compile(r"VmHWM:\s+(\d+) kB")
_RSS = re.compile(r"VmRSS:\s+(\d+) kB")


@dataclass
class Result:
    """One case's measurements."""

    rate: float  # events per second
    growth: int  # peak RSS growth, bytes
    client_cpu: float  # CPU seconds of this process, per event
    server_cpu: float | None  # CPU seconds of the PostgreSQL server process, per event


def _status(pattern: re.Pattern[str]) -> int:
    match = pattern.search(Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status(_HWM) > 0


def process_cpu() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_pid() -> int | None:
    """The PostgreSQL server process of the current database's connection (None on SQLite)."""
    from django.db import connections

    connection = connections[ROUTER.current]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def backend_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a local server process; None where it cannot be read."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_events(count: int) -> Any:
    """``count`` events as ``fetch_events`` reads them: ``ScoutClient.sessions.events``."""
    from django_scout.client import ScoutClient

    def handler(request: httpx.Request) -> httpx.Response:
        stream = GeneratedStream("ndjson", count, 64 * 1024)
        return httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=stream)

    client = ScoutClient(
        "bench", "https://api.scoutos.test", transport=httpx.MockTransport(handler)
    )
    return client, client.sessions.events("https://api.scoutos.test/v1/sessions/bench/events")


def empty_tables() -> None:
    """Delete every event and interaction; on PostgreSQL by ``TRUNCATE``, so that no case pays
    for the dead rows of the one before (when autovacuum is slow, or off)."""
    from django.db import connections

    from django_scout.models import Interaction, InteractionEvent

    connection = connections[ROUTER.current]
    if connection.vendor == "postgresql":
        tables = ", ".join(
            connection.ops.quote_name(model._meta.db_table)
            for model in (InteractionEvent, Interaction)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} CASCADE")
    else:
        InteractionEvent.objects.all().delete()
        Interaction.objects.all().delete()


def run_case(case: str, count: int, peak_resettable: bool) -> Result:
    """Run one case on the current database."""
    from django_scout import services
    from django_scout.models import Interaction, InteractionEvent

    interaction = Interaction.objects.create(agent_id="bench", messages=[])
    if case == "new re-fetch":
        client, events = stream_events(count)
        with client:
            services.store_events(interaction, events)
    pid = backend_pid()
    gc.collect()
    client, events = stream_events(count)
    rss_before = _status(_RSS) if peak_resettable and reset_peak_rss() else 0
    server_before = backend_cpu(pid)
    client_before = process_cpu()
    started = time.perf_counter()
    with client:
        if case == "parse":
            seen = sum(1 for _ in events)
        elif case == "old":
            seen = old_store_events(interaction, events)
        else:
            seen = services.store_events(interaction, events)
    elapsed = time.perf_counter() - started
    client_cpu = process_cpu() - client_before
    server_after = backend_cpu(pid)
    growth = _status(_HWM) - rss_before if rss_before else 0
    del events, client
    if case != "parse":
        stored = InteractionEvent.objects.filter(interaction=interaction).count()
        assert stored == count, f"{case}: {stored} rows stored for {count} events"
    empty_tables()
    assert seen == count, f"{case}: {seen} events for {count}"
    server_cpu = None
    if server_before is not None and server_after is not None:
        server_cpu = (server_after - server_before) / count
    return Result(count / elapsed, growth, client_cpu / count, server_cpu)


def report(databases: list[str], results: dict[tuple[str, str], list[Result]]) -> None:
    """Print the table."""
    print(
        f"{'database':<10} {'path':<13} {'events/s':>9} {'min-max':>15} {'x parse':>7} "
        f"{'x old':>6} {'CPU us/event':>14} {'RSS growth':>10}"
    )
    for database in databases:
        parse = [result.rate for result in results[database, "parse"]]
        old = [result.rate for result in results[database, "old"]]
        for case in CASES:
            runs = results[database, case]
            rates = [result.rate for result in runs]
            # Each round's rate over the same round's parse (old) rate, then the median.
            ratio = statistics.median(rate / base for rate, base in zip(rates, parse, strict=True))
            speedup = statistics.median(rate / base for rate, base in zip(rates, old, strict=True))
            cpu = f"{statistics.median(result.client_cpu for result in runs) * 1e6:.1f}"
            servers = [result.server_cpu for result in runs if result.server_cpu is not None]
            if len(servers) == len(runs):
                cpu += f" + {statistics.median(servers) * 1e6:.1f}"
            memory = f"{max(result.growth for result in runs) / 1e6:.1f} MB"
            spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
            print(
                f"{database:<10} {case:<13} {statistics.median(rates):>9,.0f} {spread:>15} "
                f"{ratio:>7.2f} {speedup:>6.2f} {cpu:>14} {memory:>10}"
            )


def main() -> None:
    """Parse arguments, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--databases",
        default="",
        help="comma-separated, of sqlite, sqlite-wal, postgresql (default: all configured)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    cpus = os.cpu_count()
    print(f"start: load average {os.getloadavg()}, {cpus} CPUs")
    with tempfile.TemporaryDirectory() as workdir:
        databases = configure(workdir)
        if args.databases:
            databases = [name for name in databases if name in args.databases.split(",")]
        if "postgresql" not in databases:
            print("DATABASE_URL is not a PostgreSQL URL: measuring SQLite only")
        from django.db import connections

        from django_scout.conf import scout_settings

        resettable = reset_peak_rss()
        maxrss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        results: dict[tuple[str, str], list[Result]] = {}
        for database in databases:
            ROUTER.current = database
            empty_tables()
        for round_number in range(args.rounds):
            for database in databases:
                ROUTER.current = database
                shift = round_number % len(CASES)
                for case in CASES[shift:] + CASES[:shift]:
                    result = run_case(case, args.events, resettable)
                    results.setdefault((database, case), []).append(result)
                    label = f"round {round_number + 1} {database:<10} {case:<13}"
                    print(f"  {label} {result.rate:>9,.0f} ev/s", flush=True)
        maxrss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_start
        batch_size = scout_settings().EVENTS_BATCH_SIZE
        connections.close_all()

    print(
        f"\n{args.events:,} events per stream (NDJSON), {args.rounds} rounds, "
        f"EVENTS_BATCH_SIZE {batch_size}; CPU: this process + the PostgreSQL server process"
    )
    report(databases, results)
    if resettable:
        print("RSS growth: peak RSS (VmHWM, reset before each case) minus the RSS before it")
    else:
        print("RSS growth: not measurable here (no /proc/self/clear_refs)")
    print(f"ru_maxrss grew {maxrss_growth / 1e6:.1f} MB over the whole run")
    took = time.perf_counter() - started
    print(f"end: load average {os.getloadavg()}, {cpus} CPUs; the run took {took:.0f} s")


if __name__ == "__main__":
    main()
