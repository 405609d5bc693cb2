"""Reading batches ahead on a helper thread (``services.read_ahead``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator

import pytest

from django_scout.services import read_ahead
from django_scout.services.read_ahead import batches, read_ahead_batches


def helper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "django-scout-read-ahead"]


def double(number: int) -> int:
    return number * 2


@pytest.mark.parametrize("count", [0, 1, 3, 4, 7, 14])
def test_gives_the_same_batches_and_flags_as_reading_inline(count: int) -> None:
    expected = list(batches(map(double, range(count)), 3))
    assert list(read_ahead_batches(range(count), 3, double)) == expected
    assert [len(batch) for batch, _ in expected] == [3] * (count // 3) + (
        [count % 3] if count % 3 else []
    )
    assert [item for batch, _ in expected for item in batch] == [2 * n for n in range(count)]
    assert [last for _, last in expected] == [False] * (len(expected) - 1) + [True] * bool(expected)
    assert not helper_threads()


class Broken(Exception):
    pass


def failing_after(count: int) -> Iterator[int]:
    yield from range(count)
    raise Broken(f"after {count}")


def collect(
    iterator: Iterator[tuple[list[int], bool]],
) -> tuple[list[tuple[list[int], bool]], BaseException | None]:
    received: list[tuple[list[int], bool]] = []
    try:
        received.extend(iterator)
    except Broken as error:
        return received, error
    return received, None


@pytest.mark.parametrize("count", [0, 2, 3, 5, 6, 7, 9])
def test_an_error_comes_after_the_same_batches_as_inline(count: int) -> None:
    received, error = collect(read_ahead_batches(failing_after(count), 3, int))
    inline, inline_error = collect(batches(failing_after(count), 3))
    assert str(error) == str(inline_error) == f"after {count}"
    assert received == inline
    # Only whole batches arrive.
    assert [item for batch, _ in received for item in batch] == list(range(count // 3 * 3))
    assert not helper_threads()


def test_a_single_batch_is_read_without_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("no thread for a single batch")

    monkeypatch.setattr(threading, "Thread", no_thread)
    assert list(read_ahead_batches(range(3), 3, int)) == [([0, 1, 2], True)]


def test_the_next_batch_is_read_while_the_caller_works_on_one() -> None:
    reading = threading.Event()

    def source() -> Iterator[int]:
        yield from range(3)
        reading.set()  # the second batch is being read
        yield from range(3, 6)

    iterator = read_ahead_batches(source(), 3, int)
    assert next(iterator) == ([0, 1, 2], False)
    # Asking for the second batch starts the helper; it reads on while the caller holds it.
    assert next(iterator) == ([3, 4, 5], True)
    assert reading.is_set()
    assert list(iterator) == []


def test_stopping_early_stops_the_reading_and_joins_the_helper() -> None:
    read: list[int] = []

    def endless() -> Iterator[int]:
        number = 0
        while True:
            read.append(number)
            yield number
            number += 1

    iterator = read_ahead_batches(endless(), 10, int)
    assert isinstance(iterator, Generator)
    next(iterator)
    next(iterator)
    iterator.close()
    assert not helper_threads()
    stopped_at = len(read)
    time.sleep(0.1)
    assert len(read) == stopped_at
    # Bounded: the batches given, one queued and one being read, at most.
    assert stopped_at <= 10 * (2 + read_ahead.READ_AHEAD + 1) + 1


@pytest.mark.parametrize("count", [2, 3, 5, 7])
def test_an_error_while_preparing_comes_after_the_same_batches_as_inline(count: int) -> None:
    def refusing(number: int) -> int:
        if number == count:
            raise Broken(f"after {count}")
        return number

    received, error = collect(read_ahead_batches(range(20), 3, refusing))
    inline, inline_error = collect(batches(map(refusing, range(20)), 3))
    assert str(error) == str(inline_error) == f"after {count}"
    assert received == inline
    assert [item for batch, _ in received for item in batch] == list(range(count // 3 * 3))
    assert not helper_threads()


def test_items_after_the_first_batch_are_prepared_on_the_helper() -> None:
    threads: list[str] = []

    def where(number: int) -> int:
        threads.append(threading.current_thread().name)
        return number

    assert [batch for batch, _ in read_ahead_batches(range(7), 3, where)] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    caller = threading.current_thread().name
    # The first batch and the item read ahead to know whether it was the last.
    assert threads[:4] == [caller] * 4
    assert set(threads[4:]) == {"django-scout-read-ahead"}


def test_the_reading_lets_go_of_the_gil_every_few_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy helper would keep the writer waiting ``sys.getswitchinterval()`` for the GIL
    after each round trip to the database: it lets go of it itself, often."""
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    count = read_ahead.SHARE_EVERY * 10
    assert sum(len(batch) for batch, _ in read_ahead_batches(range(count), 7, int)) == count
    assert sleeps == [0] * 10
