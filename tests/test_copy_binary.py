"""PostgreSQL's binary ``COPY`` format as ``services.copy_binary`` writes it.

Whether the server reads these bytes as the ORM's values is checked by ``test_event_store``
(on PostgreSQL); here, each field against bytes worked out by hand from the format.
"""

from __future__ import annotations

import struct
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from django_scout.services import copy_binary


def test_a_stream_is_the_signature_the_rows_and_the_end_marker() -> None:
    assert copy_binary.payload([b"row1", b"row2"]) == (
        b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"row1row2" + b"\xff\xff"
    )
    assert copy_binary.row_start(7) == b"\x00\x07"


def test_fields_are_a_length_then_the_binary_value() -> None:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert copy_binary.uuid_field(key) == b"\x00\x00\x00\x10" + key.bytes
    assert copy_binary.int4(258) == b"\x00\x00\x00\x04\x00\x00\x01\x02"
    assert copy_binary.text("é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert copy_binary.text("") == b"\x00\x00\x00\x00"
    assert copy_binary.jsonb('{"a": 1}') == b"\x00\x00\x00\x09\x01" + b'{"a": 1}'
    assert copy_binary.jsonb(None) == copy_binary.NULL == b"\xff\xff\xff\xff"
    assert copy_binary.timestamptz(None) == copy_binary.NULL


def test_a_timestamp_counts_microseconds_from_2000_utc() -> None:
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert copy_binary.timestamptz(epoch) == b"\x00\x00\x00\x08" + b"\x00" * 8
    later = epoch + timedelta(days=1, microseconds=7)
    assert copy_binary.timestamptz(later) == struct.pack(">iq", 8, 86_400_000_007)
    # The same instant in another zone; and an instant before the epoch.
    plus_two = later.astimezone(timezone(timedelta(hours=2)))
    assert copy_binary.timestamptz(plus_two) == copy_binary.timestamptz(later)
    assert copy_binary.timestamptz(epoch - timedelta(microseconds=1)) == struct.pack(">iq", 8, -1)


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        copy_binary.timestamptz(datetime(2025, 1, 1))


def test_an_integer_out_of_int4_range_is_refused() -> None:
    assert copy_binary.int4(2**31 - 1)[4:] == b"\x7f\xff\xff\xff"
    with pytest.raises(struct.error):
        copy_binary.int4(2**31)
