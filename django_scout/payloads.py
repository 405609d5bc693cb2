"""The callback body Scout POSTs to ``callback_url``, as a pydantic model (no Django import)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CallbackError", "CallbackPayload"]


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
