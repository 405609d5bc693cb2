"""A ``COPY`` sent without waiting for its end (``services.copy_pipeline``), on PostgreSQL.

Each test copies into a temporary table of the test's own connection; the event store's use of
the pipeline is tested in ``test_event_store``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, ProgrammingError, connection

from django_scout.services import copy_binary
from django_scout.services.copy_pipeline import CHUNK_BYTES, CopyPipeline

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the COPY pipeline runs on PostgreSQL only"
    ),
]

COPY = "COPY scout_pipeline_test (n, s) FROM STDIN (FORMAT BINARY)"


@pytest.fixture
def table() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE scout_pipeline_test (n int4 PRIMARY KEY, s text)")
    yield
    if connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS scout_pipeline_test")


def rows(numbers: range, text: str = "x") -> bytes:
    return copy_binary.payload(
        [copy_binary.row_start(2) + copy_binary.int4(n) + copy_binary.text(text) for n in numbers]
    )


def stored() -> list[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n, s FROM scout_pipeline_test ORDER BY n")
        return list(cursor.fetchall())


def test_a_copy_is_stored_once_waited_for_and_the_connection_serves_queries_after(
    table: None,
) -> None:
    pipeline = CopyPipeline(connection)
    pipeline.send(COPY, rows(range(3)))
    assert pipeline.pending
    pipeline.wait()
    assert not pipeline.pending
    pipeline.wait()  # nothing to wait for
    pipeline.send(COPY, rows(range(3, 5), "y"))
    pipeline.wait()
    assert stored() == [(0, "x"), (1, "x"), (2, "x"), (3, "y"), (4, "y")]


def test_data_larger_than_a_chunk_is_sent_whole(table: None) -> None:
    text = "z" * 1000
    payload = rows(range(1000), text)
    assert len(payload) > 5 * CHUNK_BYTES
    pipeline = CopyPipeline(connection)
    pipeline.send(COPY, payload)
    pipeline.wait()
    assert stored() == [(n, text) for n in range(1000)]


def test_a_copy_must_be_waited_for_before_the_next_is_sent(table: None) -> None:
    pipeline = CopyPipeline(connection)
    pipeline.send(COPY, rows(range(1)))
    with pytest.raises(RuntimeError, match="not waited for"):
        pipeline.send(COPY, rows(range(1, 2)))
    pipeline.wait()
    assert stored() == [(0, "x")]


def test_a_refused_copy_raises_djangos_error_when_waited_for_and_stores_nothing(
    table: None,
) -> None:
    pipeline = CopyPipeline(connection)
    pipeline.send(COPY, rows(range(2)))
    pipeline.wait()
    pipeline.send(COPY, rows(range(1, 4)))  # 1 is stored: the primary key refuses the copy
    with pytest.raises(IntegrityError, match="duplicate key"):
        pipeline.wait()
    assert not pipeline.pending
    assert stored() == [(0, "x"), (1, "x")]


def test_a_statement_refused_before_its_data_raises_as_it_is_sent(table: None) -> None:
    pipeline = CopyPipeline(connection)
    with pytest.raises(ProgrammingError, match="scout_no_such_table"):
        pipeline.send("COPY scout_no_such_table (n) FROM STDIN (FORMAT BINARY)", b"")
    assert not pipeline.pending
    assert stored() == []


class Interrupted(BaseException):
    """What a time limit's signal handler raises in the middle of an exchange."""


def test_an_exchange_cut_short_closes_the_connection_and_the_next_query_opens_one(
    table: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = CopyPipeline(connection)
    pipeline.send(COPY, rows(range(2)))

    def interrupted(self: Any) -> None:
        raise Interrupted

    monkeypatch.setattr(CopyPipeline, "_result", interrupted)
    with pytest.raises(Interrupted):
        pipeline.wait()
    assert connection.connection is None
    assert not pipeline.pending
    monkeypatch.undo()
    with connection.cursor() as cursor:  # a new connection, where the temporary table is gone
        cursor.execute("SELECT to_regclass('pg_temp.scout_pipeline_test')")
        assert cursor.fetchone() == (None,)
