"""The ``django_scout`` system checks: each fires, names the key and the fix, and stays quiet
when the host is configured properly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

RECONCILE_SCHEDULE = {"scout-reconcile": {"task": "django_scout.reconcile", "schedule": 60.0}}


def scout_messages(*, deploy: bool) -> list[CheckMessage]:
    """The messages of django-scout's checks (``manage.py check [--deploy] --tag django_scout``)."""
    return run_checks(include_deployment_checks=deploy, tags=["django_scout"])


def ids(messages: list[CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def single(messages: list[CheckMessage], check_id: str) -> CheckMessage:
    """The one message in ``messages``, after asserting it is ``check_id``."""
    assert ids(messages) == [check_id]
    return messages[0]


def assert_mentions(text: str | None, *parts: str) -> None:
    """Assert that ``text`` (a message or a hint) contains every one of ``parts``."""
    missing = [part for part in parts if part not in (text or "")]
    assert not missing, f"{missing} not in {text!r}"


def scout(**changes: Any) -> dict[str, Any]:
    """The test settings' ``SCOUT`` with ``changes``; a value of ``None`` removes the key."""
    merged = {**settings.SCOUT, **changes}
    return {key: value for key, value in merged.items() if value is not None}


@pytest.fixture
def reconcile_scheduled() -> Iterator[None]:
    with override_settings(CELERY_BEAT_SCHEDULE=RECONCILE_SCHEDULE):
        yield


@pytest.mark.usefixtures("reconcile_scheduled")
def test_configured_site_passes_every_check_including_deploy() -> None:
    assert scout_messages(deploy=False) == []
    assert scout_messages(deploy=True) == []


def test_plain_check_is_quiet_for_the_test_settings() -> None:
    # The suite's settings have no beat schedule: that warning belongs to --deploy only.
    assert scout_messages(deploy=False) == []


def test_each_invalid_key_is_its_own_e001() -> None:
    with override_settings(SCOUT=scout(TIMEOUT="x", CALLBACK_BASE_URL="http://app.example.com")):
        messages = scout_messages(deploy=False)
    assert ids(messages) == ["django_scout.E001", "django_scout.E001"]
    callback, timeout = messages
    assert callback.msg.startswith("settings.SCOUT['CALLBACK_BASE_URL'] is invalid: ")
    assert "ALLOW_INSECURE_CALLBACKS=True" in callback.msg
    assert "settings.SCOUT['CALLBACK_BASE_URL']" in (callback.hint or "")
    assert timeout.msg.startswith("settings.SCOUT['TIMEOUT'] is invalid")
    assert "settings.SCOUT['TIMEOUT']" in (timeout.hint or "")


@pytest.mark.usefixtures("reconcile_scheduled")
def test_scout_that_is_not_a_dict_is_e001() -> None:
    with override_settings(SCOUT=["API_KEY"]):
        error = single(scout_messages(deploy=True), "django_scout.E001")
    assert_mentions(error.msg, "settings.SCOUT must be a dict")


@pytest.mark.usefixtures("reconcile_scheduled")
def test_invalid_settings_are_only_reported_as_e001() -> None:
    with override_settings(SCOUT=scout(SIGNING_SECRET=42, CALLBACK_BASE_URL=None)):
        error = single(scout_messages(deploy=True), "django_scout.E001")
    assert_mentions(error.msg, "settings.SCOUT['SIGNING_SECRET']")


def test_loopback_callback_base_is_e001_without_the_flag() -> None:
    with override_settings(SCOUT=scout(CALLBACK_BASE_URL="https://169.254.169.254")):
        error = single(scout_messages(deploy=False), "django_scout.E001")
    assert error.msg.startswith("settings.SCOUT['CALLBACK_BASE_URL'] is invalid: ")
    assert_mentions(error.msg, "local development")
    with override_settings(
        SCOUT=scout(CALLBACK_BASE_URL="https://169.254.169.254", ALLOW_INSECURE_CALLBACKS=True)
    ):
        assert scout_messages(deploy=False) == []


def test_callback_base_without_signing_secret_is_e002_in_plain_check() -> None:
    with override_settings(SCOUT=scout(SIGNING_SECRET=None)):
        messages = scout_messages(deploy=False)
    error = single(messages, "django_scout.E002")
    assert_mentions(
        error.msg,
        "settings.SCOUT['SIGNING_SECRET'] is not set",
        "settings.SCOUT['CALLBACK_BASE_URL']",
        "503",
    )
    assert_mentions(error.hint, "settings.SCOUT['SIGNING_SECRET']")


@pytest.mark.usefixtures("reconcile_scheduled")
def test_callback_base_without_signing_secret_is_only_e002_under_deploy() -> None:
    with override_settings(SCOUT=scout(SIGNING_SECRET="")):
        assert ids(scout_messages(deploy=True)) == ["django_scout.E002"]


@pytest.mark.usefixtures("reconcile_scheduled")
def test_missing_signing_secret_is_e003_under_deploy_only() -> None:
    with override_settings(SCOUT=scout(SIGNING_SECRET=None, CALLBACK_BASE_URL=None)):
        assert scout_messages(deploy=False) == []
        messages = scout_messages(deploy=True)
    error = single(messages, "django_scout.E003")
    assert_mentions(error.msg, "settings.SCOUT['SIGNING_SECRET'] is not set", "503")
    assert_mentions(error.hint, "settings.SCOUT['SIGNING_SECRET']", "SILENCED_SYSTEM_CHECKS")


@pytest.mark.usefixtures("reconcile_scheduled")
def test_check_deploy_command_fails_without_signing_secret() -> None:
    with (
        override_settings(SCOUT=scout(SIGNING_SECRET=None)),
        pytest.raises(SystemCheckError, match=r"django_scout\.E002"),
    ):
        call_command("check", "--deploy", "--tag", "django_scout")


def test_missing_reconcile_schedule_is_w001_under_deploy_only() -> None:
    assert scout_messages(deploy=False) == []
    warning = single(scout_messages(deploy=True), "django_scout.W001")
    assert_mentions(warning.msg, "django_scout.reconcile", "CELERY_BEAT_SCHEDULE")
    assert_mentions(
        warning.hint, "CELERY_BEAT_SCHEDULE", "scout_reconcile", "SILENCED_SYSTEM_CHECKS"
    )


@pytest.mark.parametrize(
    "schedule",
    [
        {},
        {"other": {"task": "proj.cleanup", "schedule": 60.0}},
        {"broken": "django_scout.reconcile"},
        ["django_scout.reconcile"],
    ],
)
def test_schedule_without_the_reconcile_task_is_w001(schedule: Any) -> None:
    with override_settings(CELERY_BEAT_SCHEDULE=schedule):
        assert ids(scout_messages(deploy=True)) == ["django_scout.W001"]


def test_reconcile_in_the_celery_apps_beat_schedule_satisfies_w001(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(current_app.conf, "beat_schedule", RECONCILE_SCHEDULE)
    assert scout_messages(deploy=True) == []


def test_django_celery_beat_satisfies_w001(monkeypatch: pytest.MonkeyPatch) -> None:
    is_installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name == "django_celery_beat" or is_installed(name)
    )
    assert scout_messages(deploy=True) == []


def test_silenced_w001_lets_check_deploy_pass_at_warning_level() -> None:
    with pytest.raises(SystemCheckError, match=r"django_scout\.W001"):
        call_command("check", "--deploy", "--tag", "django_scout", "--fail-level", "WARNING")
    with override_settings(SILENCED_SYSTEM_CHECKS=["django_scout.W001"]):
        call_command("check", "--deploy", "--tag", "django_scout", "--fail-level", "WARNING")
