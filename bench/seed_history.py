"""Build a realistic django-scout history, e.g. 100,000 interactions and 1,000,000 events.

The history is what a site that has used Scout for ``--days`` days and runs
``scout_prune --days KEPT`` daily holds: interactions and workflow runs created over the whole
span (most finished days or weeks ago: succeeded, failed by Scout, refused at start, timed
out), each accepted interaction in a session (two interactions a session), and — for those
finished in the last ``--kept-days`` days only, as pruning leaves it — their events and one
processed callback delivery each, plus a few abandoned stray callbacks. A handful of the newest
interactions and runs are in flight (accepted, being started, just created), none of them due
for reconcile. ``--backlog N`` adds what a broker outage leaves: N unprocessed callbacks, N/40
never-claimed interactions and N/40 interactions accepted more than ``CALLBACK_DEADLINE`` ago
(and a tenth as many runs of each kind); see :class:`BacklogSpec`.

Rows are written with PostgreSQL's ``COPY`` (psycopg 3) or, on SQLite, ``executemany`` of plain
tuples in one transaction with ``synchronous=OFF``; secondary indexes and foreign keys are
dropped during the load and rebuilt (and checked) after it. Migrations run first; the SQLite
file is replaced, PostgreSQL's django-scout tables emptied. The instant the history was built
for is kept in a marker session (:data:`MARKER`), so benchmarks replay it at that instant. Run
from the repository root::

    .venv/bin/python bench/seed_history.py --db sqlite --sqlite /tmp/history.sqlite3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_seed \\
        .venv/bin/python bench/seed_history.py --db postgres
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from _history_common import add_database_arguments, setup_django

#: The session whose ``created_at`` is the instant the history was built for, and whose
#: ``agent_id`` holds the :class:`HistorySpec` as JSON.
MARKER = "bench-seed"

#: Prefix of every row :func:`seed_backlog` writes (agent, workflow, session and callback ids).
BACKLOG = "backlog"

DAY = 86400.0
AGENTS = ("agent-support", "agent-sales", "agent-triage", "agent-billing", "agent-docs")
WORKFLOWS = tuple(f"wf_{name}" for name in ("summarize", "classify", "enrich", "translate"))
RUN_KINDS = ("workflow",) * 6 + ("app",) * 2 + ("webhook", "workflow_config")
WORDS = ("please", "help", "me", "with", "my", "order", "refund", "invoice", "shipping", "thanks")


@dataclass(frozen=True)
class HistorySpec:
    """The size and shape of a history.

    ``runs`` and ``run_events`` default to a tenth of ``interactions`` and ``events``.
    """

    interactions: int = 100_000
    events: int = 1_000_000
    runs: int = -1
    run_events: int = -1
    days: float = 90.0
    kept_days: float = 30.0
    seed: int = 1

    def resolved(self) -> HistorySpec:
        """This spec with the run defaults filled in."""
        return dataclasses.replace(
            self,
            runs=self.interactions // 10 if self.runs < 0 else self.runs,
            run_events=self.events // 10 if self.run_events < 0 else self.run_events,
        )


@dataclass(frozen=True)
class BacklogSpec:
    """What a broker outage of up to 20 hours leaves for reconcile, at the history's instant.

    - ``pending_deliveries`` callbacks received 2 minutes to 20 hours ago, never processed and
      due (``next_attempt_at`` a grace after receipt, as stored): nine in ten for an interaction
      accepted just before (one each), one in ten for a session nobody here started;
    - ``never_claimed`` interactions created 2 minutes to 20 hours ago whose start task never
      ran (pending, unclaimed, due), and a tenth as many workflow runs;
    - ``overdue`` interactions accepted 24 to 48 hours ago with no callback (past
      ``CALLBACK_DEADLINE``), and a tenth as many runs running for as long (past ``RUN_DEADLINE``).
    """

    pending_deliveries: int = 0
    never_claimed: int = 0
    overdue: int = 0

    @classmethod
    def of(cls, size: int) -> BacklogSpec:
        """``size`` pending callbacks, and a fortieth as many never-claimed and overdue rows."""
        return cls(pending_deliveries=size, never_claimed=size // 40, overdue=size // 40)


# --- writing rows --------------------------------------------------------------------------


class Writer:
    """Inserts plain tuples into a django-scout table as fast as the database allows.

    Values are given as the database stores them: datetimes from :meth:`at` (text), UUIDs as 32
    hex digits, JSON as text, booleans as ``bool``.
    """

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"
        self._suffix = "+00" if self.postgres else ""
        #: Seconds spent writing each table.
        self.seconds: dict[str, float] = {}

    def at(self, epoch: float) -> str:
        """The UTC instant ``epoch`` as the database's datetime text (what Django writes)."""
        moment = datetime.fromtimestamp(epoch, dt_timezone.utc).replace(tzinfo=None)
        return f"{moment}{self._suffix}"

    def insert(self, model: Any, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        """Write ``rows`` (one value per column of ``columns``) into ``model``'s table.

        Every concrete column but an auto-incremented key must be named: the database has no
        defaults for Django's. Returns how many rows were written.
        """
        check_columns(model, columns)
        table = model._meta.db_table
        names = ", ".join(columns)
        written = 0
        started = time.perf_counter()

        def counted() -> Iterator[tuple[Any, ...]]:
            nonlocal written
            for row in rows:
                written += 1
                yield row

        with self.connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in counted():
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                cursor.cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", counted()
                )
        elapsed = time.perf_counter() - started
        self.seconds[model.__name__] = self.seconds.get(model.__name__, 0.0) + elapsed
        return written


