"""The callback body Scout POSTs to ``callback_url``, as a pydantic model (no Django import)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EARLIEST", "LATEST", "CallbackError", "CallbackPayload", "check_instant"]

#: The first and last instants django-scout stores: a day inside Python's ``datetime`` range,
#: so that a stored time converts to UTC and to any local time zone without overflowing.
EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)


def check_instant(value: datetime) -> datetime:
    """``value`` unchanged if it lies between :data:`EARLIEST` and :data:`LATEST`.

    Naive values are read as UTC. Raises ``ValueError`` otherwise: such a time (e.g.
    ``0001-01-01T00:00:00+14:00``) overflows when converted to UTC for the database.
    """
    try:
        instant = (
            value.astimezone(timezone.utc)
            if value.tzinfo is not None
            else value.replace(tzinfo=timezone.utc)
        )
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValueError(
            f"{value.isoformat()} is out of range "
            f"({EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} UTC)"
        )
    return value


class CallbackError(BaseModel):
    """Scout's ``error`` object on a failed interaction."""

    model_config = ConfigDict(extra="allow")

    code: str | None = Field(default=None, max_length=100)
    message: str | None = None


class CallbackPayload(BaseModel):
    """A completion callback: ``callback_event_id``, ``session_id`` and ``status`` are required.

    ``completed_at`` and ``events_url`` are documented as always present but are tolerated when
    missing (the completion time then defaults to when the callback was processed). Unknown
    fields are kept.
    """

    model_config = ConfigDict(extra="allow")

    callback_event_id: str = Field(min_length=1, max_length=255)
    session_id: str = Field(min_length=1, max_length=255)
    status: Literal["succeeded", "failed"]
    completed_at: datetime | None = None
    events_url: str | None = Field(default=None, max_length=2048)
    error: CallbackError | None = None

    @field_validator("completed_at")
    @classmethod
    def _completed_at_in_range(cls, value: datetime | None) -> datetime | None:
        return None if value is None else check_instant(value)
