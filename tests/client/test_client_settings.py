"""``from_settings()`` reads ``settings.SCOUT``; the wire layer itself never imports Django."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_scout.client import AsyncScoutClient, ScoutClient
from tests.client.helpers import json_response

SCOUT = {
    "API_KEY": "settings-key",
    "API_BASE_URL": "https://scout.internal.test/api",
    "TIMEOUT": 12.5,
    "MAX_RETRIES": 1,
    "TRUSTED_EVENTS_HOSTS": ["events.internal.test"],
    "ASYNC_INTERACT_ENDPOINT": "v1",
}


def test_from_settings_uses_every_setting():
    calls = []

    def handler(request):
        calls.append(request)
        return json_response(
            503 if len(calls) == 1 else 202, {"session_id": "s", "events_url": "u"}
        )

    with override_settings(SCOUT=SCOUT):
        client = ScoutClient.from_settings(
            transport=httpx.MockTransport(handler), sleep=lambda delay: None
        )
    with client:
        assert client.base_url == "https://scout.internal.test/api/"
        assert client.max_retries == 1
        assert client.trusted_hosts == ("scout.internal.test", "events.internal.test")
        assert client._config.timeout == 12.5
        client.agents.interact_async("a1", "hi", callback_url="https://app.test/cb")
    assert len(calls) == 2
    assert str(calls[-1].url) == "https://scout.internal.test/api/v1/agents/a1/interact"
    assert calls[-1].headers["authorization"] == "Bearer settings-key"
    assert "settings-key" not in repr(client)


def test_from_settings_defaults_trust_the_api_host_only():
    with override_settings(SCOUT={"API_KEY": "k", "API_BASE_URL": "https://api.scoutos.test"}):
        client = ScoutClient.from_settings()
    assert client.trusted_hosts == ("api.scoutos.test",)
    assert client._config.async_interact_endpoint == "world"
    assert client.max_retries == 3
    client.close()


def test_from_settings_without_api_key_is_improperly_configured():
    with (
        override_settings(SCOUT={"API_BASE_URL": "https://api.scoutos.test"}),
        pytest.raises(ImproperlyConfigured, match="API_KEY"),
    ):
        ScoutClient.from_settings()


def test_from_settings_uses_the_test_settings():
    client = ScoutClient.from_settings()
    assert client.base_url == "https://api.scoutos.test/"
    client.close()


async def test_async_from_settings():
    async def handler(request):
        return json_response(200, [])

    with override_settings(SCOUT=SCOUT):
        client = AsyncScoutClient.from_settings(transport=httpx.MockTransport(handler))
    async with client:
        assert await client.agents.list() == []
        assert client.base_url == "https://scout.internal.test/api/"


def test_client_package_does_not_import_django():
    code = (
        "import sys, django_scout.client, django_scout.client.client;"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'));"
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
