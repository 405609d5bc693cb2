"""``CompiledSelect``: the live relay's reads, built once per database, read what the ORM reads.

Run on SQLite by default and on PostgreSQL with ``DATABASE_URL`` (CI's services run): the
conversions (aware datetimes, decoded JSON, UUIDs) come from each backend's own converters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_scout.compiled_select import CompiledSelect
from django_scout.live import INTERACTION, RUN, LiveTarget
from django_scout.models import Interaction, InteractionEvent, WorkflowRun, WorkflowRunEvent

pytestmark = pytest.mark.django_db

DATA = {"text": "héllo ☃", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}


def finished_interaction() -> Interaction:
    interaction = Interaction.objects.create(
        agent_id="agent",
        messages=[{"content": "x"}],
        status="failed",
        error_code="stream_interrupted",
        completed_at=timezone.now() - timedelta(minutes=3),
    )
    for sequence in range(3):
        InteractionEvent.objects.create(
            interaction=interaction,
            sequence=sequence,
            name=f"e{sequence}",
            data={**DATA, "n": sequence} if sequence != 1 else None,
            timestamp=timezone.now() - timedelta(seconds=sequence),
        )
    return interaction


def finished_run() -> WorkflowRun:
    run = WorkflowRun.objects.create(
        workflow_id="wf", status="succeeded", completed_at=timezone.now()
    )
    for sequence in range(2):
        WorkflowRunEvent.objects.create(run=run, sequence=sequence, name="block", data=DATA)
    return run


def orm_reads(target: LiveTarget, pk: Any, after: int) -> tuple[dict[str, Any], list[Any]]:
    status = (
        target.model._default_manager.filter(pk=pk)
        .values("status", "error_code", "completed_at")
        .get()
    )
    events = list(
        target.event_model._default_manager.filter(**{target.owner: pk, "sequence__gt": after})
        .order_by("sequence")
        .values_list("sequence", "name", "data", "timestamp", "created_at")
    )
    return {"id": str(pk), **status}, events


@pytest.mark.parametrize(
    ("target", "make"), [(INTERACTION, finished_interaction), (RUN, finished_run)]
)
@pytest.mark.parametrize("after", [-1, 0])
def test_the_relay_reads_what_the_orm_reads(
    target: LiveTarget, make: Any, after: int, django_assert_num_queries: Any
) -> None:
    row = make()
    with django_assert_num_queries(2):
        status = target.status(row.pk)
        events = target.events_after(row.pk, after)
    assert (status, events) == orm_reads(target, row.pk, after)
    assert status is not None
    assert status["completed_at"].tzinfo is not None
    assert all(event[4].tzinfo is not None for event in events)


def test_a_missing_row_has_no_status_and_no_events() -> None:
    finished_interaction()
    missing = "00000000-0000-4000-8000-000000000000"
    assert INTERACTION.status(missing) is None  # type: ignore[arg-type]
    assert INTERACTION.events_after(missing, -1) == []  # type: ignore[arg-type]


def test_order_and_limit_apply() -> None:
    interaction = finished_interaction()
    newest = CompiledSelect(
        InteractionEvent, ["sequence"], [("interaction_id", "=")], order_by="-sequence", limit=2
    )
    assert newest.rows(interaction.pk) == [(2,), (1,)]
    above = CompiledSelect(
        InteractionEvent, ["sequence", "name"], [("interaction_id", "="), ("sequence", ">=")]
    )
    assert sorted(above.rows(interaction.pk, 1)) == [(1, "e1"), (2, "e2")]


def test_an_operator_that_is_not_a_comparison_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported operator"):
        CompiledSelect(Interaction, ["status"], [("pk", "; DROP TABLE x; --")])
