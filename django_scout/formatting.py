"""Durations for people, the same on every page (admin lists, detail pages, the dashboard)."""

from __future__ import annotations

__all__ = ["format_duration"]


def format_duration(seconds: float) -> str:
    """``seconds`` for people: ``850 ms``, ``1.9 s``, ``2 min 05 s``, ``3 h 07 min``, ``2 d 04 h``.

    Negative values (clock skew) read as zero.
    """
    seconds = max(0.0, seconds)
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis} ms"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(seconds / 60)
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    hours = round(seconds / 3600)
    return f"{hours // 24} d {hours % 24:02d} h"
