"""Scout API client (sync and async). No Django import here."""

from .errors import (
    ScoutAPIError,
    ScoutAuthError,
    ScoutError,
    ScoutNotFoundError,
    ScoutRateLimitError,
    ScoutServerError,
    ScoutStreamError,
    ScoutTransportError,
    ScoutValidationError,
    UntrustedURLError,
)

__all__ = [
    "ScoutAPIError",
    "ScoutAuthError",
    "ScoutError",
    "ScoutNotFoundError",
    "ScoutRateLimitError",
    "ScoutServerError",
    "ScoutStreamError",
    "ScoutTransportError",
    "ScoutValidationError",
    "UntrustedURLError",
]
