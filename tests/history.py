"""History for the cost tests: seeding a small or large finished history, counting the
statements some work sends, and checking on PostgreSQL that a statement's plan is narrowed by
an index. Shared by ``test_scale.py``, ``test_admin_scale.py`` and ``test_dashboard.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_scout.models import (
    CallbackDelivery,
    DeliveryState,
    Interaction,
    InteractionEvent,
    Session,
    WorkflowRun,
    WorkflowRunEvent,
)

#: The two history sizes every cost test compares.
SMALL, LARGE = 30, 300


def seed_history(size: int, *, days_ago: int = 2) -> None:
    """``size`` finished interactions (each in a session of its own, with events and a
    processed delivery) and runs; every other one streamed, its last progress as old as its
    end."""
    done = timezone.now() - timedelta(days=days_ago)
    session_ids = [f"sess-history-{size}-{i}" for i in range(size)]
    sessions = Session.objects.bulk_create(
        Session(session_id=session_id, agent_id="agent") for session_id in session_ids
    )

    def finished(i: int) -> dict[str, Any]:
        """What a finished interaction and a finished run share; every other one streamed."""
        streamed = i % 2 == 0
        return {
            "status": "succeeded",
            "completed_at": done,
            "next_attempt_at": None,
            "stream": streamed,
            "stream_progress_at": done if streamed else None,
        }

    interactions = [
        Interaction(
            agent_id="agent",
            session=sessions[i],
            messages=[{"content": "x"}],
            accepted_at=done,
            **finished(i),
        )
        for i in range(size)
    ]
    Interaction.objects.bulk_create(interactions)
    InteractionEvent.objects.bulk_create(
        InteractionEvent(interaction=interaction, sequence=seq, name="message", data={"i": seq})
        for interaction in interactions
        for seq in range(3)
    )
    CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            callback_event_id=str(uuid.uuid4()),
            interaction=interaction,
            session_id=session_id,
            status="succeeded",
            payload={},
            raw_body="{}",
            state=DeliveryState.PROCESSED,
            processed_at=done,
            next_attempt_at=None,
        )
        for interaction, session_id in zip(interactions, session_ids, strict=True)
    )
    runs = [WorkflowRun(workflow_id="wf", **finished(i)) for i in range(size)]
    WorkflowRun.objects.bulk_create(runs)
    WorkflowRunEvent.objects.bulk_create(
        WorkflowRunEvent(run=run, sequence=seq, name="workflow_run_started")
        for run in runs
        for seq in range(2)
    )
    # Events are stored before the interaction finished; they were created "now" above.
    InteractionEvent.objects.update(created_at=done)
    WorkflowRunEvent.objects.update(created_at=done)


def accepted_interaction(at: Any, **fields: Any) -> None:
    Interaction.objects.create(
        agent_id="agent",
        messages=[{"content": "x"}],
        status="accepted",
        accepted_at=at,
        next_attempt_at=None,
        **fields,
    )


def running_run(at: Any, **fields: Any) -> None:
    WorkflowRun.objects.create(
        workflow_id="wf", status="running", started_at=at, next_attempt_at=None, **fields
    )


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def count_queries(work: Callable[[], Any]) -> tuple[int, list[str]]:
    """How many statements ``work`` sends (transaction control not counted), and their SQL."""
    with CaptureQueriesContext(connection) as captured:
        work()
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]
    return len(statements), statements


def flush() -> None:
    for model in (
        InteractionEvent,
        WorkflowRunEvent,
        CallbackDelivery,
        Interaction,
        WorkflowRun,
        Session,
    ):
        model.objects.all().delete()


PARTIAL_INDEXES = {
    index.name
    for model in apps.get_app_config("django_scout").get_models()
    for index in model._meta.indexes
    if index.condition is not None
}


def analyze() -> None:
    """Refresh PostgreSQL's statistics of django-scout's tables, as autovacuum does after a
    large change: :func:`unindexed_scans` then sees plans made for the rows a test seeded, not
    for what an earlier test left (with stale statistics, a table of thousands of rows could be
    planned as empty and read whole through an index: a failure this test does not mean)."""
    with connection.cursor() as cursor:
        for model in apps.get_app_config("django_scout").get_models():
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def plan_of(sql: str) -> list[dict[str, Any]]:
    """PostgreSQL's plan of ``sql`` (``EXPLAIN (FORMAT JSON)``), as the planner chooses it now."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (plan,) = cursor.fetchone()
    parsed: list[dict[str, Any]] = json.loads(plan) if isinstance(plan, str) else plan
    return parsed


def unindexed_scans(sql: str) -> list[str]:
    """Scans of django-scout tables in ``sql``'s plan that no index condition narrows."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = plan_of(sql)
    problems: list[str] = []

    def walk(node: dict[str, Any], limited: bool) -> None:
        relation = node.get("Relation Name", "")
        kind = node["Node Type"]
        # Reading an index in order under a LIMIT stops after the limit: bounded too.
        narrowed = "Index Cond" in node or limited or node.get("Index Name") in PARTIAL_INDEXES
        if relation.startswith("django_scout_"):
            if kind == "Seq Scan":
                problems.append(f"{kind} on {relation}")
            elif kind in ("Index Scan", "Index Only Scan") and not narrowed:
                problems.append(f"{kind} on {relation} without an index condition")
        if kind == "Bitmap Index Scan" and not narrowed:
            problems.append(f"{kind} {node.get('Index Name')} without an index condition")
        for child in node.get("Plans", []):
            walk(child, limited or kind == "Limit")

    walk(plan[0]["Plan"], False)
    return problems
