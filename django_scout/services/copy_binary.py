"""PostgreSQL's binary ``COPY`` format, for the few column types the event store writes.

A binary ``COPY … FROM STDIN`` stream is a signature, the rows (a field count, then each field
as its length and its bytes in the type's binary form, or a length of -1 for ``NULL``) and an
end marker. The server reads each field with the binary input function of the column it goes
into. Encoding rows here, rather than with ``psycopg``'s ``Copy.write_row``, lets the event store
build a batch's bytes on its read-ahead thread while the connection's thread waits for the
server, and then send them in one call (``Copy.write``).

Only what the events table needs is here: ``uuid``, ``int4``, text (``varchar``), ``jsonb``
given as JSON text, and ``timestamptz`` from aware datetimes.
"""

from __future__ import annotations

import struct
import uuid
from datetime import datetime, timedelta, timezone

__all__ = ["NULL", "int4", "jsonb", "payload", "row_start", "text", "timestamptz", "uuid_field"]

#: The stream's signature, then a flags field and a header extension length, both 0.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: A field count of -1: the end of the stream.
_TRAILER = struct.pack(">h", -1)
#: A field of length -1.
NULL = struct.pack(">i", -1)

_LENGTH = struct.Struct(">i")
_INT4 = struct.Struct(">ii")
_INT8 = struct.Struct(">iq")
_FIELD_COUNT = struct.Struct(">h")
#: ``timestamptz`` counts microseconds from this instant.
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
#: The ``jsonb`` binary format's version.
_JSONB_VERSION = b"\x01"


def payload(rows: list[bytes]) -> bytes:
    """A whole ``COPY`` stream of the encoded ``rows``."""
    return b"".join((_HEADER, *rows, _TRAILER))


def row_start(field_count: int) -> bytes:
    """What begins a row of ``field_count`` fields."""
    return _FIELD_COUNT.pack(field_count)


def uuid_field(value: uuid.UUID) -> bytes:
    """A ``uuid`` field."""
    return _LENGTH.pack(16) + value.bytes


def int4(value: int) -> bytes:
    """An ``int4`` field; ``struct.error`` when ``value`` does not fit."""
    return _INT4.pack(4, value)


def text(value: str) -> bytes:
    """A text (``text``, ``varchar``) field, UTF-8 encoded."""
    data = value.encode()
    return _LENGTH.pack(len(data)) + data


def jsonb(json_text: str | None) -> bytes:
    """A ``jsonb`` field from JSON text (the server parses it); ``NULL`` for ``None``."""
    if json_text is None:
        return NULL
    data = json_text.encode()
    return _LENGTH.pack(len(data) + 1) + _JSONB_VERSION + data


def timestamptz(value: datetime | None) -> bytes:
    """A ``timestamptz`` field from an aware datetime; ``NULL`` for ``None``."""
    if value is None:
        return NULL
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone")
    return _INT8.pack(8, (value - _EPOCH) // _MICROSECOND)
