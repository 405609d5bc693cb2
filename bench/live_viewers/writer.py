"""The benchmark's writer: creates the watched rows, then stores events into them at a pace.

Run as ``python -m live_viewers.writer --rows N --rate R --duration S`` with ``bench/`` on the
path and the project's settings. It prints one JSON line with the rows' ids, waits for a line
on standard input, then stores ``R`` events a second (round-robin over the rows) for ``S``
seconds through :func:`django_scout.services.event_store.store_event_stream` — the call a
streamed interaction's worker makes for each event, which commits it and announces it
(``notify_changed``) — and ends every row ``succeeded``. It prints a last JSON line: for each
event, its row's index, its sequence and the ``time.monotonic()`` at which the store call
returned (the event committed and announced), which the benchmark compares with the moment
each viewer received it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "live_viewers.settings")


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, create the rows, then write when told to."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second, in all")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--event-bytes", type=int, default=300)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import connection

    from django_scout.client.streams import SessionEvent
    from django_scout.models import Interaction, InteractionStatus
    from django_scout.services.event_store import store_event_stream
    from django_scout.services.interactions import complete_interaction

    rows = [
        Interaction.objects.create(
            agent_id="bench", messages=[{"content": "x"}], status=InteractionStatus.ACCEPTED
        )
        for _ in range(args.rows)
    ]
    print(json.dumps({"rows": [str(row.pk) for row in rows]}), flush=True)
    sys.stdin.readline()

    padding = "x" * max(0, args.event_bytes - 120)
    stored: list[tuple[int, int, float]] = []
    interval = 1.0 / args.rate
    start = time.monotonic()
    count = int(args.rate * args.duration)
    for n in range(count):
        due = start + n * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        index, sequence = n % len(rows), n // len(rows)
        data = {"type": "message_delta", "sequence": sequence, "text": padding}
        event = SessionEvent(sequence, "message_delta", data, None, None, json.dumps(data))
        store_event_stream(rows[index], (event,), batch_size=1)
        stored.append((index, sequence, time.monotonic()))
    late = time.monotonic() - (start + count * interval)
    for row in rows:
        complete_interaction(row.pk, InteractionStatus.SUCCEEDED)
    connection.close()
    print(json.dumps({"stored": stored, "late_s": round(late, 3)}), flush=True)


if __name__ == "__main__":
    main()
