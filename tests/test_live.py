"""The live relay (``live/interactions/<id>/``, ``live/runs/<id>/``): wire format, resume,
heartbeats, the end, the permission hook, and the notifications the services send.

The synchronous (WSGI) stream is read through Django's test client; the asynchronous one
through ``AsyncClient`` (an ASGI request), both on SQLite, where the relay polls. Real servers
and the PostgreSQL and Redis channels are in ``test_live_asgi.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import run_checks
from django.db import connection, transaction
from django.test import AsyncClient, Client, override_settings
from django.urls import reverse
from django.utils import timezone

from django_scout import live, views
from django_scout.client.streams import SessionEvent
from django_scout.conf import InvalidScoutSettings, build_settings
from django_scout.models import Interaction, WorkflowRun, WorkflowRunEvent
from django_scout.services import (
    accept_interaction,
    complete_interaction,
    reconcile,
    store_events,
)
from django_scout.services import live as live_services
from django_scout.services.workflows import finish_run, mark_running
from tests.helpers import UNIT_SCOUT
from tests.testapp.live import CALLS


def scout(**changes: Any) -> dict[str, Any]:
    return {**UNIT_SCOUT, **changes}


def parse(body: bytes) -> list[dict[str, Any]]:
    """The SSE messages of ``body``: ``{"event", "id", "data", "retry", "comment"}`` as present."""
    messages = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        message: dict[str, Any] = {}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                message["comment"] = value
            elif field == "data":
                message["data"] = json.loads(value)
            else:
                message[field] = value
        messages.append(message)
    return messages


def events_of(messages: list[dict[str, Any]]) -> list[tuple[str | None, Any]]:
    """``(event name, data)`` of each message that is an event (not retry or a comment)."""
    return [(m.get("event"), m.get("data")) for m in messages if "event" in m]


def url(obj: Interaction | WorkflowRun) -> str:
    if isinstance(obj, Interaction):
        return reverse("django_scout:live-interaction", kwargs={"interaction_id": obj.pk})
    return reverse("django_scout:live-run", kwargs={"run_id": obj.pk})


def add_events(interaction: Interaction, *names: str, start: int = 0) -> None:
    store_events(
        interaction,
        [
            SessionEvent(sequence=start + i, name=name, data={"n": name}, id=None, timestamp=None)
            for i, name in enumerate(names)
        ],
    )


@pytest.fixture(autouse=True)
def _settings() -> Iterator[None]:
    with override_settings(SCOUT=scout(LIVE_POLL_INTERVAL=0.01)):
        yield


@pytest.fixture
def staff(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("staff", is_staff=True)
    client.force_login(user)
    return client


def accepted(**fields: Any) -> Interaction:
    return Interaction.objects.create(
        agent_id="agent-live", messages=[{"content": "hi"}], status="accepted", **fields
    )


def streaming(response: Any) -> Any:
    """The body iterator of a streamed test-client response (sync or async)."""
    return response.streaming_content


def read_all(client: Client, path: str, **headers: str) -> list[dict[str, Any]]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    return parse(b"".join(streaming(response)))


# --- format, resume, end -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_finished_interaction_streams_its_events_its_status_and_end(staff: Client) -> None:
    interaction = accepted()
    add_events(interaction, "start", "token", "done")
    complete_interaction(interaction.pk, "succeeded")

    messages = read_all(staff, url(interaction))

    assert messages[0] == {"retry": str(live.RETRY_MS)}
    events = [m for m in messages if m.get("event") == "scout_event"]
    assert [m["id"] for m in events] == ["0", "1", "2"]
    assert [(m["data"]["sequence"], m["data"]["name"], m["data"]["data"]) for m in events] == [
        (0, "start", {"n": "start"}),
        (1, "token", {"n": "token"}),
        (2, "done", {"n": "done"}),
    ]
    assert set(events[0]["data"]) == {"sequence", "name", "data", "timestamp", "created_at"}
    status, end = messages[-2:]
    assert status["event"] == "status"
    assert "id" not in status  # a status does not move the resume point
    assert status["data"]["status"] == "succeeded"
    assert status["data"]["id"] == str(interaction.pk)
    assert set(status["data"]) == {"id", "status", "error_code", "completed_at"}
    assert end == {"event": "end", "data": {"status": "succeeded"}}


@pytest.mark.django_db
def test_resume_sends_only_events_after_last_event_id(staff: Client) -> None:
    interaction = accepted()
    add_events(interaction, "a", "b", "c", "d")
    complete_interaction(interaction.pk, "failed", error_code="boom")

    by_header = read_all(staff, url(interaction), **{"Last-Event-ID": "1"})
    by_query = read_all(staff, url(interaction) + "?last_event_id=2")

    assert [m["id"] for m in by_header if "id" in m] == ["2", "3"]
    assert [m["id"] for m in by_query if "id" in m] == ["3"]
    assert events_of(by_query)[-2:] == [
        ("status", events_of(by_query)[-2][1]),
        ("end", {"status": "failed"}),
    ]
    assert events_of(by_query)[-2][1]["error_code"] == "boom"


@pytest.mark.django_db
def test_a_last_event_id_that_is_not_a_sequence_is_refused(staff: Client) -> None:
    response = staff.get(url(accepted()), headers={"Last-Event-ID": "abc"})
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_backlog_longer_than_a_read_comes_whole_and_in_order(
    staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "READ_BATCH", 3)
    interaction = accepted()
    add_events(interaction, *[f"e{i}" for i in range(8)])
    complete_interaction(interaction.pk, "succeeded")

    messages = read_all(staff, url(interaction))

    assert [m["id"] for m in messages if "id" in m] == [str(i) for i in range(8)]
    assert [m.get("event") for m in messages[-2:]] == ["status", "end"]


@pytest.mark.django_db
def test_a_run_streams_its_events_and_ends(staff: Client) -> None:
    run = WorkflowRun.objects.create(workflow_id="wf", stream=True)
    mark_running(run.pk)
    for sequence in range(2):
        WorkflowRunEvent.objects.create(run=run, sequence=sequence, name="step", data={"i": 1})
    finish_run(run.pk, "succeeded")

    messages = read_all(staff, url(run))

    assert [m["id"] for m in messages if "id" in m] == ["0", "1"]
    assert events_of(messages)[-1] == ("end", {"status": "succeeded"})


# --- waiting: the poll, heartbeats, the WSGI bound -----------------------------------------


@pytest.mark.django_db
def test_wsgi_stream_sends_changes_as_they_are_stored_then_ends(staff: Client) -> None:
    interaction = accepted()
    response = staff.get(url(interaction))
    chunks = iter(streaming(response))
    assert parse(next(chunks)) == [{"retry": str(live.RETRY_MS)}]
    assert events_of(parse(next(chunks)))[0][1]["status"] == "accepted"

    add_events(interaction, "late")
    assert [m.get("id") for m in parse(next(chunks))] == ["0"]

    complete_interaction(interaction.pk, "succeeded")
    assert [name for name, _ in events_of(parse(next(chunks)))] == ["status", "end"]
    assert list(chunks) == []


@pytest.mark.django_db
def test_wsgi_stream_sends_heartbeats_and_ends_after_its_bound(staff: Client) -> None:
    interaction = accepted()
    with override_settings(
        SCOUT=scout(LIVE_POLL_INTERVAL=0.01, LIVE_HEARTBEAT=0.02, LIVE_SYNC_MAX_DURATION=0.2)
    ):
        messages = read_all(staff, url(interaction))
    assert {"comment": "heartbeat"} in messages
    assert "end" not in [m.get("event") for m in messages]  # cut short: the client reconnects
    assert [m.get("event") for m in messages if "event" in m] == ["status"]


# --- ASGI requests (AsyncClient) -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_asgi_stream_sends_an_event_stored_after_connecting(django_user_model: Any) -> None:
    user = await django_user_model.objects.acreate(username="staff", is_staff=True)
    interaction = await sync_to_async(accepted)()
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)

    response = await client.get(url(interaction))
    assert response.status_code == 200
    chunks = aiter(streaming(response))
    assert parse(await anext(chunks)) == [{"retry": str(live.RETRY_MS)}]
    assert events_of(parse(await anext(chunks)))[0][1]["status"] == "accepted"

    await sync_to_async(add_events)(interaction, "after-connect")
    event = parse(await anext(chunks))
    assert [(m["id"], m["data"]["name"]) for m in event] == [("0", "after-connect")]

    await sync_to_async(complete_interaction)(interaction.pk, "succeeded")
    assert [name for name, _ in events_of(parse(await anext(chunks)))] == ["status", "end"]
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)


# --- permission ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_and_non_staff_users_are_refused(client: Client, django_user_model: Any) -> None:
    interaction = accepted()
    assert client.get(url(interaction)).status_code == 403
    client.force_login(django_user_model.objects.create_user("plain"))
    assert client.get(url(interaction)).status_code == 403


@pytest.mark.django_db
def test_an_unknown_id_is_answered_as_a_forbidden_one(staff: Client, client: Client) -> None:
    unknown = reverse("django_scout:live-run", kwargs={"run_id": uuid.uuid4()})
    assert staff.get(unknown).status_code == 403


@pytest.mark.django_db
def test_the_hook_is_asked_once_with_the_row(client: Client) -> None:
    interaction = accepted()
    complete_interaction(interaction.pk, "succeeded")
    CALLS.clear()
    with override_settings(SCOUT=scout(LIVE_PERMISSION="tests.testapp.live.record_and_allow")):
        messages = read_all(client, url(interaction))
    assert [(type(obj), obj.pk) for _, obj in CALLS] == [(Interaction, interaction.pk)]
    assert CALLS[0][0].path == url(interaction)
    assert events_of(messages)[-1] == ("end", {"status": "succeeded"})


@pytest.mark.django_db
def test_a_hook_that_refuses_refuses_staff_too(staff: Client) -> None:
    with override_settings(SCOUT=scout(LIVE_PERMISSION="tests.testapp.live.deny")):
        assert staff.get(url(accepted())).status_code == 403


@pytest.mark.django_db
def test_a_stream_carries_nothing_of_another_row(staff: Client) -> None:
    mine, other = accepted(), accepted()
    add_events(other, "secret-0", "secret-1", "secret-2")
    add_events(mine, "mine")
    complete_interaction(other.pk, "failed", error_code="other-code")
    complete_interaction(mine.pk, "succeeded")

    response = staff.get(url(mine))
    body = b"".join(streaming(response))

    assert b"secret" not in body
    assert str(other.pk).encode() not in body
    assert b"other-code" not in body
    assert [m["id"] for m in parse(body) if "id" in m] == ["0"]


@pytest.mark.django_db
def test_only_get_is_answered(staff: Client) -> None:
    assert staff.post(url(accepted())).status_code == 405


def test_the_views_are_async_and_outside_atomic_requests() -> None:
    import inspect

    for view in (views.live_interaction, views.live_run):
        assert inspect.iscoroutinefunction(view)
        assert "default" in view._non_atomic_requests


# --- notifications -------------------------------------------------------------------------


@pytest.fixture
def announcing(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> tuple[list[str], Callable[[], AbstractContextManager[Any]]]:
    """The keys published to Redis (not really sent), and a block whose changes commit at
    its end."""
    sent: list[str] = []
    monkeypatch.setattr(live_services, "_publish_redis", sent.extend)

    @contextmanager
    def committing() -> Iterator[None]:
        with (
            override_settings(SCOUT=scout(LIVE_REDIS_URL="redis://127.0.0.1:1/0")),
            django_capture_on_commit_callbacks(execute=True),
        ):
            yield

    return sent, committing


@pytest.mark.django_db
def test_transitions_and_stored_events_are_announced_after_commit(announcing: Any) -> None:
    sent, committing = announcing
    interaction = Interaction.objects.create(agent_id="a", messages=[{"content": "x"}])
    run = WorkflowRun.objects.create(workflow_id="wf")
    with committing():
        accept_interaction(interaction.pk, "sess-live", "")
        add_events(interaction, "x")
        complete_interaction(interaction.pk, "succeeded")
        mark_running(run.pk)
        finish_run(run.pk, "succeeded")
        assert sent == []  # not before the commit
    key = f"interaction:{interaction.pk}"
    assert sent == [key, key, key, f"run:{run.pk}", f"run:{run.pk}"]


@pytest.mark.django_db
def test_a_rolled_back_change_is_not_announced(announcing: Any) -> None:
    sent, committing = announcing
    run = WorkflowRun.objects.create(workflow_id="wf")

    def change_and_roll_back() -> None:
        with transaction.atomic():
            mark_running(run.pk)
            raise RuntimeError

    with committing(), pytest.raises(RuntimeError):
        change_and_roll_back()
    assert sent == []


@pytest.mark.django_db
def test_reconcile_announces_the_rows_it_times_out(announcing: Any) -> None:
    sent, committing = announcing
    overdue = [accepted(accepted_at=timezone.now() - timedelta(days=2)) for _ in range(2)]
    with committing():
        reconcile()
    assert sorted(sent) == sorted(f"interaction:{row.pk}" for row in overdue)


def test_polling_announces_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transaction, "on_commit", pytest.fail)
    with override_settings(SCOUT=scout(LIVE_NOTIFY="poll")):
        live_services.notify_changed(Interaction, uuid.uuid4())


def test_auto_picks_redis_then_postgresql_then_polling() -> None:
    expected = "postgresql" if connection.vendor == "postgresql" else "poll"
    assert live_services.notify_backend() == expected
    with override_settings(SCOUT=scout(LIVE_REDIS_URL="redis://127.0.0.1:1/0")):
        assert live_services.notify_backend() == "redis"


def test_a_failing_publish_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(SCOUT=scout(LIVE_REDIS_URL="redis://127.0.0.1:1/0")):
        live_services._publish_redis(["run:x"])
    assert "could not publish to live viewers of ['run:x']" in caplog.text


# --- settings and checks -------------------------------------------------------------------


def test_settings_refuse_a_bad_permission_path_and_redis_url() -> None:
    with pytest.raises(InvalidScoutSettings) as info:
        build_settings({"LIVE_PERMISSION": "nodots", "LIVE_REDIS_URL": "http://u:pw@host/0"})
    keys = [problem.key for problem in info.value.problems]
    assert keys == ["LIVE_PERMISSION", "LIVE_REDIS_URL"]
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests.testapp.live.missing", "cannot be imported"),
        ("tests.testapp.live.NOT_CALLABLE", "is a int, not a function"),
    ],
)
def test_a_permission_hook_that_does_not_import_is_e004(path: str, expected: str) -> None:
    with override_settings(SCOUT=scout(LIVE_PERMISSION=path)):
        messages = run_checks(tags=["django_scout"])
    assert [m.id for m in messages] == ["django_scout.E004"]
    assert expected in messages[0].msg


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"LIVE_NOTIFY": "redis"}, "LIVE_REDIS_URL is not set"),
        ({"LIVE_NOTIFY": "postgresql"}, "not PostgreSQL"),
    ],
)
def test_a_notify_channel_that_cannot_work_is_e005(changes: dict[str, Any], expected: str) -> None:
    if changes["LIVE_NOTIFY"] == "postgresql" and connection.vendor == "postgresql":
        pytest.skip("this run's database is PostgreSQL")
    with override_settings(SCOUT=scout(**changes)):
        messages = run_checks(tags=["django_scout"])
    assert [m.id for m in messages] == ["django_scout.E005"]
    assert expected in messages[0].msg


# --- the listener hub ----------------------------------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition()`` holds (at most a few seconds)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def test_the_hub_wakes_the_named_rows_waiters_and_all_of_them_after_reconnecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed: asyncio.Queue[str] = asyncio.Queue()
    connects: list[int] = []

    async def fake_listen(hub: Any) -> AsyncIterator[str | None]:
        connects.append(1)
        yield None
        while (key := await feed.get()) != "drop":
            yield key
        raise ConnectionError("the listener's connection broke")

    monkeypatch.setattr(live._Hub, "_listen", fake_listen)
    hub = live._Hub("redis", "redis://test")
    a, b = live._Waiter(hub, "run:a", 60), live._Waiter(hub, "run:b", 60)
    hub.subscribe(a)
    hub.subscribe(b)
    await until(lambda: hub.listening)
    assert (a.event.is_set(), b.event.is_set()) == (True, True)  # connected: everyone reads

    a.clear()
    b.clear()
    await feed.put("run:b")
    assert await b.wait(5)
    assert not a.event.is_set()

    b.clear()
    await feed.put("drop")
    await until(lambda: not hub.listening)
    await until(lambda: hub.listening)  # reconnected after a pause
    assert len(connects) == 2
    assert (a.event.is_set(), b.event.is_set()) == (True, True)

    a.close()
    assert hub.task is not None  # b still waits
    b.close()
    assert hub.task is None  # the listener stopped with the last waiter
    assert not hub.listening
