"""When a failed request may be repeated, and how long to wait first.

Scout has no idempotency keys, so repeating a POST that reached Scout may run an agent or a
workflow twice. A request is retried only when repeating it cannot start work twice:

* the failure happened before the request was sent (connection refused, connect/pool timeout);
* Scout answered 429, 502, 503 or 504 (the request did not reach a worker), any method;
* the method is idempotent (GET) and Scout answered 500 or the connection dropped/timed out
  after the request was sent.

A POST is never retried after a read timeout or a 500.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone

from .errors import ScoutAPIError, ScoutError, ScoutTransportError

__all__ = [
    "IDEMPOTENT_METHODS",
    "MAX_RETRY_AFTER",
    "ExponentialBackoff",
    "RetryPolicy",
    "parse_retry_after",
]

#: Methods that may be repeated after an ambiguous failure.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A ``Retry-After`` longer than this (seconds) is not waited for: the error is raised instead.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class ExponentialBackoff:
    """Delay before retry number ``n`` (1-based): ``min(cap, base * factor ** (n - 1))``, then
    multiplied by a random factor in ``[1 - jitter, 1]``.

    The defaults give about 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s. ``jitter=0`` makes the delays
    exact (handy in tests).
    """

    base: float = 0.5
    factor: float = 2.0
    cap: float = 10.0
    jitter: float = 0.25
    random_source: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __call__(self, retry_number: int) -> float:
        """Return the delay in seconds before retry ``retry_number`` (1 for the first retry)."""
        exponent = max(retry_number - 1, 0)
        delay = min(self.cap, self.base * self.factor**exponent)
        return delay * (1.0 - self.jitter * self.random_source())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: seconds (``"120"``) or an HTTP-date; ``None`` if absent
    or unreadable. A date in the past gives ``0.0``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _retry_after_of(error: ScoutError) -> float | None:
    if isinstance(error, ScoutAPIError):
        headers: Mapping[str, str] = error.headers
        return parse_retry_after(headers.get("retry-after"))
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Decides whether and when to retry (see the module docstring for the rule)."""

    max_retries: int = 3
    backoff: Callable[[int], float] = field(default_factory=ExponentialBackoff)
    max_retry_after: float = MAX_RETRY_AFTER

    @staticmethod
    def is_retryable(method: str, error: ScoutError) -> bool:
        """True when repeating ``method`` after ``error`` cannot start work twice at Scout."""
        if error.retry_safe:
            return True
        if method.upper() not in IDEMPOTENT_METHODS:
            return False
        if isinstance(error, ScoutTransportError):
            return True
        return isinstance(error, ScoutAPIError) and error.status_code == 500

    def delay_before_retry(self, method: str, error: ScoutError, retries_done: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise ``error``.

        ``Retry-After`` is honoured (it replaces the backoff); one longer than
        :attr:`max_retry_after` ends the retries.
        """
        if retries_done >= self.max_retries or not self.is_retryable(method, error):
            return None
        retry_after = _retry_after_of(error)
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return max(self.backoff(retries_done + 1), 0.0)
