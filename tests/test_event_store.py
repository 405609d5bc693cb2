"""Storing event streams (``services.event_store``): what the ORM would store, only faster.

Runs against the test database: SQLite by default, PostgreSQL (the ``COPY`` writer) when
``DATABASE_URL`` names one. Each stored stream is compared with what ``bulk_create`` (the path
other databases keep) stores for the same events.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_scout import services
from django_scout.client.errors import ScoutStreamError
from django_scout.client.streams import SessionEvent
from django_scout.models import Interaction, InteractionEvent
from django_scout.services import event_store
from django_scout.services.copy_pipeline import CopyPipeline
from tests.helpers import UNIT_SCOUT, postgresql_url

pytestmark = pytest.mark.django_db(transaction=True)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the COPY writer runs on PostgreSQL only"
)


def new_interaction() -> Interaction:
    return Interaction.objects.create(agent_id="agent", messages=[])


def ev(sequence: int, name: str | None = "message", **fields: Any) -> SessionEvent:
    values: dict[str, Any] = {"data": {"i": sequence}, "id": f"evt_{sequence}", "timestamp": None}
    values.update(fields)
    return SessionEvent(sequence=sequence, name=name, **values)


#: Values each column must survive unchanged (or changed exactly as the model changes them).
TRICKY = [
    ev(0, data={"text": "héllo 🌍 — 中文", "deep": {"list": [1, 2.5, True, None, {"x": "y"}]}}),
    ev(1, data=None),  # SQL NULL, as the ORM stores None
    ev(2, name="error", data="plain text from an SSE error event"),
    ev(3, data=[1, "two", None, False]),
    ev(4, data=42),
    ev(5, data=1e-7),
    ev(6, data={}),
    ev(7, data={"quote": 'a"b\\c\n\td', "escaped": "\\u0041", "big": 10**30}),
    ev(8, name=None, id=None),
    ev(9, name="n" * 300, id="i" * 300),  # cut to 255
    ev(10, name="tab\there\nnewline\\back ü", id="ïd\r"),
    ev(11, timestamp="2025-01-01T00:00:00Z"),
    ev(12, timestamp="2025-06-01T12:34:56.789123+02:00"),
    ev(13, timestamp="2025-06-01T12:34:56"),  # naive: read as UTC
    ev(14, timestamp="1999-12-31T23:59:59.999999Z"),
    ev(15, timestamp="0001-01-01T00:00:00+14:00"),  # out of range: NULL
    ev(16, timestamp="9999-12-31T23:59:59-10:00"),  # out of range: NULL
    ev(17, timestamp="not a date"),
    ev(18, timestamp="2025-02-30T00:00:00Z"),
    ev(19, timestamp="2025-03-01T00:00:00+05:30", data={"nested": {"a": {"b": {"c": [[]]}}}}),
    ev(20, data=False),  # falsy values are JSON, not NULL
    ev(21, data=0),
    ev(22, data=""),
]


def stored(interaction: Interaction) -> list[tuple[Any, ...]]:
    """Every column of ``interaction``'s events, as loaded and as the database has them."""
    loaded = list(
        InteractionEvent.objects.filter(interaction=interaction)
        .order_by("sequence")
        .values_list("sequence", "name", "event_id", "data", "timestamp")
    )
    quote = connection.ops.quote_name
    table = quote(InteractionEvent._meta.db_table)
    data, moment = quote("data"), quote("timestamp")
    key = InteractionEvent._meta.get_field("interaction").get_db_prep_value(
        interaction.pk, connection
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sequence, CAST({data} AS TEXT), CAST({moment} AS TEXT), {data} IS NULL "  # noqa: S608
            f"FROM {table} WHERE interaction_id = %s ORDER BY sequence",
            [key],
        )
        raw = cursor.fetchall()
    return [(*row, *raw_row[1:]) for row, raw_row in zip(loaded, raw, strict=True)]


def orm_rows(events: list[SessionEvent], batch_size: int = 3) -> list[tuple[Any, ...]]:
    """What the ``bulk_create`` path stores for ``events``."""
    interaction = new_interaction()
    event_store._store_with_orm(interaction, events, batch_size)
    return stored(interaction)


