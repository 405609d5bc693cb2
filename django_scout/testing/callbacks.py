"""Signed completion callbacks: building, signing and delivering them at least once.

A delivery POSTs the JSON body with ``X-Scout-Signature`` (``t=<unix seconds>,sig=<base64
HMAC-SHA256 over "{t}.{body}">``) and ``X-Scout-Signature-Alg: HMAC-SHA256``. Like Scout, it
retries on network errors, timeouts and 5xx answers with exponential backoff and stops on any
other answer (2xx, 3xx, 4xx). Every attempt is recorded as a
:class:`~django_scout.testing.records.CallbackAttempt`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

from django_scout import __version__
from django_scout.payloads import CallbackError, CallbackPayload
from django_scout.signing import ALGORITHM, ALGORITHM_HEADER, SIGNATURE_HEADER, sign

from .generators import iso_z
from .records import CallbackAttempt

__all__ = [
    "CallbackDelivery",
    "CallbackDispatcher",
    "callback_payload",
    "encode_callback",
    "sign_callback",
]

logger = logging.getLogger("django_scout.testing")

_USER_AGENT = f"django-scout-fake-scout/{__version__}"


def callback_payload(
    session_id: str,
    events_url: str,
    status: str = "succeeded",
    *,
    error: Mapping[str, str] | None = None,
    callback_event_id: str | None = None,
    completed_at: datetime | str | None = None,
) -> dict[str, Any]:
    """A callback body as Scout sends it, built from :class:`~django_scout.payloads.CallbackPayload`
    (the model the callback view validates with), so that both agree on every field.

    ``error`` is included only when ``status`` is ``"failed"`` (a generic one when omitted);
    ``callback_event_id`` defaults to a new UUID and ``completed_at`` to now. Values are not
    validated, so a test can build a callback the view must refuse (an unknown ``status``, a
    ``completed_at`` that is not a time).
    """
    if isinstance(completed_at, datetime):
        completed = iso_z(completed_at)
    elif completed_at is None:
        completed = iso_z(datetime.now(timezone.utc))
    else:
        completed = completed_at
    fields: dict[str, Any] = {
        "callback_event_id": callback_event_id or str(uuid.uuid4()),
        "session_id": session_id,
        "status": status,
        "completed_at": completed,
        "events_url": events_url,
    }
    if status == "failed":
        details: dict[str, Any] = dict(error if error is not None else _GENERIC_ERROR)
        fields["error"] = CallbackError.model_construct(**details)
    payload = CallbackPayload.model_construct(**fields)
    # Serialized as given (the time as an ISO string), the error only when there is one.
    return payload.model_dump(mode="json", exclude_none=True, warnings=False)


_GENERIC_ERROR = {"code": "agent_error", "message": "The agent run failed (fake Scout)."}


def encode_callback(payload: Mapping[str, Any]) -> bytes:
    """The exact body bytes of a callback (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_callback(
    payload: Mapping[str, Any] | bytes, secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers of a signed callback, for tests that post callbacks themselves.

    ``payload`` is a dict (encoded with :func:`encode_callback`) or the exact body bytes;
    ``timestamp`` (Unix seconds) defaults to now. The headers are ``Content-Type``,
    ``X-Scout-Signature`` and ``X-Scout-Signature-Alg``.
    """
    body = payload if isinstance(payload, bytes) else encode_callback(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret, timestamp),
        ALGORITHM_HEADER: ALGORITHM,
    }
    return body, headers


class CallbackDelivery:
    """A callback being delivered: the original delivery plus any duplicates.

    Returned by :meth:`FakeScout.send_callback`. :meth:`wait` blocks until every delivery has
    finished (succeeded, given up, or been cancelled).
    """

    def __init__(self, payload: Mapping[str, Any], url: str) -> None:
        self.payload: dict[str, Any] = dict(payload)
        self.body: bytes = encode_callback(payload)
        self.url = url
        self.callback_event_id: str = str(payload.get("callback_event_id", ""))
        self.session_id: str = str(payload.get("session_id", ""))
        self._attempts: list[CallbackAttempt] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._first_answer = threading.Event()

    @property
    def attempts(self) -> list[CallbackAttempt]:
        """The finished attempts of this callback so far (all deliveries)."""
        with self._lock:
            return list(self._attempts)

    @property
    def done(self) -> bool:
        """Whether every delivery has finished."""
        return self._done.is_set()

    @property
    def delivered(self) -> bool:
        """Whether at least one attempt was answered 2xx."""
        return any(attempt.ok for attempt in self.attempts)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every delivery has finished; ``False`` on timeout."""
        return self._done.wait(timeout)

    def wait_first_answer(self, timeout: float | None = None) -> bool:
        """Wait until the first attempt has finished; ``False`` on timeout."""
        return self._first_answer.wait(timeout)

    def _add(self, attempt: CallbackAttempt) -> None:
        with self._lock:
            self._attempts.append(attempt)
        self._first_answer.set()

    def _finish(self) -> None:
        self._first_answer.set()
        self._done.set()


class CallbackDispatcher:
    """Delivers callbacks from background daemon threads, with retries and duplicates.

    ``record`` is called with every finished attempt. :meth:`cancel_all` stops the pending
    deliveries at their next pause; :meth:`join` waits for the threads to end.
    """

    def __init__(
        self,
        *,
        secret: str,
        record: Callable[[CallbackAttempt], None],
        max_attempts: int = 8,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        timeout: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("callback max_attempts must be >= 1")
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._record = record
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._cancel = threading.Event()

    # ------------------------------------------------------------------ public

    def dispatch(
        self,
        payload: Mapping[str, Any],
        url: str,
        *,
        delay: float = 0.0,
        duplicates: int = 0,
        concurrent: bool = False,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> CallbackDelivery:
        """Start delivering ``payload`` to ``url`` in the background and return its handle."""
        delivery = CallbackDelivery(payload, url)
        with self._lock:
            cancel = self._cancel
        self._spawn(
            self._drive,
            delivery,
            cancel,
            delay,
            duplicates,
            concurrent,
            secret or self.secret,
            timestamp,
            name=f"fake-scout-callback-{delivery.callback_event_id[:8]}",
        )
        return delivery

    def cancel_all(self) -> None:
        """Stop every pending delivery at its next pause (between attempts or before sending)."""
        with self._lock:
            self._cancel.set()
            self._cancel = threading.Event()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the delivery threads to end; ``False`` if some are still running."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [thread for thread in self._threads if thread.is_alive()]
            if not threads:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            threads[0].join(remaining)

    @property
    def pending(self) -> int:
        """How many delivery threads are still running."""
        with self._lock:
            return sum(1 for thread in self._threads if thread.is_alive())

    # ------------------------------------------------------------------ threads

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception:
                logger.exception("fake Scout: callback thread crashed")
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _drive(
        self,
        delivery: CallbackDelivery,
        cancel: threading.Event,
        delay: float,
        duplicates: int,
        concurrent: bool,
        secret: str,
        timestamp: int | None,
    ) -> None:
        try:
            if delay and cancel.wait(delay):
                return
            if not concurrent:
                for number in range(duplicates + 1):
                    if cancel.is_set():
                        return
                    self._deliver(delivery, number, cancel, secret, timestamp)
                return
            barrier = threading.Barrier(duplicates + 1)
            workers = [
                self._spawn(
                    self._deliver,
                    delivery,
                    number,
                    cancel,
                    secret,
                    timestamp,
                    barrier,
                    name=f"fake-scout-callback-{delivery.callback_event_id[:8]}-{number}",
                )
                for number in range(duplicates + 1)
            ]
            for worker in workers:
                worker.join()
        finally:
            delivery._finish()

    def _deliver(
        self,
        delivery: CallbackDelivery,
        number: int,
        cancel: threading.Event,
        secret: str,
        timestamp: int | None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        with httpx.Client(timeout=self.timeout, trust_env=False, follow_redirects=False) as client:
            for attempt in range(1, self.max_attempts + 1):
                if barrier is not None and attempt == 1:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        barrier.wait(timeout=5.0)
                result = self._attempt(client, delivery, number, attempt, secret, timestamp)
                delivery._add(result)
                self._record(result)
                if not self._should_retry(result):
                    return
                if attempt == self.max_attempts:
                    logger.warning(
                        "fake Scout: giving up callback %s after %d attempts",
                        delivery.callback_event_id,
                        attempt,
                    )
                    return
                pause = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                if cancel.wait(pause):
                    return

    @staticmethod
    def _should_retry(attempt: CallbackAttempt) -> bool:
        return attempt.status is None or attempt.status >= 500

    def _attempt(
        self,
        client: httpx.Client,
        delivery: CallbackDelivery,
        number: int,
        attempt: int,
        secret: str,
        timestamp: int | None,
    ) -> CallbackAttempt:
        body, headers = sign_callback(delivery.body, secret, timestamp)
        headers["User-Agent"] = _USER_AGENT
        started = time.time()
        status: int | None = None
        error: str | None = None
        try:
            response = client.post(delivery.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return CallbackAttempt(
            callback_event_id=delivery.callback_event_id,
            session_id=delivery.session_id,
            url=delivery.url,
            delivery=number,
            attempt=attempt,
            headers=headers,
            body=body,
            time=started,
            duration=time.time() - started,
            status=status,
            error=error,
        )
