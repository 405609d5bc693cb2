"""Migrations ``0010`` and ``0011``: the delivery indexes a new callback writes into, moved in
place.

``0010``: forward, the foreign key's own index and ``scout_delivery_pending`` give way to
partial indexes that hold only filled ``interaction_id`` and ``processed_at`` values. ``0011``:
``scout_delivery_state`` gives way to ``scout_delivery_outcome``, on the same columns but only
for deliveries whose processing ended. Backward, each comes back. Neither way rebuilds the table
(SQLite's ``AlterField`` would copy every row), and the rows stay.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("django_scout", "0009_stream_idle")
AFTER = ("django_scout", "0010_delivery_insert_indexes")
OUTCOME = ("django_scout", "0011_delivery_outcome_index")
TABLE = "django_scout_callbackdelivery"


def migrate(target: tuple[str, str]) -> list[str]:
    """Migrate django_scout to ``target``; the statements it ran."""
    executor = MigrationExecutor(connection)
    with CaptureQueriesContext(connection) as captured:
        executor.migrate([target])
    return [query["sql"] for query in captured.captured_queries]


def indexes_on(*columns: str) -> dict[str, list[str]]:
    """The table's non-unique indexes on any of ``columns``: name → columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and set(info["columns"]) & set(columns)
    }


def index_definition(name: str) -> str:
    """The statement that defines index ``name``, as the database reports it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
        (definition,) = cursor.fetchone()
    return str(definition)


def migrated_to(target: tuple[str, str]) -> Iterator[None]:
    """Django_scout migrated back to ``target`` for a test, then forward to its latest."""
    migrate(target)
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("django_scout"))


@pytest.fixture
def at_0009() -> Iterator[None]:
    yield from migrated_to(BEFORE)


@pytest.fixture
def at_0010() -> Iterator[None]:
    yield from migrated_to(AFTER)


@pytest.mark.usefixtures("at_0009")
def test_the_indexes_move_both_ways_without_rebuilding_the_table() -> None:
    executor = MigrationExecutor(connection)
    old = executor.loader.project_state([BEFORE]).apps
    interaction = old.get_model("django_scout", "Interaction").objects.create(
        id=uuid.uuid4(), agent_id="agent_1"
    )
    delivery = old.get_model("django_scout", "CallbackDelivery").objects.create(
        callback_event_id="evt_kept",
        interaction_id=interaction.pk,
        session_id="sess_1",
        status="succeeded",
        payload={},
        raw_body="{}",
        processed_at=timezone.now(),
        state="processed",
    )
    before = indexes_on("interaction_id", "processed_at")
    assert before["scout_delivery_pending"] == ["processed_at", "received_at"]
    assert ["interaction_id"] in before.values()

    forward = migrate(AFTER)

    after = indexes_on("interaction_id", "processed_at")
    assert "scout_delivery_pending" not in after
    assert after["scout_delivery_interaction"] == ["interaction_id"]
    assert after["scout_delivery_ended"] == ["processed_at"]
    # Only the partial index is on the foreign key now.
    assert [name for name, cols in after.items() if cols == ["interaction_id"]] == [
        "scout_delivery_interaction"
    ]
    assert not [sql for sql in forward if "CREATE TABLE" in sql.upper()], forward
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, callback_event_id FROM {TABLE}")  # noqa: S608
        assert cursor.fetchall() == [(delivery.pk, "evt_kept")]

    backward = migrate(BEFORE)

    restored = indexes_on("interaction_id", "processed_at")
    assert restored.keys() == before.keys()
    assert not [sql for sql in backward if "CREATE TABLE" in sql.upper()], backward


@pytest.mark.skipif(
    not connection.features.supports_partial_indexes, reason="needs partial indexes"
)
@pytest.mark.usefixtures("at_0010")
def test_the_state_index_becomes_partial_both_ways_without_rebuilding_the_table() -> None:
    executor = MigrationExecutor(connection)
    old = executor.loader.project_state([AFTER]).apps
    model = old.get_model("django_scout", "CallbackDelivery")
    for state in ("pending", "processed"):
        model.objects.create(
            callback_event_id=f"evt_{state}",
            session_id="sess_1",
            status="succeeded",
            payload={},
            raw_body="{}",
            state=state,
            processed_at=None if state == "pending" else timezone.now(),
        )
    before = indexes_on("state")
    assert before["scout_delivery_state"] == ["state", "received_at"]
    assert "WHERE" not in index_definition("scout_delivery_state").upper()

    forward = migrate(OUTCOME)

    after = indexes_on("state")
    assert "scout_delivery_state" not in after
    assert after["scout_delivery_outcome"] == ["state", "received_at"]
    definition = index_definition("scout_delivery_outcome").upper()
    assert "WHERE PROCESSED_AT IS NOT NULL" in re.sub(r'["()]', "", definition), definition
    assert not [sql for sql in forward if "CREATE TABLE" in sql.upper()], forward
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT callback_event_id FROM {TABLE} ORDER BY id")  # noqa: S608
        assert cursor.fetchall() == [("evt_pending",), ("evt_processed",)]

    backward = migrate(AFTER)

    assert indexes_on("state") == before
    assert not [sql for sql in backward if "CREATE TABLE" in sql.upper()], backward