def iso(epoch: float) -> str:
    """The UTC instant ``epoch`` in ISO 8601, as Scout writes it in a payload."""
    return datetime.fromtimestamp(epoch, dt_timezone.utc).isoformat().replace("+00:00", "Z")


def check_columns(model: Any, columns: Sequence[str]) -> None:
    """Fail unless ``columns`` are exactly ``model``'s concrete columns (an auto key aside)."""
    expected = {
        field.column
        for field in model._meta.concrete_fields
        if not (field.primary_key and field.get_internal_type().endswith("AutoField"))
    }
    if set(columns) != expected or len(columns) != len(expected):
        missing, extra = expected - set(columns), set(columns) - expected
        raise RuntimeError(f"{model.__name__}: missing columns {missing}, unknown {extra}")


def scout_tables() -> list[Any]:
    """django-scout's models, children first (the order to delete in)."""
    from django_scout import models as scout

    return [
        scout.InteractionEvent,
        scout.WorkflowRunEvent,
        scout.CallbackDelivery,
        scout.Interaction,
        scout.WorkflowRun,
        scout.Session,
    ]


def wipe() -> None:
    """Delete every django-scout row."""
    from django.db import connection, transaction

    tables = [model._meta.db_table for model in scout_tables()]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")


@contextmanager
def bulk_load(models: Sequence[Any], seconds: dict[str, float]) -> Iterator[None]:
    """Load ``models``' tables without maintaining their indexes and foreign keys row by row.

    Their secondary indexes (and unique constraints) are dropped, then built again afterwards
    in one pass each; foreign keys are dropped and added back (PostgreSQL, which checks every
    row then) or switched off and checked with ``PRAGMA foreign_key_check`` (SQLite). Must be
    entered outside a transaction; the time the rebuild took lands in ``seconds``.
    """
    from django.db import connection, transaction

    tables = [model._meta.db_table for model in models]
    quote = connection.ops.quote_name
    drop: list[str] = []
    build: list[str] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
                FROM pg_constraint
                WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u')
                ORDER BY contype = 'f' DESC
                """,
                [tables],
            )
            for table, name, definition, _ in cursor.fetchall():
                drop.append(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
                build.insert(0, f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
            cursor.execute(
                """
                SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisprimary
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
                """,
                [tables],
            )
            for name, definition in cursor.fetchall():
                drop.append(f"DROP INDEX {quote(name)}")
                build.insert(0, definition)
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({', '.join(['%s'] * len(tables))})",
                tables,
            )
            for name, definition in cursor.fetchall():
                drop.append(f"DROP INDEX {quote(name)}")
                build.append(definition)
            cursor.execute("PRAGMA foreign_keys = OFF")
        try:
            with transaction.atomic():
                for statement in drop:
                    cursor.execute(statement)
            yield
        finally:
            started = time.perf_counter()
            with transaction.atomic():
                for statement in build:
                    cursor.execute(statement)
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA foreign_keys = ON")
                for table in tables:
                    cursor.execute(f"PRAGMA foreign_key_check({quote(table)})")
                    broken = cursor.fetchall()
                    if broken:
                        raise RuntimeError(f"{table}: rows without their parent: {broken[:5]}")
            seconds["indexes"] = time.perf_counter() - started


def json_pool(
    rng: random.Random, size: int, make: Callable[[random.Random, int], Any]
) -> list[str]:
    """``size`` JSON texts from ``make`` (rows pick from a pool: ``json.dumps`` per row is slow)."""
    return [json.dumps(make(rng, index)) for index in range(size)]


def new_id(rng: random.Random) -> str:
    """A random UUID (version 4) as 32 hex digits, drawn from ``rng``."""
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def sentence(rng: random.Random, words: int) -> str:
    """A few words of filler text."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` uneven counts (0.5 to 1.5 times the mean) summing to it."""
    if parts <= 0:
        return []
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    scale = total / sum(weights)
    counts = [int(weight * scale) for weight in weights]
    for index in range(total - sum(counts)):
        counts[index % parts] += 1
    return counts


