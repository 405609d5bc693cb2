"""Reconcile and prune on a large history: today's code against the baseline, side by side.

The baseline is ``reconcile``/``prune`` as they were before they were rewritten (commit
d10c214, see ``_baseline.py``), run on today's schema. On the history ``seed_history.py`` builds
(seeded first unless the database holds one of the requested shape), it measures:

- (a) ``reconcile`` with nothing due and ``prune 30`` with nothing to delete: the steady state
  of a site that prunes daily;
- (b) reconcile over what a broker outage leaves (``--backlog`` pending callbacks, a fortieth
  as many never-claimed and overdue interactions; see ``seed_history.BacklogSpec``): the first
  run, and ``--storm`` runs a minute apart (``reconcile(now=...)``) with the enqueues of each;
- (c) ``prune 30`` ``--prune-shift`` days later, when a day of events and callbacks is due.

Each case runs in rounds that alternate which implementation goes first (after an untimed
warm-up round, except the long backlog case). What a run changes is put back after it, so every
run starts from the same rows. Statements are counted by an execute wrapper (transaction control
aside); publishing is replaced by a counter, so nothing reaches a broker and every enqueue is
counted. The machine's load is printed at the start and the end. Run from the repository root::

    .venv/bin/python bench/bench_housekeeping.py --db sqlite [--sqlite FILE]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_seed \\
        .venv/bin/python bench/bench_housekeeping.py --db postgres
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from unittest import mock

from _history_common import add_database_arguments, load_line, median_spread, setup_django

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

#: Tasks "published" during the benchmark, by name.
ENQUEUED: Counter[str] = Counter()


def count_publish(self: Any, task: Any, args: Sequence[Any]) -> bool:
    """Stands in for ``TaskPublisher.publish``: counts the task, publishes nothing."""
    ENQUEUED[task.name] += 1
    return True


class Snapshot:
    """Rows a run may change or delete, kept in temporary tables and put back after each run.

    ``selections`` are querysets of the rows to keep. :meth:`restore` deletes those rows (by
    primary key) and inserts the kept copies again, in one transaction; on PostgreSQL the tables
    are then vacuumed, as autovacuum would between two reconcile runs.
    """

    counter = itertools.count()

    def __init__(self, *selections: Any) -> None:
        from django.db import connection

        self.saved: list[tuple[str, str, str]] = []  # (table, key column, temporary table)
        with connection.cursor() as cursor:
            for queryset in selections:
                meta = queryset.model._meta
                temporary = f"bench_saved_{next(self.counter)}"
                sql, params = queryset.order_by().values("pk").query.sql_with_params()
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {temporary} AS SELECT * FROM {meta.db_table} "
                    f"WHERE {meta.pk.column} IN ({sql})",
                    params,
                )
                self.saved.append((meta.db_table, meta.pk.column, temporary))

    def restore(self) -> None:
        """Put every kept row back as it was."""
        from django.db import connection, transaction

        with transaction.atomic(), connection.cursor() as cursor:
            for table, key, temporary in self.saved:
                cursor.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {temporary})"
                )
                cursor.execute(f"INSERT INTO {table} SELECT * FROM {temporary}")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for table, _, _ in self.saved:
                    cursor.execute(f"VACUUM ANALYZE {table}")

    def drop(self) -> None:
        """Drop the temporary tables."""
        from django.db import connection

        with connection.cursor() as cursor:
            for _, _, temporary in self.saved:
                cursor.execute(f"DROP TABLE {temporary}")


class QueryCounter:
    """Counts the statements sent to the database (transaction control aside), cheaply enough
    to stay on while timing: a wrapper around every execute (``connection.execute_wrapper``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        """Count ``sql`` unless it is ``BEGIN``, ``SAVEPOINT``, ``COMMIT`` and the like."""
        if not sql[:12].lstrip().upper().startswith(TRANSACTION_CONTROL):
            self.count += 1
        return execute(sql, *args)


QUERIES = QueryCounter()


@dataclass
class Step:
    """One call of reconcile or prune: its wall time, statements and enqueues."""

    seconds: float
    queries: int
    enqueues: int


def step(call: Callable[[], Any]) -> tuple[Any, Step]:
    """Run ``call``, measuring it."""
    queries, enqueues = QUERIES.count, ENQUEUED.total()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    return result, Step(seconds, QUERIES.count - queries, ENQUEUED.total() - enqueues)


#: A unit of work: what it did (a summary) and its steps.
Work = Callable[[], tuple[str, list[Step]]]


@dataclass
class Case:
    """A piece of work done by both implementations, from the same rows each time.

    ``rows`` name what is reported: a label and the steps it adds up (all, or e.g. the first).
    """

    name: str
    product: Work
    baseline: Work
    snapshot: Snapshot | None = None
    rows: list[tuple[str, slice]] = field(default_factory=lambda: [("", slice(None))])
    summaries: dict[str, str] = field(default_factory=dict)
    #: per implementation, per round: the steps
    rounds: dict[str, list[list[Step]]] = field(default_factory=dict)


def run_case(case: Case, rounds: int, warm_up: bool) -> None:
    """Time ``rounds`` rounds of both implementations, alternating which goes first, after an
    untimed warm-up round when ``warm_up``; the rows are restored after every run."""
    implementations = {"product": case.product, "baseline": case.baseline}
    for index in range(-1 if warm_up else 0, rounds):
        order = list(implementations) if index % 2 == 0 else list(reversed(implementations))
        for name in order:
            gc.collect()
            summary, steps = implementations[name]()
            if index >= 0:
                case.rounds.setdefault(name, []).append(steps)
            case.summaries[name] = summary
            if case.snapshot:
                case.snapshot.restore()
    for label, part in case.rows:
        product, baseline = (total(case, name, part) for name in ("product", "baseline"))
        print(
            f"  {case.name}{label}: product {median_spread(product[0])}, "
            f"baseline {median_spread(baseline[0])}",
            flush=True,
        )


def total(case: Case, name: str, part: slice) -> tuple[list[float], str, str]:
    """Per round, the seconds of the ``part`` of the steps; and their queries and enqueues
    (``a-b`` when they differed between rounds)."""
    seconds, queries, enqueues = [], set(), set()
    for steps in case.rounds[name]:
        chosen = steps[part]
        seconds.append(sum(one.seconds for one in chosen))
        queries.add(sum(one.queries for one in chosen))
        enqueues.add(sum(one.enqueues for one in chosen))

    def span(values: set[int]) -> str:
        low, high = min(values), max(values)
        return f"{low:,}" if low == high else f"{low:,}-{high:,}"

    return seconds, span(queries), span(enqueues)


def reconcile_summary(report: Any) -> str:
    """The counts of a ``ReconcileReport``."""
    parts = []
    for key, value in report.as_dict().items():
        count = len(value) if isinstance(value, list) else value
        if count:
            parts.append(f"{key} {count}")
    return ", ".join(parts) or "nothing"


def reconciler(reconcile: Callable[..., Any], now: datetime, runs: int = 1) -> Work:
    """``runs`` reconcile runs a minute apart from ``now``; summarized by what the first did and
    the enqueues of each."""

    def work() -> tuple[str, list[Step]]:
        steps, first = [], ""
        for minute in range(runs):
            report, measured = step(partial(reconcile, now=now + timedelta(minutes=minute)))
            steps.append(measured)
            first = first or reconcile_summary(report)
        if runs == 1:
            return first, steps
        per_run = " ".join(f"{one.enqueues:,}" for one in steps)
        return f"first run: {first}; enqueues per run: {per_run}", steps

    return work


def pruner(prune: Callable[..., dict[str, int]], days: int, now: datetime) -> Work:
    """One ``prune(days, now=now)``, summarized by what it deleted."""

    def work() -> tuple[str, list[Step]]:
        deleted, measured = step(lambda: prune(days, now=now))
        return ", ".join(f"{key} {value:,}" for key, value in deleted.items()), [measured]

    return work


def ratio(product: float, baseline: float) -> str:
    """``product / baseline`` as a short figure."""
    if baseline == 0:
        return "-" if product == 0 else "inf"
    value = product / baseline
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def report(cases: list[Case]) -> None:
    """Print the results as a Markdown table, then what each implementation did."""
    import statistics

    print()
    print(
        "| case | queries: baseline → product | time: baseline → product (median, min-max) "
        "| time ratio | enqueues: baseline → product |"
    )
    print("|---|---|---|---|---|")
    for case in cases:
        for label, part in case.rows:
            base, prod = total(case, "baseline", part), total(case, "product", part)
            time_ratio = ratio(statistics.median(prod[0]), statistics.median(base[0]))
            print(
                f"| {case.name}{label} | {base[1]} → {prod[1]} "
                f"| {median_spread(base[0])} → {median_spread(prod[0])} "
                f"| {time_ratio} | {base[2]} → {prod[2]} |"
            )
    print()
    for case in cases:
        for name in ("baseline", "product"):
            print(f"{case.name} / {name}: {case.summaries[name]}")


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    import seed_history

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_database_arguments(parser)
    seed_history.add_history_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after a warm-up)")
    parser.add_argument("--backlog", type=int, default=40_000, help="pending callbacks")
    parser.add_argument(
        "--backlog-rounds", type=int, default=2, help="timed rounds of the backlog (no warm-up)"
    )
    parser.add_argument("--storm", type=int, default=10, help="reconcile runs a minute apart")
    parser.add_argument("--prune-days", type=int, default=30)
    parser.add_argument("--prune-shift", type=float, default=1.0, help="days later, for case c")
    parser.add_argument("--reseed", action="store_true", help="seed even if already seeded")
    return parser.parse_args()


