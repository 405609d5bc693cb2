"""The retry rule: repeat only what cannot start work twice at Scout (no idempotency keys)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from django_scout.client import (
    ExponentialBackoff,
    RetryPolicy,
    ScoutAPIError,
    ScoutRateLimitError,
    ScoutServerError,
    ScoutTransportError,
    WorkflowRunStarted,
    parse_retry_after,
)
from tests.client.helpers import (
    API_KEY,
    Handler,
    Harness,
    failing_stream,
    json_response,
    sse_response,
)

CALLBACK = "https://app.example.test/cb"
OK_BODIES = {
    "GET": [],
    "POST": {"session_id": "s1", "events_url": "https://api.scoutos.test/e"},
}


def always(outcome: int | Exception) -> Handler:
    """A handler that answers every request with ``outcome`` (a status or an exception)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(outcome, Exception):
            raise outcome
        return json_response(outcome, {"detail": "x"})

    return handler


async def call(h: Harness, method: str) -> Any:
    if method == "GET":
        return await h.call("agents.list")
    return await h.call("agents.interact_async", "a1", "hi", callback_url=CALLBACK)


# (outcome, method, retried?)
RETRY_TABLE = [
    (httpx.ConnectError("refused"), "POST", True),
    (httpx.ConnectTimeout("connect"), "POST", True),
    (httpx.PoolTimeout("pool"), "POST", True),
    (429, "POST", True),
    (502, "POST", True),
    (503, "POST", True),
    (504, "POST", True),
    (500, "POST", False),
    (httpx.ReadTimeout("read"), "POST", False),
    (httpx.RemoteProtocolError("dropped"), "POST", False),
    (httpx.ReadError("reset"), "POST", False),
    (400, "POST", False),
    (401, "POST", False),
    (404, "POST", False),
    (408, "POST", False),
    (422, "POST", False),
    (httpx.ConnectError("refused"), "GET", True),
    (429, "GET", True),
    (500, "GET", True),
    (502, "GET", True),
    (503, "GET", True),
    (504, "GET", True),
    (httpx.ReadTimeout("read"), "GET", True),
    (httpx.RemoteProtocolError("dropped"), "GET", True),
    (401, "GET", False),
    (404, "GET", False),
    (422, "GET", False),
]


@pytest.mark.parametrize(
    ("outcome", "method", "retried"),
    RETRY_TABLE,
    ids=[
        f"{method}-{type(outcome).__name__ if isinstance(outcome, Exception) else outcome}"
        for outcome, method, _ in RETRY_TABLE
    ],
)
async def test_retry_table(make, outcome, method, retried):
    h = make(always(outcome), max_retries=3)
    with pytest.raises((ScoutAPIError, ScoutTransportError)):
        await call(h, method)
    assert len(h.calls) == (4 if retried else 1)
    assert len(h.delays) == (3 if retried else 0)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_retry_then_success(make, method):
    answers = iter([503, 502, None])

    def handler(request):
        status = next(answers)
        if status is None:
            return json_response(200, OK_BODIES[method])
        return json_response(status, {})

    h = make(handler)
    await call(h, method)
    assert len(h.calls) == 3
    assert h.delays == [0.5, 1.0]


async def test_max_retries_zero_means_one_attempt(make):
    h = make(always(503), max_retries=0)
    with pytest.raises(ScoutServerError):
        await call(h, "POST")
    assert len(h.calls) == 1
    assert h.delays == []


async def test_backoff_grows_and_is_capped(make):
    h = make(always(503), max_retries=8)
    with pytest.raises(ScoutServerError):
        await call(h, "POST")
    assert len(h.calls) == 9
    assert h.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


async def test_retry_after_is_honoured(make):
    h = make(lambda request: json_response(429, {}, headers={"Retry-After": "7"}), max_retries=2)
    with pytest.raises(ScoutRateLimitError):
        await call(h, "POST")
    assert h.delays == [7.0, 7.0]


