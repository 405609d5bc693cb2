"""Fault and latency rules: which requests fail or slow down, and how.

Paths are matched with shell-style globs (:func:`fnmatch.fnmatchcase`) against the request path
without its query string; ``*`` also matches ``/``. Methods match case-insensitively; ``"*"``
matches any method.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http import HTTPStatus
from typing import Any

__all__ = ["Fault", "SlowRule", "default_fault_body"]


def _matches(pattern_method: str, pattern_path: str, method: str, path: str) -> bool:
    if pattern_method != "*" and pattern_method.upper() != method.upper():
        return False
    return fnmatchcase(path, pattern_path)


def default_fault_body(status: int) -> dict[str, Any]:
    """The JSON body of an injected error status: FastAPI-style ``{"detail": ...}``."""
    if status == 422:
        return {
            "detail": [{"loc": ["body"], "msg": "injected validation error", "type": "value_error"}]
        }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Injected error"
    return {"detail": phrase}


@dataclass
class Fault:
    """A pending fault: the next ``times`` matching requests fail.

    Either they are answered with ``status`` (and ``Retry-After`` when ``retry_after`` is set,
    and ``body`` or :func:`default_fault_body`), or, with ``drop_connection``, the socket is
    closed without any answer. ``remaining`` counts down; ``hits`` counts the applications.
    """

    method: str
    path: str
    status: int = 503
    times: int = 1
    retry_after: float | str | None = None
    body: Any = None
    drop_connection: bool = False
    remaining: int = field(init=False)
    hits: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("a fault must apply at least once (times >= 1)")
        if not self.drop_connection and not 400 <= self.status < 600:
            raise ValueError(f"an injected status must be 4xx or 5xx, got {self.status}")
        self.remaining = self.times

    def claim(self, method: str, path: str) -> bool:
        """Use up one application if this fault matches the request; ``True`` if it did."""
        if not _matches(self.method, self.path, method, path):
            return False
        with self._lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            self.hits += 1
            return True

    @property
    def exhausted(self) -> bool:
        """Whether the fault has been applied ``times`` times."""
        return self.remaining <= 0

    def describe(self) -> str:
        """A short label for :attr:`RecordedRequest.fault`."""
        return "dropped" if self.drop_connection else f"status {self.status}"

    def response_headers(self) -> dict[str, str]:
        """The extra headers of the injected answer."""
        if self.retry_after is None:
            return {}
        value = self.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return {"Retry-After": str(value)}

    def response_body(self) -> Any:
        """The JSON body of the injected answer."""
        return self.body if self.body is not None else default_fault_body(self.status)


@dataclass(frozen=True)
class SlowRule:
    """Matching requests wait ``seconds`` (on top of the global latency) before being handled."""

    method: str
    path: str
    seconds: float

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies to the request."""
        return _matches(self.method, self.path, method, path)