@pytest.mark.parametrize("batch_size", [1, 3, 500])
def test_rows_are_those_the_orm_path_stores(batch_size: int) -> None:
    interaction = new_interaction()
    before = timezone.now()
    count = event_store.store_event_stream(interaction, TRICKY, batch_size=batch_size)
    after = timezone.now()
    assert count == len(TRICKY)
    rows = stored(interaction)
    assert rows == orm_rows(TRICKY)
    by_sequence = {row[0]: row for row in rows}
    assert by_sequence[1][3] is None
    assert by_sequence[1][-1]  # SQL NULL, not JSON null
    assert by_sequence[9][1:3] == ("n" * 255, "i" * 255)
    assert by_sequence[13][4] == by_sequence[11][4].replace(
        month=6, day=1, hour=12, minute=34, second=56
    )
    assert [by_sequence[sequence][4] for sequence in (15, 16, 17, 18)] == [None] * 4
    created = InteractionEvent.objects.filter(interaction=interaction).values_list(
        "created_at", flat=True
    )
    assert all(before <= value <= after for value in created)


def test_the_json_text_an_event_came_as_is_stored_without_serializing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``json_text`` is what goes into ``data``: no ``json.dumps`` for such an event. (The text
    below disagrees with ``data`` on purpose, to show which of the two is written.)"""
    dumped: list[Any] = []
    real_dumps = json.dumps

    def spy(value: Any, **kwargs: Any) -> str:
        dumped.append(value)
        return real_dumps(value, **kwargs)

    interaction = new_interaction()
    monkeypatch.setattr(json, "dumps", spy)
    events = [
        ev(0, data={"a": 1}, json_text='{"a":  2, "ü": "\u00e9 😀"}'),
        ev(1, data=None, json_text="null"),  # still SQL NULL, as the ORM stores None
        ev(2, data=[3]),  # no text: serialized
    ]
    assert event_store.store_event_stream(interaction, events, batch_size=2) == 3
    monkeypatch.undo()
    rows = stored(interaction)
    assert [row[3] for row in rows] == [{"a": 2, "ü": "é 😀"}, None, [3]]
    assert rows[1][-1]  # SQL NULL
    assert dumped == [[3]]


def test_store_events_uses_the_batch_size_setting() -> None:
    interaction = new_interaction()
    with override_settings(SCOUT={**UNIT_SCOUT, "EVENTS_BATCH_SIZE": 2}):
        assert services.store_events(interaction, TRICKY) == len(TRICKY)
    assert stored(interaction) == orm_rows(TRICKY)


def test_a_closed_connection_is_opened_to_store() -> None:
    interaction = new_interaction()
    connection.close()
    assert event_store.store_event_stream(interaction, TRICKY, batch_size=5) == len(TRICKY)
    assert stored(interaction) == orm_rows(TRICKY)


def test_empty_stream_stores_nothing() -> None:
    interaction = new_interaction()
    assert event_store.store_event_stream(interaction, [], batch_size=3) == 0
    assert not InteractionEvent.objects.exists()


def test_refetch_skips_stored_sequences_and_keeps_the_first_rows() -> None:
    interaction = new_interaction()
    first = [ev(i, name="first") for i in range(7)]
    assert event_store.store_event_stream(interaction, first, batch_size=3) == 7
    again = [ev(i, name="again") for i in range(12)]
    assert event_store.store_event_stream(interaction, again, batch_size=3) == 12
    assert event_store.store_event_stream(interaction, again, batch_size=5) == 12
    names = list(
        InteractionEvent.objects.filter(interaction=interaction)
        .order_by("sequence")
        .values_list("name", flat=True)
    )
    assert names == ["first"] * 7 + ["again"] * 5


@pytest.mark.parametrize("batch_size", [2, 4, 100])
def test_duplicate_and_out_of_order_sequences_are_stored_as_the_orm_path_does(
    batch_size: int,
) -> None:
    events = [ev(s, name=f"#{n}") for n, s in enumerate([0, 1, 1, 5, 2, 5, 3, 0, 9, 4, 9])]
    interaction = new_interaction()
    assert event_store.store_event_stream(interaction, events, batch_size=batch_size) == 11
    assert stored(interaction) == orm_rows(events, batch_size)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_on_sqlite_a_batch_is_inserted_in_statements_of_as_many_rows_as_parameters_allow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three rows of seven fields fit in 21 parameters: a batch of ten is four statements
    (3, 3, 3 and 1 rows); duplicates within a statement keep the first row, as across them."""
    # A class attribute before Django 6.0, a property since.
    monkeypatch.setattr(type(connection.features), "max_query_params", 21)
    sequences = [0, 1, 1, 5, 2, 5, 3, 0, 9, 4, 9, 6, 7, 8]
    events = [ev(s, name=f"#{n}") for n, s in enumerate(sequences)]
    interaction = new_interaction()
    with CaptureQueriesContext(connection) as queries:
        assert event_store.store_event_stream(interaction, events, batch_size=10) == 14
    inserts = [query["sql"] for query in queries if query["sql"].startswith("INSERT")]
    assert [sql.count("), (") + 1 for sql in inserts] == [3, 3, 3, 1, 3, 1]
    monkeypatch.undo()
    assert stored(interaction) == orm_rows(events, 10)