def main() -> None:
    """Seed if needed, run every case, print the table."""
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
        present = seed_history.seeded()
    assert present is not None
    now = present[0]
    seed_history.remove_backlog()

    import _baseline
    from django.db import connection

    from django_scout import services
    from django_scout.models import (
        CallbackDelivery,
        Interaction,
        InteractionEvent,
        WorkflowRun,
        WorkflowRunEvent,
    )
    from django_scout.services.publishing import TaskPublisher

    rows = {model.__name__: model.objects.count() for model in seed_history.scout_tables()}
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in rows.items()))
    print(f"as of {now:%Y-%m-%d %H:%M:%S} UTC", flush=True)

    def changeable() -> Snapshot:
        return Snapshot(
            Interaction.objects.filter(status__in=("pending", "accepted")),
            CallbackDelivery.objects.filter(processed_at__isnull=True),
            WorkflowRun.objects.filter(status__in=("pending", "running")),
        )

    def prunable(cutoff: datetime) -> Snapshot:
        finished = ("succeeded", "failed")
        return Snapshot(
            InteractionEvent.objects.filter(
                interaction__status__in=finished, interaction__completed_at__lt=cutoff
            ),
            CallbackDelivery.objects.filter(processed_at__lt=cutoff),
            WorkflowRunEvent.objects.filter(run__status__in=finished, run__completed_at__lt=cutoff),
        )

    days, later = args.prune_days, now + timedelta(days=args.prune_shift)
    cases: list[Case] = []
    with (
        mock.patch.object(TaskPublisher, "publish", count_publish),
        connection.execute_wrapper(QUERIES),
    ):
        quiet = changeable()
        steady = [
            Case(
                "(a) reconcile, nothing due",
                reconciler(services.reconcile, now),
                reconciler(_baseline.reconcile, now),
                quiet,
            ),
            Case(
                f"(a) prune {days} d, nothing to delete",
                pruner(services.prune, days, now),
                pruner(_baseline.prune, days, now),
            ),
        ]
        print(f"(a) nothing due: {args.rounds} rounds", flush=True)
        for case in steady:
            run_case(case, args.rounds, warm_up=True)
        quiet.drop()

        seeded = seed_history.seed_backlog(seed_history.BacklogSpec.of(args.backlog), now)
        seed_history.refresh_statistics()
        print("(b) backlog: " + ", ".join(f"{kind} {count:,}" for kind, count in seeded.items()))
        print(f"    {args.backlog_rounds} rounds of {args.storm} runs a minute apart", flush=True)
        backlog = changeable()
        storm = Case(
            f"(b) reconcile, backlog of {args.backlog:,}",
            reconciler(services.reconcile, now, args.storm),
            reconciler(_baseline.reconcile, now, args.storm),
            backlog,
            rows=[
                (": first run", slice(0, 1)),
                (f": {args.storm} runs a minute apart", slice(None)),
            ],
        )
        run_case(storm, args.backlog_rounds, warm_up=False)
        backlog.drop()
        seed_history.remove_backlog()
        seed_history.refresh_statistics()

        old = prunable(later - timedelta(days=days))
        pruning = Case(
            f"(c) prune {days} d, {args.prune_shift:g} day(s) to delete",
            pruner(services.prune, days, later),
            pruner(_baseline.prune, days, later),
            old,
        )
        print(f"(c) prune: {args.rounds} rounds", flush=True)
        run_case(pruning, args.rounds, warm_up=True)
        old.drop()
        cases = [*steady, storm, pruning]

    report(cases)
    print(load_line("end"))


if __name__ == "__main__":
    main()
