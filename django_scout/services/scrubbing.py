"""Scrub text with this project's own secrets before it is stored or shown.

:func:`~django_scout.client.redaction.scrub` knows credential *shapes*; this adds the values
only the settings know: ``API_KEY`` and every ``SIGNING_SECRET``. The Scout client already
scrubs its errors; these helpers are the last line of defence where the services store error
text and where the admin shows what Scout sent.
"""

from __future__ import annotations

from typing import Any

from ..client.redaction import scrub, scrub_data
from ..conf import scout_settings
from .storable import storable_text

__all__ = ["configured_secrets", "scrub_json", "scrub_text"]


def configured_secrets() -> tuple[str, ...]:
    """The API key and the signing secrets from ``settings.SCOUT`` (those that are set)."""
    conf = scout_settings()
    return tuple(secret for secret in (conf.API_KEY, *conf.SIGNING_SECRET) if secret)


def scrub_text(text: str) -> str:
    """``text`` without credentials or configured secrets, nor NUL characters (which
    PostgreSQL cannot store; see :mod:`.storable`): use it for every stored error text."""
    return storable_text(scrub(text, configured_secrets()))


def scrub_json(value: Any) -> Any:
    """A copy of the JSON ``value`` without credentials or configured secrets."""
    return scrub_data(value, configured_secrets())