def failing_stream(count: int) -> Iterator[SessionEvent]:
    """``count`` events, then the stream breaks off."""
    for sequence in range(count):
        yield ev(sequence)
    raise ScoutStreamError("the stream broke off")


def test_partial_stream_then_full_refetch() -> None:
    interaction = new_interaction()
    with pytest.raises(ScoutStreamError):
        event_store.store_event_stream(interaction, failing_stream(7), batch_size=3)
    # The two full batches are stored; the one the error interrupted is not.
    assert list(
        InteractionEvent.objects.filter(interaction=interaction).values_list("sequence", flat=True)
    ) == list(range(6))
    full = [ev(sequence) for sequence in range(10)]
    with CaptureQueriesContext(connection) as queries:
        assert event_store.store_event_stream(interaction, full, batch_size=3) == 10
    assert stored(interaction) == orm_rows(full)
    if connection.vendor == "postgresql":
        # Only the batches at or below the highest stored sequence were checked first.
        checks = [query for query in queries if "BETWEEN" in query["sql"]]
        assert [check["sql"].split("BETWEEN ")[1] for check in checks] == ["0 AND 2", "3 AND 5"]
    assert not connection.in_atomic_block
    assert connection.get_autocommit()


def test_an_error_right_after_a_full_batch_leaves_that_batch_stored() -> None:
    interaction = new_interaction()
    with pytest.raises(ScoutStreamError):
        event_store.store_event_stream(interaction, failing_stream(6), batch_size=3)
    stored_sequences = InteractionEvent.objects.filter(interaction=interaction).values_list(
        "sequence", flat=True
    )
    assert sorted(stored_sequences) == list(range(6))


@postgresql_only
def test_outside_a_transaction_each_batch_commits_as_its_copy_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each batch is one ``COPY`` statement committing on its own, with no transaction opened
    around it (each ``BEGIN``, ``SET`` or ``COMMIT`` would be one more round trip): another
    connection sees the batch as soon as the writer moves on."""
    import psycopg

    def no_transaction(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a transaction was opened around a batch")

    interaction = new_interaction()
    seen: list[int] = []
    table = connection.ops.quote_name(InteractionEvent._meta.db_table)
    count_sql = f"SELECT COUNT(*) FROM {table} WHERE interaction_id = %s"  # noqa: S608
    with psycopg.connect(postgresql_url(), autocommit=True) as other:

        def count_from_another_connection(model: Any, pk: Any) -> None:
            row = other.execute(count_sql, [str(interaction.pk)]).fetchone()
            assert row is not None
            seen.append(row[0])

        monkeypatch.setattr(transaction, "atomic", no_transaction)
        monkeypatch.setattr(event_store, "notify_changed", count_from_another_connection)
        with CaptureQueriesContext(connection) as queries:
            event_store.store_event_stream(interaction, TRICKY, batch_size=6)
    assert seen == [6, 12, 18, 23]
    assert not [query for query in queries if "synchronous_commit" in query["sql"]]
    assert connection.get_autocommit()
    monkeypatch.undo()
    assert stored(interaction) == orm_rows(TRICKY)


@postgresql_only
def test_outside_a_transaction_the_next_batch_is_read_while_the_server_stores_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's ``COPY`` is sent, and waited for only once the next batch is read: the
    server's work overlaps the parsing."""
    log: list[str] = []
    send, wait = CopyPipeline.send, CopyPipeline.wait

    def logged_send(self: CopyPipeline, *args: Any) -> None:
        log.append("send")
        send(self, *args)

    def logged_wait(self: CopyPipeline) -> None:
        log.append("wait")
        wait(self)

    def read(count: int) -> Iterator[SessionEvent]:
        for sequence in range(count):
            log.append(f"read {sequence}")
            yield ev(sequence)

    monkeypatch.setattr(CopyPipeline, "send", logged_send)
    monkeypatch.setattr(CopyPipeline, "wait", logged_wait)
    interaction = new_interaction()
    assert event_store.store_event_stream(interaction, read(7), batch_size=3) == 7
    # One event is read ahead of each batch, to know whether it is the last.
    assert log == [
        *["read 0", "read 1", "read 2", "read 3", "send"],
        *["read 4", "read 5", "read 6", "wait", "send"],
        *["wait", "send", "wait"],
    ]
    monkeypatch.undo()
    assert stored(interaction) == orm_rows([ev(i) for i in range(7)])


