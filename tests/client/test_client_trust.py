"""Host trust: the API key goes only to the base URL's origin and the trusted hosts."""

from __future__ import annotations

import pytest

from django_scout.client import UntrustedURLError
from tests.client.helpers import API_KEY, json_response


def events_ok(request):
    return json_response(200, [{"name": "done"}])


@pytest.mark.parametrize(
    "events_url",
    [
        "https://evil.test/world/a/s/events",
        "https://api.scoutos.test.evil.test/events",
        "https://api.scoutos.test:8443/world/a/s/events",
        "http://api.scoutos.test/world/a/s/events",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "//api.scoutos.test/events",
        "/world/a/s/events",
        "https://user:pw@api.scoutos.test/events",
        "",
        "https://[::1",
    ],
)
async def test_untrusted_events_url_is_refused_before_sending(make, events_url):
    h = make(events_ok)
    with pytest.raises(UntrustedURLError):
        await h.collect("sessions.events", events_url)
    assert h.calls == []


async def test_untrusted_events_url_raises_at_call_time(make):
    h = make(events_ok)
    with pytest.raises(UntrustedURLError, match=r"evil\.test.*not a trusted host"):
        h.client.sessions.events("https://evil.test/events")
    assert h.calls == []


async def test_untrusted_url_error_is_a_value_error(make):
    h = make(events_ok)
    with pytest.raises(ValueError, match="not a trusted host"):
        h.client.sessions.events("https://evil.test/events")


async def test_same_origin_with_explicit_default_port_and_other_path_is_trusted(make):
    h = make(events_ok)
    events = await h.collect(
        "sessions.events", "https://API.scoutos.test:443/v1/agent-sessions/s/events"
    )
    assert [e.name for e in events] == ["done"]
    assert h.last.headers["authorization"] == f"Bearer {API_KEY}"


async def test_trusted_hosts_allow_another_host(make):
    h = make(events_ok, trusted_hosts=["events.scoutos.test", "replay.scoutos.test:8443"])
    await h.collect("sessions.events", "https://events.scoutos.test/s/1")
    await h.collect("sessions.events", "https://replay.scoutos.test:8443/s/1")
    assert [str(c.url) for c in h.calls] == [
        "https://events.scoutos.test/s/1",
        "https://replay.scoutos.test:8443/s/1",
    ]
    assert all(c.headers["authorization"] == f"Bearer {API_KEY}" for c in h.calls)
    with pytest.raises(UntrustedURLError):
        h.client.sessions.events("https://events.scoutos.test:9000/s/1")
    with pytest.raises(UntrustedURLError):
        h.client.sessions.events("https://replay.scoutos.test/s/1")
    assert h.client.trusted_hosts == (
        "api.scoutos.test",
        "events.scoutos.test",
        "replay.scoutos.test",
    )
    assert len(h.calls) == 2


async def test_http_base_url_allows_http_events_on_its_own_origin(make):
    h = make(events_ok, base_url="http://127.0.0.1:8765/api")
    await h.collect("sessions.events", "http://127.0.0.1:8765/world/a/s/events")
    assert h.last.url.port == 8765
    with pytest.raises(UntrustedURLError):
        h.client.sessions.events("http://127.0.0.1:9999/world/a/s/events")


async def test_base_url_with_path_prefix(make):
    h = make(lambda request: json_response(200, []), base_url="https://proxy.test/scout/v0")
    await h.call("agents.list")
    assert str(h.last.url) == "https://proxy.test/scout/v0/agents"
