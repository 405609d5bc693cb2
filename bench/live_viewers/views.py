"""The permission hook both relays use, and the bare relay (see the package's docs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, models
from django.http import HttpRequest, StreamingHttpResponse

from django_scout.models import Interaction, InteractionEvent, InteractionStatus

from .settings import BARE_POLL

TERMINAL = frozenset(InteractionStatus.terminal())


def anyone(request: HttpRequest, obj: models.Model) -> bool:
    """``LIVE_PERMISSION`` for the benchmark: every viewer may watch every row."""
    return True


def _read(pk: UUID, after: int) -> tuple[str | None, list[tuple[Any, ...]]]:
    """The row's status and its events above ``after``; closes the connection afterwards."""
    try:
        status = Interaction.objects.filter(pk=pk).values_list("status", flat=True).first()
        events = list(
            InteractionEvent.objects.filter(interaction_id=pk, sequence__gt=after)
            .order_by("sequence")
            .values_list("sequence", "name", "data", "timestamp", "created_at")[:200]
        )
        return status, events
    finally:
        close_old_connections()


def _message(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = "" if event_id is None else f"id: {event_id}\n"
    text = json.dumps(data, cls=DjangoJSONEncoder)
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


async def _stream(pk: UUID) -> AsyncIterator[bytes]:
    read = sync_to_async(_read, thread_sensitive=False)
    after = -1
    sent_status = None
    while True:
        status, events = await read(pk, after)
        for sequence, name, data, timestamp, created_at in events:
            body = {"name": name, "data": data, "timestamp": timestamp, "created_at": created_at}
            yield _message("scout_event", body, sequence)
            after = sequence
        if status != sent_status:
            yield _message("status", {"status": status})
            sent_status = status
        if status is None or status in TERMINAL:
            yield _message("end", {"status": status})
            return
        if len(events) < 200:
            await asyncio.sleep(BARE_POLL)


async def bare_relay(request: HttpRequest, pk: UUID) -> StreamingHttpResponse:
    """``GET`` one interaction's events and status as Server-Sent Events, read by polling."""
    response = StreamingHttpResponse(_stream(pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response