@postgresql_only
@override_settings(SCOUT={**UNIT_SCOUT, "LIVE_NOTIFY": "poll"})  # on_commit needs autocommit
def test_without_autocommit_the_batches_wait_for_the_callers_commit() -> None:
    import psycopg

    interaction = new_interaction()
    table = connection.ops.quote_name(InteractionEvent._meta.db_table)
    count_sql = f"SELECT COUNT(*) FROM {table} WHERE interaction_id = %s"  # noqa: S608
    transaction.set_autocommit(False)
    try:
        assert event_store.store_event_stream(interaction, TRICKY, batch_size=6) == len(TRICKY)
        with psycopg.connect(postgresql_url(), autocommit=True) as other:
            assert other.execute(count_sql, [str(interaction.pk)]).fetchone() == (0,)
            transaction.commit()
            assert other.execute(count_sql, [str(interaction.pk)]).fetchone() == (len(TRICKY),)
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert stored(interaction) == orm_rows(TRICKY)


class Interrupted(BaseException):
    """What a task's time limit raises in the middle of a write."""


@postgresql_only
@pytest.mark.parametrize("where", ["between exchanges", "in an exchange"])
def test_a_write_cut_short_leaves_a_working_connection_and_a_refetch_completes_the_stream(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut short as a batch's ``COPY`` is waited for: either before the wait begins (the
    batch is then waited for, so the connection is left ready), or in the middle of it (the
    connection's state is unknown: it is closed)."""
    interaction = new_interaction()
    wait, result = CopyPipeline.wait, CopyPipeline._result
    calls: list[str] = []

    def interrupted_wait(self: CopyPipeline) -> None:
        calls.append("wait")
        if where == "between exchanges" and calls.count("wait") == 2:
            raise Interrupted
        wait(self)

    def interrupted_result(self: CopyPipeline) -> Any:
        calls.append("result")
        if where == "in an exchange" and calls[-2:] == ["wait", "result"]:
            raise Interrupted
        return result(self)

    monkeypatch.setattr(CopyPipeline, "wait", interrupted_wait)
    monkeypatch.setattr(CopyPipeline, "_result", interrupted_result)
    with pytest.raises(Interrupted):
        event_store.store_event_stream(interaction, TRICKY, batch_size=6)
    assert (connection.connection is None) == (where == "in an exchange")
    monkeypatch.undo()
    assert event_store.store_event_stream(interaction, TRICKY, batch_size=6) == len(TRICKY)
    assert stored(interaction) == orm_rows(TRICKY)


def test_inside_an_outer_transaction() -> None:
    def store_three_streams(store: Any) -> Interaction:
        interaction = new_interaction()
        with transaction.atomic():
            store(interaction, [ev(i) for i in range(5)], 2)
            with pytest.raises(ScoutStreamError):
                store(interaction, failing_stream(8), 3)
            assert store(interaction, TRICKY, 3) == len(TRICKY)
            assert InteractionEvent.objects.filter(interaction=interaction).count() == len(TRICKY)
        return interaction

    def fast(interaction: Interaction, events: Any, batch_size: int) -> int:
        return event_store.store_event_stream(interaction, events, batch_size=batch_size)

    assert stored(store_three_streams(fast)) == stored(
        store_three_streams(event_store._store_with_orm)
    )


def test_a_transaction_rolled_back_by_the_caller_stores_nothing() -> None:
    interaction = new_interaction()

    def store_then_fail() -> None:
        with transaction.atomic():
            event_store.store_event_stream(interaction, TRICKY, batch_size=3)
            raise RuntimeError("the caller rolls back")

    with pytest.raises(RuntimeError):
        store_then_fail()
    assert not InteractionEvent.objects.filter(interaction=interaction).exists()


@postgresql_only
@pytest.mark.parametrize("nested", [False, True])
def test_a_concurrent_writer_is_caught_by_the_unique_constraint(
    nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that stored sequences after this one looked makes the copy fail: the batch
    is checked and copied again, and every later batch is checked."""
    interaction = new_interaction()
    event_store.store_event_stream(
        interaction, [ev(i, name="other") for i in (1, 4, 8)], batch_size=9
    )
    monkeypatch.setattr(event_store._PostgresWriter, "_highest_stored", lambda self: -1)
    events = [ev(i, name="this") for i in range(10)]
    if nested:
        with transaction.atomic():
            assert event_store.store_event_stream(interaction, events, batch_size=3) == 10
    else:
        assert event_store.store_event_stream(interaction, events, batch_size=3) == 10
    names = dict(
        InteractionEvent.objects.filter(interaction=interaction).values_list("sequence", "name")
    )
    assert names == {i: "other" if i in (1, 4, 8) else "this" for i in range(10)}


def test_events_of_a_deleted_interaction_are_refused_as_by_the_orm_path() -> None:
    interaction = new_interaction()
    Interaction.objects.filter(pk=interaction.pk).delete()
    with pytest.raises(IntegrityError):
        event_store._store_with_orm(interaction, [ev(0)], 3)
    with pytest.raises(IntegrityError):
        event_store.store_event_stream(interaction, [ev(0), ev(1)], batch_size=3)
    assert not InteractionEvent.objects.exists()


def test_other_databases_keep_bulk_create(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = InteractionEvent.objects.bulk_create

    def spy(objs: list[InteractionEvent], **kwargs: Any) -> list[InteractionEvent]:
        assert kwargs == {"ignore_conflicts": True}
        calls.append(len(objs))
        return original(objs, **kwargs)

    monkeypatch.setattr(InteractionEvent.objects, "bulk_create", spy)
    monkeypatch.setattr(connection, "vendor", "mysql")
    interaction = new_interaction()
    assert event_store.store_event_stream(interaction, TRICKY, batch_size=8) == len(TRICKY)
    assert calls == [8, 8, 7]
    monkeypatch.undo()
    assert stored(interaction) == orm_rows(TRICKY)


def test_sqlite_without_time_zone_support_refuses_aware_timestamps_as_the_orm_does() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    interaction = new_interaction()
    events = [ev(0, timestamp="2025-01-01T00:00:00Z")]
    with override_settings(USE_TZ=False):
        with pytest.raises(ValueError, match="timezone-aware"):
            event_store._store_with_orm(interaction, events, 3)
        with pytest.raises(ValueError, match="timezone-aware"):
            event_store.store_event_stream(interaction, events, batch_size=3)


def test_nul_characters_are_stored_where_the_database_can_and_replaced_where_not() -> None:
    """PostgreSQL cannot store NUL (nor ``jsonb`` the ``\\u0000`` escape): there each NUL of
    an event becomes U+FFFD, on either path, and the rest of the stream is stored."""
    data = {"text": "a\x00b", "k\x00": ["\x00"], "literal": "\\u0000 stays"}
    events = [
        ev(0, name="n\x00", id="i\x00", data=data, json_text=json.dumps(data)),
        ev(1, data=data),  # serialized by the writer
        ev(2, data="\x00"),
    ]
    interaction = new_interaction()
    assert event_store.store_event_stream(interaction, events, batch_size=2) == 3
    rows = stored(interaction)
    assert rows == orm_rows(events)
    nul = "\ufffd" if connection.vendor == "postgresql" else "\x00"
    expected = {"text": f"a{nul}b", f"k{nul}": [nul], "literal": "\\u0000 stays"}
    assert [row[:4] for row in rows] == [
        (0, f"n{nul}", f"i{nul}", expected),
        (1, "message", "evt_1", expected),
        (2, "message", "evt_2", nul),
    ]


@postgresql_only
def test_without_time_zone_support_created_at_is_local_time_as_the_orm_stores_it() -> None:
    """With ``USE_TZ = False`` Django stores the local time of ``TIME_ZONE``; so does the
    ``COPY`` writer, whose rows carry an instant."""
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo"):
        interaction = new_interaction()
        before = timezone.now()
        event_store._store_with_orm(interaction, [ev(0)], 3)
        event_store.store_event_stream(interaction, [ev(1)], batch_size=3)
        after = timezone.now()
        created = list(
            InteractionEvent.objects.filter(interaction=interaction)
            .order_by("sequence")
            .values_list("created_at", flat=True)
        )
    assert timezone.is_naive(before)
    assert len(created) == 2
    assert all(before <= moment <= after for moment in created), (before, created, after)


def generated_stream(count: int) -> Iterator[SessionEvent]:
    padding = "lorem ipsum dolor sit amet " * 8
    for sequence in range(count):
        yield SessionEvent(
            sequence=sequence,
            name="block_state_updated",
            data={"i": sequence, "update": {"text": padding}},
            id=f"evt_{sequence:08d}",
            timestamp="2025-01-01T00:00:00.123456Z",
        )


def test_memory_stays_bounded_by_the_batch() -> None:
    """Peak traced memory is a batch's worth (about 0.5 MB), not the stream's: its 10,000
    events held at once would take 5.8 MB."""
    interaction = new_interaction()
    tracemalloc.start()
    try:
        count = event_store.store_event_stream(
            interaction, generated_stream(10_000), batch_size=500
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == InteractionEvent.objects.filter(interaction=interaction).count() == 10_000
    assert peak < 2_000_000, f"peak {peak} bytes"
