"""How long the callback endpoint takes to answer Scout (its limit is 10 seconds).

Posts signed callbacks through Django's test client — new deliveries, then repeats of them —
with processing enqueued to an in-memory broker (not run), exactly as the view does in
production, and prints latency percentiles per kind. Uses SQLite in memory by default, or
``DATABASE_URL`` (e.g. PostgreSQL). Run from the repository root:

    .venv/bin/python bench/bench_callback.py [--count 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics

from _common import (
    callback_body,
    create_database,
    create_target,
    drop_database,
    percentile,
    post_callback,
    purge,
    setup_django,
)

QUEUE = "django-scout-bench"
setup_django(QUEUE, "memory://")  # its own queue: never leaves work in a real worker's queue

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from django_scout.services.batching import batch_publisher  # noqa: E402


def report(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<12} n={len(ms):<6} p50={statistics.median(ms):7.2f} ms  "
        f"p95={percentile(ms, 0.95):7.2f} ms  p99={percentile(ms, 0.99):7.2f} ms  "
        f"max={max(ms):7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    old_name = create_database()
    url = create_target()
    client = Client()
    bodies = [callback_body() for _ in range(args.count)]
    timings: dict[str, list[float]] = {"new": [], "duplicate": []}
    for kind in ("new", "duplicate"):
        for body in bodies:
            timings[kind].append(post_callback(client, url, body))
    print(f"database: {connection.vendor}; broker: {os.environ['CELERY_BROKER_URL']}")
    for kind, values in timings.items():
        report(kind, values)
    batch_publisher.flush()  # processing is published after the answers, in batches
    drop_database(old_name)
    purge(QUEUE)


if __name__ == "__main__":
    main()
