"""settings.SCOUT validation and override_settings behaviour."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_scout.conf import build_settings, scout_settings


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
