"""Fault injection and latency of the fake Scout."""

from __future__ import annotations

import time

import httpx
import pytest

from django_scout.testing import AgentBehaviour, FakeScout

CALLBACK = "http://127.0.0.1:9/callback"
START = {"messages": [{"content": "go"}], "callback_url": CALLBACK}


@pytest.fixture(autouse=True)
def _no_callbacks(fake_scout: FakeScout) -> None:
    # No callbacks are wanted here: the discard port would only produce retries.
    fake_scout.default_agent = AgentBehaviour(auto_callback=False)


def test_fail_next_503_then_recover(api, fake_scout):
    fault = fake_scout.fail_next("POST", "/world/*", status=503, times=2)
    statuses = [api.post("/world/a1/_interact_async", json=START).status_code for _ in range(3)]
    assert statuses == [503, 503, 202]
    assert fault.hits == 2
    assert fault.exhausted
    assert [r.fault for r in fake_scout.requests] == ["status 503", "status 503", None]
    assert [r.status for r in fake_scout.requests] == [503, 503, 202]
    assert len(fake_scout.interactions) == 1  # failed requests start nothing


def test_fault_body_is_fastapi_style(api, fake_scout):
    fake_scout.fail_next(status=500)
    response = api.get("/agents")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}


def test_429_with_retry_after(api, fake_scout):
    fake_scout.fail_next("GET", "/agents", status=429, retry_after=3)
    response = api.get("/agents")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == {"detail": "Too Many Requests"}
    assert api.get("/agents").status_code == 200


def test_retry_after_as_an_http_date(api, fake_scout):
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    fake_scout.fail_next(status=503, retry_after=date)
    assert api.get("/agents").headers["retry-after"] == date


def test_injected_422_and_custom_body(api, fake_scout):
    fake_scout.fail_next("POST", "*", status=422)
    response = api.post("/v2/workflows/wf/execute", json={})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    fake_scout.fail_next(status=400, body={"error": "custom"})
    assert api.get("/agents").json() == {"error": "custom"}


def test_faults_match_method_and_path(api, fake_scout):
    fake_scout.fail_next("POST", "/v2/workflows/*/execute", status=502)
    assert api.get("/agents").status_code == 200
    assert api.post("/v2/workflows/execute", json={"workflow_config": {}}).status_code == 200
    assert api.post("/v2/workflows/wf/execute", json={}).status_code == 502
    assert api.post("/v2/workflows/wf/execute", json={}).status_code == 200


def test_faults_apply_before_authentication(fake_scout):
    fake_scout.fail_next(status=503)
    assert httpx.get(fake_scout.url("/agents"), trust_env=False).status_code == 503


def test_faults_apply_in_order(api, fake_scout):
    fake_scout.fail_next(status=500)
    fake_scout.fail_next(status=502)
    assert [api.get("/agents").status_code for _ in range(3)] == [500, 502, 200]


def test_dropped_connection(api, fake_scout):
    fake_scout.fail_next("POST", "/world/*/_interact_async", drop_connection=True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/world/a1/_interact_async", json=START)
    assert fake_scout.requests[0].fault == "dropped"
    assert fake_scout.requests[0].status is None
    assert fake_scout.interactions == []
    assert api.post("/world/a1/_interact_async", json=START).status_code == 202


def test_clear_faults(api, fake_scout):
    fake_scout.fail_next(status=500, times=5)
    fake_scout.slow("*", 5)
    fake_scout.clear_faults()
    assert api.get("/agents").status_code == 200


def test_global_latency(api, fake_scout):
    fake_scout.latency = 1.0
    started = time.monotonic()
    assert api.get("/agents").status_code == 200
    assert time.monotonic() - started >= 1.0
    fake_scout.latency = 0
    started = time.monotonic()
    api.get("/agents")
    assert time.monotonic() - started < 0.5  # far under the latency, even on a loaded machine


def test_slow_path(api, fake_scout):
    fake_scout.slow("/v2/workflows/*", 1.0)
    started = time.monotonic()
    api.get("/agents")
    fast = time.monotonic() - started
    started = time.monotonic()
    api.post("/v2/workflows/wf/execute", json={})
    slow = time.monotonic() - started
    assert fast < 0.5
    assert slow >= 1.0


def test_slow_answer_times_the_client_out(api, fake_scout):
    fake_scout.slow("/agents", 0.5, method="GET")
    with pytest.raises(httpx.ReadTimeout):
        api.get("/agents", timeout=0.1)


def test_invalid_fault_arguments(fake_scout):
    with pytest.raises(ValueError, match="4xx or 5xx"):
        fake_scout.fail_next(status=200)
    with pytest.raises(ValueError, match="times"):
        fake_scout.fail_next(times=0)
    with pytest.raises(ValueError, match="latency"):
        fake_scout.latency = -1
