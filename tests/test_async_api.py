"""The ``a``-prefixed twins of the host-facing API (``django_scout.api``).

Each twin runs its sync function through ``sync_to_async(thread_sensitive=True)``: these tests
check that it validates, saves and enqueues exactly as the sync function does, and that the
enqueue waits for the commit of the transaction the call ran in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.db import models, transaction
from django.forms.models import model_to_dict
from django.test import override_settings

from django_scout import api, tasks
from django_scout.models import Interaction, WorkflowRun
from tests.helpers import UNIT_SCOUT


@pytest.fixture(autouse=True)
def _scout_settings() -> Iterator[None]:
    with override_settings(SCOUT=UNIT_SCOUT):
        yield


WEBHOOK = "https://api.scoutos.test/v2/workflows/wf_hook/webhooks/trigger?token=secret-token"

#: (sync function, its twin, arguments, keyword arguments, the task it enqueues)
CALLS: dict[str, tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = {
    "start_interaction": (
        api.start_interaction,
        api.astart_interaction,
        ("agent-1", "hello"),
        {"metadata": {"ticket": 7}, "tags": ["support"]},
    ),
    "run_workflow": (
        api.run_workflow,
        api.arun_workflow,
        ("wf_triage", {"ticket": 7}),
        {"environment": "staging", "stream": True},
    ),
    "run_workflow_with_config": (
        api.run_workflow_with_config,
        api.arun_workflow_with_config,
        ({"steps": []}, {"q": 1}),
        {"workflow_key": "inline"},
    ),
    "trigger_workflow_webhook": (
        api.trigger_workflow_webhook,
        api.atrigger_workflow_webhook,
        (WEBHOOK, {"ticket": 7}),
        {},
    ),
    "execute_app": (api.execute_app, api.aexecute_app, ("app_1", {"q": 1}), {"stream": True}),
}

#: Calls each sync function refuses, with a fragment of its message.
INVALID: dict[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
    "start_interaction": (("agent-1", ""), {}, "message"),
    "run_workflow": (("wf",), {"environment": "prod"}, "environment"),
    "run_workflow_with_config": (("nope",), {}, "workflow_config"),
    "trigger_workflow_webhook": (("ftp://x/y",), {}, "http"),
    "execute_app": (("",), {}, "app_id"),
}

#: Columns that differ between two rows saved by the same call.
VOLATILE = {"id", "created_at", "updated_at", "next_attempt_at"}


def task_for(name: str) -> Any:
    return tasks.start_interaction_task if name == "start_interaction" else tasks.run_workflow_task


def model_for(name: str) -> type[models.Model]:
    return Interaction if name == "start_interaction" else WorkflowRun


def columns(obj: models.Model) -> dict[str, Any]:
    return {key: value for key, value in model_to_dict(obj).items() if key not in VOLATILE}


def test_every_host_facing_function_has_a_twin() -> None:
    sync_names = [name for name in api.__all__ if not name.startswith("a")]
    assert sorted(f"a{name}" for name in sync_names) == sorted(set(api.__all__) - set(sync_names))
    for name in sync_names:
        twin = getattr(api, f"a{name}")
        assert twin.__name__ == f"a{name}"
        assert twin.__wrapped__ is getattr(api, name)
        assert twin.__module__ == "django_scout.api"
        assert inspect.iscoroutinefunction(twin)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CALLS))
def test_twin_saves_the_same_row_and_enqueues_on_commit(
    name: str, django_capture_on_commit_callbacks: Any
) -> None:
    sync, twin, args, kwargs = CALLS[name]
    with mock.patch.object(task_for(name), "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            obj = async_to_sync(twin)(*args, **kwargs)
            assert isinstance(obj, model_for(name))
            assert model_for(name)._default_manager.filter(pk=obj.pk, status="pending").exists()
            apply_async.assert_not_called()
        assert len(callbacks) == 1
        apply_async.assert_called_once()
        assert apply_async.call_args.kwargs["args"] == (str(obj.pk),)
        assert columns(obj) == columns(sync(*args, **kwargs))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
@pytest.mark.parametrize("name", sorted(INVALID))
async def test_twin_raises_value_error_from_the_await_and_saves_nothing(name: str) -> None:
    _, twin, _, _ = CALLS[name]
    args, kwargs, fragment = INVALID[name]
    with mock.patch.object(task_for(name), "apply_async") as apply_async:
        with pytest.raises(ValueError, match=fragment):
            await twin(*args, **kwargs)
        apply_async.assert_not_called()
    assert not await model_for(name)._default_manager.aexists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
@pytest.mark.parametrize("name", sorted(CALLS))
async def test_twin_in_autocommit_enqueues_before_the_await_returns(name: str) -> None:
    _, twin, args, kwargs = CALLS[name]
    with mock.patch.object(task_for(name), "apply_async") as apply_async:
        obj = await twin(*args, **kwargs)
        apply_async.assert_called_once()
    assert apply_async.call_args.kwargs["args"] == (str(obj.pk),)
    assert await model_for(name)._default_manager.filter(pk=obj.pk, status="pending").aexists()


@pytest.mark.django_db(transaction=True)
def test_twin_inside_a_rolled_back_transaction_saves_and_enqueues_nothing() -> None:
    with mock.patch.object(tasks.start_interaction_task, "apply_async") as apply_async:
        with transaction.atomic():
            async_to_sync(api.astart_interaction)("agent-1", "hello")
            assert Interaction.objects.exists()
            transaction.set_rollback(True)
        apply_async.assert_not_called()
    assert not Interaction.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_arerun_copies_the_run_and_enqueues_it() -> None:
    with mock.patch.object(tasks.run_workflow_task, "apply_async") as apply_async:
        run = await api.arun_workflow("wf_triage", {"ticket": 7}, environment="staging")
        copy = await api.arerun(run)
    assert copy.pk != run.pk
    assert copy.rerun_of_id == run.pk
    assert (copy.workflow_id, copy.environment) == ("wf_triage", "staging")
    assert copy.inputs == {"ticket": 7}
    assert [call.kwargs["args"] for call in apply_async.call_args_list] == [
        (str(run.pk),),
        (str(copy.pk),),
    ]
