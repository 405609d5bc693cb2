"""How long each admin page takes on a seeded history (100k interactions, 1M events by default).

Opens every admin list (plain, filtered, searched) and detail page through Django's test client
as a superuser, in rounds (after an untimed warm-up), and prints the median time, its spread,
the queries and the page size of each, with the machine's load at the start and end. The
issue's goal: every list under 300 ms, every detail page under 1 s and 1 MB. Run from the
repository root:

    .venv/bin/python bench/bench_admin.py --db sqlite [--sqlite FILE]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_admin \\
        .venv/bin/python bench/bench_admin.py --db postgres

The history is seeded first (``seed_history.py``) unless the database already holds it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _history_common import add_database_arguments, load_line, median_spread, setup_django


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    import seed_history

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_database_arguments(parser)
    seed_history.add_history_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after a warm-up)")
    parser.add_argument("--reseed", action="store_true", help="seed even if already seeded")
    return parser.parse_args()


def pages() -> list[tuple[str, str, dict[str, str]]]:
    """``(label, url, params)`` of each page, on rows of the seeded history."""
    from django_scout.models import CallbackDelivery, Interaction, Session, WorkflowRun

    busiest = (
        Interaction.objects.filter(event_count__gt=0).order_by("-event_count").only("pk").first()
    )
    failed = Interaction.objects.filter(status="failed").only("pk", "error_code").first()
    delivery = CallbackDelivery.objects.only("pk", "callback_event_id").first()
    session = Session.objects.only("pk").first()
    run = WorkflowRun.objects.filter(event_count__gt=0).only("pk").first()
    if not (busiest and failed and delivery and session and run):
        raise SystemExit("the history is not seeded")
    base = "/admin/django_scout"
    return [
        ("interactions", f"{base}/interaction/", {}),
        ("… status=failed", f"{base}/interaction/", {"status__exact": "failed"}),
        ("… error code", f"{base}/interaction/", {"error_code": failed.error_code or "x"}),
        ("… past 7 days", f"{base}/interaction/", {"created_at__gte": "2000-01-01 00:00:00+00:00"}),
        ("… search by callback id", f"{base}/interaction/", {"q": delivery.callback_event_id}),
        ("… page 100", f"{base}/interaction/", {"p": "100"}),
        ("interaction (most events)", f"{base}/interaction/{busiest.pk}/change/", {}),
        ("its events", f"{base}/interactionevent/", {"interaction": str(busiest.pk)}),
        ("all events", f"{base}/interactionevent/", {}),
        ("deliveries", f"{base}/callbackdelivery/", {}),
        ("… state=abandoned", f"{base}/callbackdelivery/", {"state__exact": "abandoned"}),
        ("delivery", f"{base}/callbackdelivery/{delivery.pk}/change/", {}),
        ("sessions", f"{base}/session/", {}),
        ("session", f"{base}/session/{session.pk}/change/", {}),
        ("workflow runs", f"{base}/workflowrun/", {}),
        ("… status=failed", f"{base}/workflowrun/", {"status__exact": "failed"}),
        ("workflow run", f"{base}/workflowrun/{run.pk}/change/", {}),
        ("dashboard", f"{base}/interaction/dashboard/", {}),
    ]


def main() -> None:
    """Seed if needed, then time every page."""
    args = parse_args()
    print(load_line("start"))
    print(f"database: {setup_django(args.db, args.sqlite)}")
    import seed_history

    spec = seed_history.spec_from(args)
    seed_history.migrate()
    present = seed_history.seeded()
    if args.reseed or present is None or present[1] != spec:
        print(f"seeding {spec} ...", flush=True)
        seed_history.build(spec)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "pw"
    )
    client = Client()
    client.force_login(user)
    rows: list[tuple[str, list[float], int, int]] = []
    for label, url, params in pages():
        response: Any = client.get(url, params)  # warm-up
        assert response.status_code == 200, (url, params, response.status_code)
        timings = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            client.get(url, params)
            timings.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, params)
        rows.append((label, timings, len(captured.captured_queries), len(response.content)))
    print()
    print("| page | time: median (min-max) | queries | size |")
    print("|---|---|---|---|")
    for label, timings, queries, size in rows:
        print(f"| {label} | {median_spread(timings)} | {queries} | {size / 1024:,.0f} KB |")
    slowest = max(rows, key=lambda row: statistics.median(row[1]))
    print(f"\nslowest: {slowest[0]} at {median_spread(slowest[1])}")
    print(load_line("end"))


if __name__ == "__main__":
    main()
