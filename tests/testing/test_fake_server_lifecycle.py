"""Starting and stopping the fake Scout: context manager, threads, reset, CLI, pytest plugin."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

from django_scout.testing import AgentBehaviour, AppBehaviour, FakeScout, WorkflowBehaviour
from django_scout.testing.cli import build_parser, scout_from_args

AUTH = {"Authorization": "Bearer test-api-key"}
START = {"messages": [{"content": "go"}], "callback_url": "http://127.0.0.1:9/cb"}


def fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fake-scout")]


def test_context_manager_starts_and_stops_cleanly():
    before = set(fake_threads())
    with FakeScout() as scout:
        assert scout.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", scout.base_url)
        port = scout.port
        with httpx.Client(trust_env=False) as client:  # keeps its connection open
            assert client.get(scout.url("/agents"), headers=AUTH).status_code == 200
            scout.agent("agent-1", callback_delay=30)  # a callback still pending at stop
            client.post(scout.url("/world/agent-1/_interact_async"), json=START, headers=AUTH)
            started = time.monotonic()
            scout.stop()
            assert time.monotonic() - started < 2
    assert not scout.running
    assert set(fake_threads()) - before == set()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    with pytest.raises(RuntimeError, match="not running"):
        _ = scout.base_url
    scout.stop()  # stopping twice is harmless


def test_stop_ends_an_endless_stream_promptly():
    before = set(fake_threads())  # other fakes (e.g. a session-scoped one) may be running
    scout = FakeScout().start()
    scout.agent("agent-1", events=10**9, event_interval=0.5, auto_callback=False)
    with httpx.Client(trust_env=False, headers=AUTH) as client:
        url = client.post(scout.url("/world/agent-1/_interact_async"), json=START).json()[
            "events_url"
        ]
        with client.stream("GET", url) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("id: ")
            started = time.monotonic()
            scout.stop()
            assert time.monotonic() - started < 2
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in lines:
                    pass
    assert set(fake_threads()) - before == set()


def test_restart_and_reset():
    scout = FakeScout(latency=0.0)
    scout.start()
    with pytest.raises(RuntimeError, match="already running"):
        scout.start()
    scout.agent("agent-1", auto_callback=False)
    scout.app("app-1")
    scout.default_workflow = None
    scout.fail_next(status=500, times=3)
    scout.latency = 0.2
    scout.webhook_url("wf")
    with httpx.Client(trust_env=False, headers=AUTH) as client:
        assert client.get(scout.url("/agents")).status_code == 500
        scout.reset()
        assert scout.requests == []
        assert scout.latency == 0.0
        assert scout.default_workflow == WorkflowBehaviour()
        assert scout.default_agent == AgentBehaviour()
        assert scout.default_app is None
        assert client.get(scout.url("/agents")).json() == []
        scout.stop()
        scout.start()  # same object, new port
        assert client.get(scout.url("/agents")).status_code == 200
    scout.stop()


def test_scout_settings_points_django_scout_at_the_server(fake_scout):
    settings = fake_scout.scout_settings(CALLBACK_BASE_URL="http://127.0.0.1:8000")
    assert settings == {
        "API_KEY": "test-api-key",
        "API_BASE_URL": fake_scout.base_url,
        "SIGNING_SECRET": "test-signing-secret",
        "ALLOW_INSECURE_CALLBACKS": True,
        "CALLBACK_BASE_URL": "http://127.0.0.1:8000",
    }


def test_fake_scout_settings_fixture(fake_scout_settings, fake_scout, settings):
    assert settings.SCOUT is fake_scout_settings
    assert settings.SCOUT["API_BASE_URL"] == fake_scout.base_url
    assert settings.SCOUT["CALLBACK_BASE_URL"] == "https://app.example.test"  # kept


def test_the_fixture_defaults(fake_scout):
    assert fake_scout.running
    assert fake_scout.api_key == "test-api-key"
    assert fake_scout.signing_secret == "test-signing-secret"
    assert repr(fake_scout) == f"<FakeScout {fake_scout.base_url}>"


@pytest.mark.fake_scout(api_key="marked-key", latency=0.01)
def test_the_fixture_marker(fake_scout):
    assert fake_scout.api_key == "marked-key"
    assert fake_scout.latency == 0.01


def test_the_plugin_works_in_a_host_project(tmp_path):
    (tmp_path / "test_host.py").write_text(
        textwrap.dedent(
            """
            import httpx, threading

            def test_uses_the_fixture(fake_scout):
                response = httpx.get(
                    fake_scout.url("/agents"),
                    headers={"Authorization": "Bearer test-api-key"},
                    trust_env=False,
                )
                assert response.json() == []

            def test_it_was_stopped():
                names = [t.name for t in threading.enumerate()]
                assert not [n for n in names if n.startswith("fake-scout")], names
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


# --------------------------------------------------------------------------- CLI


def read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the CLI printed nothing"
    line: str = stream.readline()
    return line


def test_cli_serves_until_sigterm():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_scout.testing",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--events",
            "3",
            "--events-format",
            "ndjson",
            "--app",
            "app-1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = read_line(process.stdout, 15).strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url), base_url
        headers = {"Authorization": "Bearer cli-key"}
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as client:
            assert client.get("/agents").status_code == 401
            started = client.post("/world/a1/_interact_async", json=START, headers=headers)
            assert started.status_code == 202
            events = client.get(started.json()["events_url"], headers=headers)
            assert [json.loads(line)["data"]["index"] for line in events.text.splitlines()] == [
                0,
                1,
                2,
            ]
            app = client.post(
                "/v1/apps/execute", json={"id": "app-1", "inputs": {}}, headers=headers
            )
            assert app.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_cli_options_configure_the_behaviours():
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--outcome",
            "failed",
            "--error-code",
            "tool_error",
            "--duplicates",
            "2",
            "--concurrent-duplicates",
            "--callback-delay",
            "0.5",
            "--events",
            "100000",
            "--events-format",
            "json-object",
            "--workflow-shape",
            "docs",
            "--stream-interval",
            "0.1",
            "--any-app",
            "--latency",
            "0.1",
            "--callback-attempts",
            "3",
        ]
    )
    scout = scout_from_args(args)
    agent = scout.default_agent
    assert agent is not None
    assert agent.outcome == "failed"
    assert agent.callback_error() == {
        "code": "tool_error",
        "message": "The agent run failed (fake Scout).",
    }
    assert (agent.duplicates, agent.concurrent_duplicates, agent.callback_delay) == (2, True, 0.5)
    assert (agent.events, agent.events_format) == (100_000, "json-object")
    assert scout.default_workflow == WorkflowBehaviour(shape="docs", stream_interval=0.1)
    assert scout.default_app == AppBehaviour()
    assert scout.latency == 0.1
    assert not scout.running
