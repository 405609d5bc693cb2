"""Write a :class:`SignalRecord` for every django-scout signal."""

from __future__ import annotations

from typing import Any

from django_scout import signals

from .models import SignalRecord

_receivers: list[Any] = []


def connect_all() -> None:
    """Connect one recorder per signal (idempotent)."""
    if _receivers:
        return
    for name in signals.__all__:

        def record(sender: Any, _name: str = name, **kwargs: Any) -> None:
            obj = kwargs.get("interaction") or kwargs.get("delivery") or kwargs.get("run")
            event_count = 0
            if _name == "interaction_succeeded" and obj is not None:
                event_count = obj.events.count()
            SignalRecord.objects.create(
                name=_name,
                object_id=str(getattr(obj, "pk", "")),
                status=str(getattr(obj, "status", "")),
                event_count=event_count,
            )

        getattr(signals, name).connect(record, weak=False, dispatch_uid=f"testapp.{name}")
        _receivers.append(record)
