"""Secrets that Scout (or the network) echoes back never reach an error, its body or a log line."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from django_scout.client import ScoutAuthError, ScoutError, ScoutServerError
from tests.client.helpers import API_KEY, Harness, json_response

CALLBACK = "https://app.example.test/cb"
BEARER = "tok_bearer_5f3c2a1b9e"
WEBHOOK_TOKEN = "whk_token_8a7b6c5d4e"
WEBHOOK = f"https://hooks.scoutos.com/v1/workflows/wf_1/webhook/{WEBHOOK_TOKEN}"


def everything_shown(error: ScoutError) -> str:
    """What a log line, a traceback, an error report or a stored field could show of ``error``."""
    return "\n".join(
        [
            str(error),
            repr(error),
            repr(error.args),
            repr(vars(error)),
            json.dumps(vars(error), default=str),
        ]
    )


async def interact(h: Harness) -> None:
    await h.call("agents.interact_async", "a1", "hi", callback_url=CALLBACK)


@pytest.mark.parametrize("status", [401, 500])
async def test_api_key_echoed_in_an_error_body_is_masked(make, status, caplog):
    echo = {
        "detail": f"invalid API key {API_KEY}",
        "request": {"headers": {"authorization": f"Bearer {API_KEY}"}},
    }
    h = make(lambda request: json_response(status, echo), max_retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoutError) as caught:
        await interact(h)
    shown = everything_shown(caught.value) + caplog.text
    assert API_KEY not in shown
    assert "invalid API key ***" in str(caught.value)


async def test_bearer_token_in_a_text_error_body_is_masked(make, caplog):
    h = make(
        lambda request: httpx.Response(502, text=f"proxy: upstream Authorization: Bearer {BEARER}"),
        max_retries=1,
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoutServerError) as caught:
        await h.call("agents.list")
    assert BEARER not in everything_shown(caught.value) + caplog.text


async def test_webhook_token_echoed_by_the_hook_host_is_masked(make, caplog):
    echo = {"detail": f"no trigger at {WEBHOOK}", "token": WEBHOOK_TOKEN, "hint": WEBHOOK_TOKEN}
    h = make(lambda request: json_response(401, echo))
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoutAuthError) as caught:
        await h.call("workflows.trigger_webhook", WEBHOOK, {})
    assert WEBHOOK_TOKEN not in everything_shown(caught.value) + caplog.text


async def test_transport_error_text_is_masked(make, caplog):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused Authorization: Bearer {API_KEY}")

    h = make(refuse, max_retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoutError) as caught:
        await h.call("agents.list")
    assert API_KEY not in everything_shown(caught.value) + caplog.text


async def test_token_in_an_events_url_query_is_not_logged_by_httpx(make, caplog):
    url = "https://api.scoutos.test/v1/agent-sessions/s1/events?token=qtok_1234567890"
    h = make(lambda request: httpx.Response(200, json=[]))
    with caplog.at_level(logging.DEBUG):
        await h.collect("sessions.events", url)
    assert "HTTP Request" in caplog.text
    assert "qtok_1234567890" not in caplog.text
