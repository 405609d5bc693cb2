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


@pytest.mark.parametrize("count", [0, 1, 3, 4, 7, 14])
def test_gives_the_same_batches_and_flags_as_reading_inline(count: int) -> None:
    expected = list(batches(range(count), 3))
    assert list(read_ahead_batches(range(count), 3)) == expected
    assert [len(batch) for batch, _ in expected] == [3] * (count // 3) + (
        [count % 3] if count % 3 else []
    )
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
    received, error = collect(read_ahead_batches(failing_after(count), 3))
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
    assert list(read_ahead_batches(range(3), 3)) == [([0, 1, 2], True)]


def test_the_next_batch_is_read_while_the_caller_works_on_one() -> None:
    reading = threading.Event()

    def source() -> Iterator[int]:
        yield from range(3)
        reading.set()  # the second batch is being read
        yield from range(3, 6)

    iterator = read_ahead_batches(source(), 3)
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

    iterator = read_ahead_batches(endless(), 10)
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
