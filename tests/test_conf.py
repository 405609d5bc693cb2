"""settings.SCOUT validation and override_settings behaviour."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_scout.conf import InvalidScoutSettings, build_settings, scout_settings


def test_defaults() -> None:
    conf = build_settings({})
    assert conf.API_BASE_URL == "https://api.scoutos.com"
    assert conf.SIGNING_SECRET == ()
    assert conf.SIGNATURE_TOLERANCE == 300
    assert conf.FETCH_EVENTS is True
    assert conf.TIMEOUT == 30.0
    assert conf.MAX_RETRIES == 3
    assert conf.CALLBACK_DEADLINE == 86400
    assert conf.ALLOW_INSECURE_CALLBACKS is False
    assert conf.trusted_events_hosts == ("api.scoutos.com",)
    assert conf.ASYNC_INTERACT_ENDPOINT == "world"


def test_signing_secret_string_or_list() -> None:
    assert build_settings({"SIGNING_SECRET": "one"}).SIGNING_SECRET == ("one",)
    assert build_settings({"SIGNING_SECRET": ["new", "old"]}).SIGNING_SECRET == ("new", "old")


def test_unknown_key_is_named() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown key 'API_KEYS'") as exc_info:
        build_settings({"API_KEYS": "x"})
    assert "API_KEY" in str(exc_info.value)


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        ({"TIMEOUT": "soon"}, "TIMEOUT", "float"),
        ({"MAX_RETRIES": -1}, "MAX_RETRIES", "greater than or equal to 0"),
        ({"SIGNING_SECRET": 42}, "SIGNING_SECRET", "string or a list of strings"),
        ({"SIGNING_SECRET": ["ok", ""]}, "SIGNING_SECRET", "non-empty"),
        ({"API_BASE_URL": "api.scoutos.com"}, "API_BASE_URL", "absolute http(s) URL"),
        ({"TRUSTED_EVENTS_HOSTS": "a.example"}, "TRUSTED_EVENTS_HOSTS", "list of host names"),
        ({"FETCH_EVENTS": "maybe"}, "FETCH_EVENTS", "bool"),
        ({"ASYNC_INTERACT_ENDPOINT": "v2"}, "ASYNC_INTERACT_ENDPOINT", "'world' or 'v1'"),
    ],
)
def test_wrong_type_names_key_and_expectation(raw: dict[str, Any], key: str, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured) as exc_info:
        build_settings(raw)
    message = str(exc_info.value)
    assert f"settings.SCOUT['{key}']" in message
    assert expected in message


def test_scout_must_be_a_dict() -> None:
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        build_settings(["API_KEY"])


def test_callback_base_url_must_be_https_unless_insecure_allowed() -> None:
    with pytest.raises(ImproperlyConfigured, match="https"):
        build_settings({"CALLBACK_BASE_URL": "http://127.0.0.1:8000"})
    conf = build_settings(
        {"CALLBACK_BASE_URL": "http://127.0.0.1:8000/", "ALLOW_INSECURE_CALLBACKS": True}
    )
    assert conf.CALLBACK_BASE_URL == "http://127.0.0.1:8000"


def test_http_callback_base_error_names_the_key_and_the_flag() -> None:
    with pytest.raises(ImproperlyConfigured) as exc_info:
        build_settings({"CALLBACK_BASE_URL": "http://app.example.com"})
    message = str(exc_info.value)
    assert message.startswith("settings.SCOUT['CALLBACK_BASE_URL'] is invalid: ")
    assert "https://" in message
    assert "ALLOW_INSECURE_CALLBACKS=True" in message
    assert "['SCOUT']" not in message
    assert "Value error" not in message


NON_PUBLIC_CALLBACK_BASES = [
    "https://127.0.0.1",
    "https://127.0.0.2:8443",
    "https://127.1",
    "https://2130706433",
    "https://10.0.0.5",
    "https://172.16.3.4",
    "https://192.168.1.10",
    "https://100.64.0.1",
    "https://169.254.169.254",
    "https://0.0.0.0:8000",
    "https://240.0.0.1",
    "https://224.0.0.1",
    "https://[::1]",
    "https://[::1]:8000/",
    "https://[::]",
    "https://[fe80::1]",
    "https://[fe80::1%25eth0]",
    "https://[fd00::5]",
    "https://[::ffff:127.0.0.1]",
    "https://[::ffff:10.0.0.5]",
    "https://localhost",
    "https://LOCALHOST.:8000",
    "https://app.localhost",
]


@pytest.mark.parametrize("url", NON_PUBLIC_CALLBACK_BASES)
def test_non_public_callback_host_is_refused_without_the_flag(url: str) -> None:
    with pytest.raises(ImproperlyConfigured) as exc_info:
        build_settings({"CALLBACK_BASE_URL": url})
    message = str(exc_info.value)
    assert message.startswith("settings.SCOUT['CALLBACK_BASE_URL'] is invalid: ")
    assert "Scout cannot reach" in message
    assert "ALLOW_INSECURE_CALLBACKS=True" in message
    assert "local development" in message


@pytest.mark.parametrize("url", NON_PUBLIC_CALLBACK_BASES)
def test_non_public_callback_host_is_accepted_with_the_flag(url: str) -> None:
    conf = build_settings({"CALLBACK_BASE_URL": url, "ALLOW_INSECURE_CALLBACKS": True})
    assert url.rstrip("/") == conf.CALLBACK_BASE_URL


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com",
        "https://app.example.com:8443/prefix/",
        "https://8.8.8.8",
        "https://[2606:4700:4700::1111]",
        "https://localhost.example.com",
        "https://mylocalhost.com",
        "https://10.example.com",
    ],
)
def test_public_callback_host_needs_no_flag(url: str) -> None:
    assert url.rstrip("/") == build_settings({"CALLBACK_BASE_URL": url}).CALLBACK_BASE_URL


def test_invalid_insecure_flag_is_reported_alone() -> None:
    with pytest.raises(ImproperlyConfigured) as exc_info:
        build_settings({"CALLBACK_BASE_URL": "http://127.0.0.1", "ALLOW_INSECURE_CALLBACKS": "?"})
    message = str(exc_info.value)
    assert "settings.SCOUT['ALLOW_INSECURE_CALLBACKS'] is invalid" in message
    assert "CALLBACK_BASE_URL']" not in message


def test_every_problem_is_listed_with_its_key() -> None:
    with pytest.raises(InvalidScoutSettings) as exc_info:
        build_settings({"TIMEOUT": "x", "CALLBACK_BASE_URL": "https://10.0.0.5", "API_KEYS": 1})
    problems = exc_info.value.problems
    assert [problem.key for problem in problems] == ["CALLBACK_BASE_URL", "TIMEOUT", "API_KEYS"]
    assert all(problem.message in str(exc_info.value) for problem in problems)


def test_trusted_hosts_explicit() -> None:
    conf = build_settings({"TRUSTED_EVENTS_HOSTS": ["API.scoutos.com", "events.scoutos.com"]})
    assert conf.trusted_events_hosts == ("api.scoutos.com", "events.scoutos.com")


def test_require_names_missing_key() -> None:
    with pytest.raises(ImproperlyConfigured, match="'API_KEY'"):
        build_settings({}).require("API_KEY")
    assert build_settings({"API_KEY": "k"}).require("API_KEY") == "k"


def test_cached_and_follows_override_settings() -> None:
    first = scout_settings()
    assert first is scout_settings()
    assert first.API_KEY == "test-api-key"
    with override_settings(SCOUT={"API_KEY": "overridden", "TIMEOUT": 5}):
        assert scout_settings().API_KEY == "overridden"
        assert scout_settings().TIMEOUT == 5.0
    assert scout_settings().API_KEY == "test-api-key"


def test_invalid_override_raises_on_use() -> None:
    with override_settings(SCOUT={"TIMEOUT": "x"}), pytest.raises(ImproperlyConfigured):
        scout_settings()
    assert scout_settings().TIMEOUT == 30.0


def test_system_check_reports_invalid_settings() -> None:
    from django_scout.checks import check_scout_settings

    assert check_scout_settings() == []
    with override_settings(SCOUT={"TIMEOUT": "x"}):
        errors = check_scout_settings()
    assert [error.id for error in errors] == ["django_scout.E001"]
    assert "settings.SCOUT['TIMEOUT']" in errors[0].msg