# --- the history ---------------------------------------------------------------------------

INTERACTION_COLUMNS = (
    "id",
    "subject_content_type_id",
    "subject_object_id",
    "agent_id",
    "session_id",
    "requested_session_id",
    "messages",
    "metadata",
    "variables",
    "tags",
    "status",
    "events_url",
    "error_code",
    "error_message",
    "start_attempts",
    "start_claimed_at",
    "next_attempt_at",
    "event_count",
    "events_missing",
    "events_error",
    "created_at",
    "updated_at",
    "accepted_at",
    "completed_at",
    "events_fetched_at",
    "stream",
    "stream_progress_at",
)
EVENT_COLUMNS = (
    "interaction_id",
    "sequence",
    "name",
    "event_id",
    "data",
    "timestamp",
    "created_at",
)
DELIVERY_COLUMNS = (
    "callback_event_id",
    "interaction_id",
    "target_interaction_id",
    "session_id",
    "status",
    "payload",
    "raw_body",
    "headers",
    "received_at",
    "last_received_at",
    "delivery_count",
    "processed_at",
    "state",
    "next_attempt_at",
    "processing_attempts",
    "processing_error",
)
RUN_COLUMNS = (
    "id",
    "subject_content_type_id",
    "subject_object_id",
    "kind",
    "workflow_id",
    "environment",
    "revision_id",
    "session_id",
    "inputs",
    "stream",
    "workflow_config",
    "workflow_key",
    "webhook_url",
    "status",
    "scout_run_id",
    "outputs",
    "duration_ms",
    "error_code",
    "error_message",
    "raw_response",
    "event_count",
    "start_attempts",
    "start_claimed_at",
    "next_attempt_at",
    "rerun_of_id",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "stream_progress_at",
)
RUN_EVENT_COLUMNS = ("run_id", "sequence", "name", "data", "timestamp", "created_at")
SESSION_COLUMNS = ("session_id", "agent_id", "created_at")


@dataclass
class Planned:
    """One interaction of the history, as the generator decides it (times as epochs)."""

    id: str
    agent: str
    status: str
    created: float
    session: str | None = None
    requested_session: str = ""
    error_code: str = ""
    claimed: float | None = None
    accepted: float | None = None
    completed: float | None = None
    fetched: float | None = None
    events: int = 0
    next_attempt: float | None = None