async def test_retry_after_on_503_is_honoured(make):
    h = make(lambda request: json_response(503, {}, headers={"Retry-After": "3"}), max_retries=1)
    with pytest.raises(ScoutServerError):
        await call(h, "GET")
    assert h.delays == [3.0]


async def test_retry_after_beyond_cap_is_not_waited_for(make):
    h = make(lambda request: json_response(429, {}, headers={"Retry-After": "61"}), max_retries=3)
    with pytest.raises(ScoutRateLimitError) as caught:
        await call(h, "POST")
    assert caught.value.retry_after == 61.0
    assert len(h.calls) == 1
    assert h.delays == []


async def test_post_read_timeout_is_never_retried(make):
    h = make(always(httpx.ReadTimeout("timed out")), max_retries=5)
    with pytest.raises(ScoutTransportError) as caught:
        await call(h, "POST")
    assert caught.value.request_sent is True
    assert len(h.calls) == 1


async def test_stream_retried_before_2xx(make):
    answers = iter([503, 200])

    def handler(request):
        if next(answers) == 503:
            return json_response(503, {})
        return sse_response((None, '{"name": "workflow_run_started"}'))

    h = make(handler)
    events = await h.collect("workflows.stream", "wf")
    assert [type(e) for e in events] == [WorkflowRunStarted]
    assert len(h.calls) == 2
    assert h.delays == [0.5]


async def test_stream_not_retried_after_2xx_started(make):
    h = None

    def handler(request):
        assert h is not None
        stream = failing_stream(
            h.mode, [b'data: {"name": "workflow_run_started"}\n\n'], httpx.ReadError("reset")
        )
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    h = make(handler, max_retries=3)
    seen: list[Any] = []
    with pytest.raises(ScoutTransportError) as caught:
        await h.collect_into(seen, "workflows.stream", "wf")
    assert caught.value.request_sent is True
    assert [type(e) for e in seen] == [WorkflowRunStarted]
    assert len(h.calls) == 1
    assert h.delays == []


async def test_get_stream_read_failure_after_2xx_is_not_retried(make):
    h = None

    def handler(request):
        assert h is not None
        stream = failing_stream(h.mode, [b'{"name": "a"}\n'], httpx.ReadTimeout("idle"))
        return httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=stream)

    h = make(handler, max_retries=3)
    with pytest.raises(ScoutTransportError):
        await h.collect("sessions.events", "https://api.scoutos.test/e")
    assert len(h.calls) == 1


async def test_retries_are_logged_at_warning_without_the_key(make, caplog):
    h = make(always(503), max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoutServerError):
        await call(h, "POST")
    warnings = [r for r in caplog.records if r.name == "django_scout.client"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    assert "retry 1 of 2" in warnings[0].getMessage()
    assert "503" in warnings[0].getMessage()
    assert API_KEY not in caplog.text


# --------------------------------------------------------------------------- units


def test_exponential_backoff_with_jitter_stays_in_range():
    low = ExponentialBackoff(random_source=lambda: 1.0)
    high = ExponentialBackoff(random_source=lambda: 0.0)
    assert [high(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [low(n) for n in range(1, 4)] == [0.375, 0.75, 1.5]


def test_parse_retry_after():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("tomorrow") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_policy_is_retryable_matches_the_rule():
    def api(status: int) -> ScoutAPIError:
        return (
            ScoutServerError("x", status_code=status)
            if status >= 500
            else ScoutAPIError("x", status_code=status)
        )

    assert RetryPolicy.is_retryable("POST", ScoutTransportError("x", request_sent=False))
    assert not RetryPolicy.is_retryable("POST", ScoutTransportError("x", request_sent=True))
    assert RetryPolicy.is_retryable("GET", ScoutTransportError("x", request_sent=True))
    assert not RetryPolicy.is_retryable("POST", api(500))
    assert RetryPolicy.is_retryable("GET", api(500))
    assert RetryPolicy.is_retryable("POST", ScoutRateLimitError("x", status_code=429))
    assert not RetryPolicy.is_retryable("GET", api(501))
    assert not RetryPolicy.is_retryable("GET", api(409))