def plan_interactions(spec: HistorySpec, now: float, rng: random.Random) -> list[Planned]:
    """Decide every interaction of the history: statuses, times, sessions."""
    span = spec.days * DAY
    created = sorted(now - rng.uniform(600.0, span) for _ in range(spec.interactions))
    in_flight = min(len(created), max(4, spec.interactions // 2000))
    planned: list[Planned] = []
    for index, when in enumerate(created):
        row = Planned(
            id=new_id(rng),
            agent=AGENTS[index // 2 % len(AGENTS)],
            status="succeeded",
            created=when,
            claimed=when + 0.1,
            next_attempt=when + 60.0,
        )
        session = f"sess_{index // 2:08d}"
        if index % 2:
            row.requested_session = session
        flight = index - (len(created) - in_flight)
        if flight >= 0:
            plan_in_flight(row, flight % 4, session, now, rng)
        else:
            plan_finished(row, session, now, rng)
        planned.append(row)
    return planned


def plan_in_flight(row: Planned, kind: int, session: str, now: float, rng: random.Random) -> None:
    """An interaction still under way, none of it due for reconcile."""
    if kind == 3:  # just created; its start task is on its way
        row.status, row.created, row.claimed = "pending", now - rng.uniform(1.0, 30.0), None
        row.next_attempt = row.created + 60.0
        return
    row.created = now - rng.uniform(60.0, 3600.0)
    row.claimed = row.created + 0.1
    row.next_attempt = row.created + 60.0
    if kind == 2:  # its start request is being sent
        row.status = "pending"
        return
    row.status, row.session, row.accepted = "accepted", session, row.claimed + 1.0


def plan_finished(row: Planned, session: str, now: float, rng: random.Random) -> None:
    """A finished interaction: succeeded (90%), failed by Scout, timed out or refused."""
    draw = rng.random()
    assert row.claimed is not None
    if draw < 0.01:  # Scout refused the start (422): never accepted
        row.status, row.error_code = "failed", "validation_error"
        row.completed = row.claimed + 0.4
        return
    row.session, row.accepted = session, row.claimed + rng.uniform(0.3, 2.0)
    if draw < 0.03 and row.accepted + DAY + 120 < now:  # no callback: reconcile failed it
        row.status, row.error_code = "failed", "callback_timeout"
        row.completed = row.accepted + DAY + rng.uniform(0.0, 60.0)
        return
    if draw < 0.09:
        row.status, row.error_code = "failed", "scout_failed"
    row.completed = min(row.accepted + rng.uniform(5.0, 300.0), now - 300.0)
    row.fetched = row.completed + 1.0


def interaction_rows(
    planned: list[Planned], writer: Writer, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """The interaction rows, in :data:`INTERACTION_COLUMNS` order."""
    messages = json_pool(
        rng, 64, lambda r, _: [{"role": "user", "content": sentence(r, r.randint(5, 40))}]
    )
    metadata = ["{}", *json_pool(rng, 15, lambda r, i: {"ticket": 1000 + i, "channel": "web"})]
    tags = ["[]", '["support"]', '["sales", "priority"]']
    errors = {
        "": "",
        "validation_error": "Scout answered 422: messages: invalid",
        "callback_timeout": "no callback from Scout within CALLBACK_DEADLINE (86400s)",
        "scout_failed": "the agent failed",
        "processing_error": "",
    }
    at = writer.at
    for row in planned:
        url = (
            f"https://api.scoutos.com/v1/agent-sessions/{row.session}/events" if row.session else ""
        )
        last = row.completed or row.accepted or row.claimed or row.created
        yield (
            row.id,
            None,
            "",
            row.agent,
            row.session,
            row.requested_session,
            rng.choice(messages),
            rng.choice(metadata),
            "{}",
            rng.choice(tags),
            row.status,
            url,
            row.error_code,
            errors[row.error_code],
            1 if row.claimed is not None else 0,
            None if row.claimed is None else at(row.claimed),
            None if row.next_attempt is None else at(row.next_attempt),
            row.events,
            False,
            "",
            at(row.created),
            at(last),
            None if row.accepted is None else at(row.accepted),
            None if row.completed is None else at(row.completed),
            None if row.fetched is None else at(row.fetched),
            False,
            None,
        )


def event_rows(
    planned: list[Planned], writer: Writer, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """The events of every interaction that has some, in :data:`EVENT_COLUMNS` order."""
    names = ("message", "tool_call", "tool_result", "message_delta", "status")
    data = json_pool(
        rng,
        256,
        lambda r, i: {
            "type": names[i % len(names)],
            "content": sentence(r, r.randint(3, 25)),
            "usage": {"tokens": r.randint(1, 900)},
        },
    )
    at = writer.at
    for row in planned:
        if not row.events:
            continue
        assert row.fetched is not None
        assert row.accepted is not None
        created = at(row.fetched)
        step = (row.fetched - 1.0 - row.accepted) / row.events
        prefix = row.id[:12]
        for sequence in range(row.events):
            yield (
                row.id,
                sequence,
                names[sequence % len(names)],
                f"evt_{prefix}_{sequence}",
                data[(sequence * 7 + len(prefix)) % len(data)],
                at(row.accepted + sequence * step),
                created,
            )


def delivery_rows(
    planned: list[Planned], kept_from: float, writer: Writer, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """One processed callback per interaction finished by Scout after ``kept_from``, and an
    abandoned stray callback per 2,000 interactions."""
    at = writer.at
    headers = json.dumps({"Content-Type": "application/json", "X-Scout-Signature": "t=1,v1=..."})
    for row in planned:
        if row.fetched is None or row.completed is None or row.completed < kept_from:
            continue
        assert row.session is not None
        payload = json.dumps(
            {
                "callback_event_id": f"cb_{row.id}",
                "session_id": row.session,
                "status": row.status,
                "completed_at": iso(row.completed),
                "events_url": f"https://api.scoutos.com/v1/agent-sessions/{row.session}/events",
            }
        )
        received = row.completed + 0.2
        repeated = rng.random() < 0.02
        yield (
            f"cb_{row.id}",
            row.id,
            row.id,
            row.session,
            row.status,
            payload,
            payload,
            headers,
            at(received),
            at(received + (30.0 if repeated else 0.0)),
            2 if repeated else 1,
            at(row.fetched + 0.5),
            "processed",
            None,
            1,
            "",
        )
    newest = planned[-1].created if planned else kept_from
    for index in range(len(planned) // 2000):
        received = rng.uniform(kept_from, newest - DAY - 60.0)
        stray = f"sess_stray_{index:06d}"
        payload = json.dumps({"callback_event_id": f"cb_stray_{index}", "session_id": stray})
        yield (
            f"cb_stray_{index}",
            None,
            None,
            stray,
            "succeeded",
            payload,
            payload,
            headers,
            at(received),
            at(received),
            1,
            at(received + DAY + 30.0),
            "abandoned",
            None,
            12,
            "abandoned: not processed within CALLBACK_DEADLINE (86400s)",
        )


def session_rows(planned: list[Planned], writer: Writer) -> Iterator[tuple[Any, ...]]:
    """One session per distinct session of ``planned``, created when first accepted."""
    seen: set[str] = set()
    for row in planned:
        if row.session is None or row.session in seen:
            continue
        seen.add(row.session)
        assert row.accepted is not None
        yield (row.session, row.agent, writer.at(row.accepted))


@dataclass
class PlannedRun:
    """One workflow run of the history (times as epochs); ``workflow`` empty: one of
    :data:`WORKFLOWS`; ``claimed`` false: its start task never ran."""

    id: str
    kind: str
    status: str
    created: float
    stream: bool
    started: float | None = None
    completed: float | None = None
    events: int = 0
    workflow: str = ""
    claimed: bool = True
    #: Streamed: when its worker last stored an event (``stream_progress_at``).
    progress: float | None = None


def plan_runs(spec: HistorySpec, now: float, rng: random.Random) -> list[PlannedRun]:
    """Decide every run: most finished (93% succeeded), the newest few running."""
    created = sorted(now - rng.uniform(600.0, spec.days * DAY) for _ in range(spec.runs))
    in_flight = min(len(created), max(2, spec.runs // 2000))
    planned = []
    for index, when in enumerate(created):
        kind = RUN_KINDS[index % len(RUN_KINDS)]
        run = PlannedRun(
            id=new_id(rng),
            kind=kind,
            status="succeeded",
            created=when,
            stream=kind in ("workflow", "workflow_config") and index % 2 == 0,
        )
        if index >= len(created) - in_flight:
            run.created = now - rng.uniform(60.0, 1800.0)
            run.status, run.started = "running", run.created + 0.3
            if run.stream:  # its worker is reading the stream: not idle
                run.progress = now - 30.0
        else:
            run.started = when + 0.3
            run.completed = min(run.started + rng.uniform(1.0, 60.0), now - 300.0)
            if run.stream:
                run.progress = run.completed
            if rng.random() < 0.07:
                run.status = "failed"
        planned.append(run)
    return planned


def run_rows(
    planned: list[PlannedRun], writer: Writer, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """The run rows, in :data:`RUN_COLUMNS` order."""
    inputs = json_pool(rng, 32, lambda r, _: {"text": sentence(r, r.randint(5, 30)), "lang": "en"})
    outputs = json_pool(rng, 32, lambda r, _: {"summary": sentence(r, r.randint(5, 30))})
    at = writer.at
    for run in planned:
        workflow = run.workflow or WORKFLOWS[int(run.created) % len(WORKFLOWS)]
        failed = run.status == "failed"
        finished = run.completed is not None
        webhook = run.kind == "webhook"
        last = run.completed or run.started or run.created
        yield (
            run.id,
            None,
            "",
            run.kind,
            "" if run.kind == "workflow_config" else workflow,
            "" if webhook else "production",
            "",
            "",
            rng.choice(inputs),
            run.stream,
            '{"blocks": []}' if run.kind == "workflow_config" else None,
            "",
            f"https://api.scoutos.com/v2/workflows/{workflow}/webhook?token=tok_x"
            if webhook
            else "",
            run.status,
            f"run_{run.id[:20]}" if run.started else "",
            rng.choice(outputs) if finished and not failed else None,
            (run.completed - run.created) * 1000 if run.completed else None,
            "workflow_failed" if failed else "",
            "the workflow run failed" if failed else "",
            None,
            run.events,
            1 if run.claimed else 0,
            at(run.created + 0.1) if run.claimed else None,
            at(run.created + 60.0),
            None,
            at(run.created),
            at(last),
            None if run.started is None else at(run.started),
            None if run.completed is None else at(run.completed),
            None if run.progress is None else at(run.progress),
        )


def run_event_rows(planned: list[PlannedRun], writer: Writer) -> Iterator[tuple[Any, ...]]:
    """The streamed events of runs that have some, stored as they arrived."""
    names = ("workflow_run_started", "block_state_updated", "workflow_run_completed")
    data = '{"block_id": "llm", "update_type": "partial", "update_data": {"text": "lorem ipsum"}}'
    at = writer.at
    for run in planned:
        if not run.events:
            continue
        assert run.started is not None
        assert run.completed is not None
        step = (run.completed - run.started) / run.events
        for sequence in range(run.events):
            name = names[0] if sequence == 0 else names[1]
            if sequence == run.events - 1:
                name = names[2]
            when = at(run.started + sequence * step)
            yield (run.id, sequence, name, data, when, when)


def seed_history(
    spec: HistorySpec, now: datetime | None = None, seconds: dict[str, float] | None = None
) -> dict[str, int]:
    """Replace django-scout's rows with the history ``spec`` describes, as of ``now``.

    Returns how many rows of each kind were written; ``seconds``, when given, receives the time
    spent on each step.
    """
    from django.db import transaction

    from django_scout import models as scout

    spec = spec.resolved()
    moment = (now or datetime.now(dt_timezone.utc)).timestamp()
    rng = random.Random(spec.seed)
    kept_from = moment - spec.kept_days * DAY
    interactions = plan_interactions(spec, moment, rng)
    with_events = [
        row for row in interactions if row.fetched is not None and row.fetched >= kept_from
    ]
    for row, count in zip(with_events, split(spec.events, len(with_events), rng), strict=True):
        row.events = count
    runs = plan_runs(spec, moment, rng)
    streamed = [
        run
        for run in runs
        if run.stream and run.completed is not None and run.completed >= kept_from
    ]
    for run, count in zip(streamed, split(spec.run_events, len(streamed), rng), strict=True):
        run.events = max(count, 1)

    writer = Writer()
    started = time.perf_counter()
    wipe()
    wiped = time.perf_counter()
    counts: dict[str, int] = {}
    rebuilt: dict[str, float] = {}
    with bulk_load(scout_tables(), rebuilt), transaction.atomic():
        marker = (MARKER, json.dumps(dataclasses.asdict(spec)), writer.at(moment))
        counts["sessions"] = writer.insert(
            scout.Session, SESSION_COLUMNS, [marker, *session_rows(interactions, writer)]
        )
        counts["interactions"] = writer.insert(
            scout.Interaction, INTERACTION_COLUMNS, interaction_rows(interactions, writer, rng)
        )
        counts["events"] = writer.insert(
            scout.InteractionEvent, EVENT_COLUMNS, event_rows(interactions, writer, rng)
        )
        counts["deliveries"] = writer.insert(
            scout.CallbackDelivery,
            DELIVERY_COLUMNS,
            delivery_rows(interactions, kept_from, writer, rng),
        )
        counts["runs"] = writer.insert(scout.WorkflowRun, RUN_COLUMNS, run_rows(runs, writer, rng))
        counts["run_events"] = writer.insert(
            scout.WorkflowRunEvent, RUN_EVENT_COLUMNS, run_event_rows(runs, writer)
        )
        committing = time.perf_counter()
    if seconds is not None:
        seconds.update(wipe=wiped - started, **writer.seconds)
        seconds["commit"] = time.perf_counter() - committing - rebuilt["indexes"]
        seconds.update(rebuilt)
    return counts


# --- a backlog -----------------------------------------------------------------------------


def plan_backlog(
    backlog: BacklogSpec, now: float, rng: random.Random
) -> tuple[list[Planned], list[tuple[str | None, str, float]], list[PlannedRun]]:
    """Decide the rows of ``backlog``: interactions, callbacks (interaction id or ``None``,
    session, received) and runs."""
    interactions: list[Planned] = []
    callbacks: list[tuple[str | None, str, float]] = []
    for index in range(backlog.pending_deliveries):
        received = now - rng.uniform(120.0, 20 * 3600.0)
        if index % 10 == 9:  # a session nobody here started
            callbacks.append((None, f"{BACKLOG}_stray_{index:07d}", received))
            continue
        created = received - rng.uniform(5.0, 600.0)
        row = Planned(new_id(rng), BACKLOG, "accepted", created, f"{BACKLOG}_sess_{index:07d}")
        row.claimed, row.accepted, row.next_attempt = created + 0.1, created + 1.0, created + 60.0
        interactions.append(row)
        callbacks.append((row.id, f"{BACKLOG}_sess_{index:07d}", received))
    for _ in range(backlog.never_claimed):
        created = now - rng.uniform(120.0, 20 * 3600.0)
        interactions.append(
            Planned(new_id(rng), BACKLOG, "pending", created, next_attempt=created + 60.0)
        )
    for index in range(backlog.overdue):
        accepted = now - rng.uniform(DAY + 60.0, 2 * DAY)
        row = Planned(new_id(rng), BACKLOG, "accepted", accepted - 1.0, f"{BACKLOG}_late_{index}")
        row.claimed, row.accepted, row.next_attempt = accepted - 0.9, accepted, accepted + 59.0
        interactions.append(row)
    runs = [
        PlannedRun(
            new_id(rng),
            "workflow",
            "pending",
            now - rng.uniform(120.0, 20 * 3600.0),
            False,
            workflow=BACKLOG,
            claimed=False,
        )
        for _ in range(backlog.never_claimed // 10)
    ]
    for _ in range(backlog.overdue // 10):
        started = now - rng.uniform(DAY + 60.0, 2 * DAY)
        run = PlannedRun(new_id(rng), "workflow", "running", started - 0.3, False, started)
        run.workflow = BACKLOG
        runs.append(run)
    return interactions, callbacks, runs


def pending_delivery_rows(
    callbacks: list[tuple[str | None, str, float]], writer: Writer
) -> Iterator[tuple[Any, ...]]:
    """Callbacks stored but never processed, due a grace after they arrived."""
    at = writer.at
    for index, (interaction, session, received) in enumerate(callbacks):
        event_id = f"{BACKLOG}_cb_{index:07d}"
        payload = json.dumps({"callback_event_id": event_id, "session_id": session})
        yield (
            event_id,
            None,
            interaction,
            session,
            "succeeded",
            payload,
            payload,
            "{}",
            at(received),
            at(received),
            1,
            None,
            "pending",
            at(received + 60.0),
            0,
            "",
        )


def seed_backlog(backlog: BacklogSpec, now: datetime, seed: int = 2) -> dict[str, int]:
    """Add ``backlog`` (see :class:`BacklogSpec`) as of ``now``; its rows are named
    ``backlog…`` (agent, workflow, sessions, callback ids). Returns how many rows of each kind
    were written."""
    from django.db import transaction

    from django_scout import models as scout

    rng = random.Random(seed)
    interactions, callbacks, runs = plan_backlog(backlog, now.timestamp(), rng)
    writer = Writer()
    with transaction.atomic():
        return {
            "sessions": writer.insert(
                scout.Session, SESSION_COLUMNS, session_rows(interactions, writer)
            ),
            "interactions": writer.insert(
                scout.Interaction, INTERACTION_COLUMNS, interaction_rows(interactions, writer, rng)
            ),
            "pending callbacks": writer.insert(
                scout.CallbackDelivery, DELIVERY_COLUMNS, pending_delivery_rows(callbacks, writer)
            ),
            "runs": writer.insert(scout.WorkflowRun, RUN_COLUMNS, run_rows(runs, writer, rng)),
        }


def remove_backlog() -> None:
    """Delete every row :func:`seed_backlog` wrote (and whatever reconcile made of them)."""
    from django.db import connection, transaction

    from django_scout import models as scout

    statements = [
        (scout.CallbackDelivery, "callback_event_id LIKE %s", f"{BACKLOG}%"),
        (scout.Interaction, "agent_id = %s", BACKLOG),
        (scout.WorkflowRun, "workflow_id = %s", BACKLOG),
        (scout.Session, "session_id LIKE %s", f"{BACKLOG}%"),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for model, condition, value in statements:
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {condition}", [value])


def seeded() -> tuple[datetime, HistorySpec] | None:
    """The instant and spec of the history in the database, from its marker session."""
    from django_scout import models as scout

    marker = scout.Session.objects.filter(session_id=MARKER).first()
    if marker is None:
        return None
    return marker.created_at, HistorySpec(**json.loads(marker.agent_id))


def refresh_statistics() -> None:
    """Vacuum and analyze django-scout's tables on PostgreSQL (as autovacuum would, later)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in scout_tables():
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def migrate() -> None:
    """Create or update the schema (on SQLite, in WAL mode: the file keeps it)."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode = WAL")


@contextmanager
def bulk_writes() -> Iterator[None]:
    """On SQLite, no syncing and a large cache while seeding; the settings are restored after."""
    from django.db import connection

    if connection.vendor != "sqlite":
        yield
        return
    tuned = {"synchronous": "OFF", "cache_size": "-262144", "temp_store": "MEMORY"}
    with connection.cursor() as cursor:
        saved = {}
        for name, value in tuned.items():
            cursor.execute(f"PRAGMA {name}")
            saved[name] = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA {name} = {value}")
        try:
            yield
        finally:
            for name, value in saved.items():
                cursor.execute(f"PRAGMA {name} = {value}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_database_arguments(parser)
    add_history_arguments(parser)
    parser.add_argument("--backlog", type=int, default=0, help="pending callbacks (see above)")
    return parser.parse_args(argv)


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that describe a :class:`HistorySpec`."""
    parser.add_argument("--interactions", type=int, default=HistorySpec.interactions)
    parser.add_argument("--events", type=int, default=HistorySpec.events)
    parser.add_argument("--runs", type=int, default=-1, help="default: interactions / 10")
    parser.add_argument("--run-events", type=int, default=-1, help="default: events / 10")
    parser.add_argument("--days", type=float, default=HistorySpec.days, help="history span")
    parser.add_argument(
        "--kept-days",
        type=float,
        default=HistorySpec.kept_days,
        help="events and deliveries exist for what finished this recently (daily prune)",
    )
    parser.add_argument("--seed", type=int, default=HistorySpec.seed, help="random seed")


def spec_from(args: argparse.Namespace) -> HistorySpec:
    """The :class:`HistorySpec` the parsed options describe."""
    return HistorySpec(
        interactions=args.interactions,
        events=args.events,
        runs=args.runs,
        run_events=args.run_events,
        days=args.days,
        kept_days=args.kept_days,
        seed=args.seed,
    ).resolved()


def build(spec: HistorySpec, backlog: int = 0) -> datetime:
    """Migrate, seed ``spec`` (and a backlog), refresh statistics, print what it took."""
    started = time.perf_counter()
    migrate()
    migrated = time.perf_counter()
    now = datetime.now(dt_timezone.utc)
    seconds: dict[str, float] = {}
    with bulk_writes():
        counts = seed_history(spec, now, seconds)
        seeded_at = time.perf_counter()
        if backlog:
            for kind, count in seed_backlog(BacklogSpec.of(backlog), now).items():
                counts[f"backlog {kind}"] = count
    written = time.perf_counter()
    refresh_statistics()
    done = time.perf_counter()
    print("rows: " + ", ".join(f"{kind} {count:,}" for kind, count in counts.items()))
    print("history: " + ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items()))
    print(
        f"seeded in {done - started:.1f} s: migrate {migrated - started:.1f} s, history "
        f"{seeded_at - migrated:.1f} s, backlog {written - seeded_at:.1f} s, "
        f"statistics {done - written:.1f} s; history as of {now:%Y-%m-%d %H:%M:%S} UTC"
    )
    return now


def main() -> None:
    """Seed the database named by ``DATABASE_URL`` or ``--sqlite``."""
    args = parse_args()
    if args.db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.sqlite}{suffix}").unlink(missing_ok=True)
    print(f"database: {setup_django(args.db, args.sqlite)}")
    build(spec_from(args), args.backlog)


if __name__ == "__main__":
    main()
