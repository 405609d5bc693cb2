"""``settings.SCOUT``, validated once into a typed object.

Use :func:`scout_settings` to read the configuration. The result is cached and rebuilt when
``settings.SCOUT`` changes (``override_settings`` in tests). An unknown key or a bad value
raises :class:`InvalidScoutSettings` (an
:class:`~django.core.exceptions.ImproperlyConfigured`) naming each key and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "InvalidScoutSettings",
    "ScoutSettings",
    "SettingProblem",
    "connect_signals",
    "reset_cache",
    "scout_settings",
]

DEFAULT_API_BASE_URL = "https://api.scoutos.com"


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    return value


# Digits, dots and hex: a host the resolver reads as an IPv4 address ("127.1", "2130706433").
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


def _host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` names literally (no DNS lookup), or ``None`` for a host name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _NUMERIC_HOST.fullmatch(host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _non_public_host(host: str) -> str | None:
    """Say why Scout cannot call ``host`` (loopback, private, ...), or ``None`` if it may."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback host"
    address = _host_address(host)
    if address is None or (address.is_global and not address.is_multicast):
        return None
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    return "a non-public address"


class ScoutSettings(BaseModel):
    """The validated ``settings.SCOUT`` dictionary; attribute names are the setting keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    API_KEY: str | None = Field(default=None, description="Bearer token for the Scout API")
    API_BASE_URL: str = Field(default=DEFAULT_API_BASE_URL, description="base of every API path")
    SIGNING_SECRET: tuple[str, ...] = Field(
        default=(), description="callback secrets; the first is current, the rest are accepted"
    )
    # Before CALLBACK_BASE_URL: that field's validator reads the flag from ValidationInfo.data.
    ALLOW_INSECURE_CALLBACKS: bool = False
    CALLBACK_BASE_URL: str | None = Field(default=None, description="public origin of this site")
    SIGNATURE_TOLERANCE: int = Field(default=300, ge=0)
    TRUSTED_EVENTS_HOSTS: tuple[str, ...] | None = None
    FETCH_EVENTS: bool = True
    TIMEOUT: float = Field(default=30.0, gt=0)
    MAX_RETRIES: int = Field(default=3, ge=0, le=20)
    CALLBACK_DEADLINE: int = Field(default=86400, gt=0)
    ASYNC_INTERACT_ENDPOINT: Literal["world", "v1"] = "world"
    TASK_MAX_RETRIES: int = Field(default=5, ge=0, le=100)
    TASK_RETRY_BACKOFF: float = Field(default=2.0, ge=0)
    TASK_RETRY_BACKOFF_MAX: float = Field(default=600.0, ge=0)
    MAX_CALLBACK_BODY_BYTES: int = Field(default=1_048_576, gt=0)
    EVENTS_BATCH_SIZE: int = Field(default=500, gt=0, le=10_000)
    RECONCILE_GRACE: int = Field(default=60, ge=0)
    RUN_DEADLINE: int = Field(default=86400, gt=0)
    STREAM_IDLE_TIMEOUT: int = Field(default=900, gt=0)
    PUBLISH_TIMEOUT: float = Field(default=0.25, gt=0, le=10)
    PUBLISH_RETRY_AFTER: float = Field(default=15.0, ge=0)
    LIVE_PERMISSION: str = "django_scout.live.staff_only"
    LIVE_NOTIFY: Literal["auto", "postgresql", "redis", "poll"] = "auto"
    LIVE_REDIS_URL: str | None = None
    LIVE_HEARTBEAT: float = Field(default=15.0, gt=0, le=3600)
    LIVE_POLL_INTERVAL: float = Field(default=1.0, ge=0.01, le=60)
    LIVE_MAX_DURATION: float = Field(default=3600.0, gt=0)
    LIVE_SYNC_MAX_DURATION: float = Field(default=30.0, gt=0)

    @field_validator("API_KEY", "CALLBACK_BASE_URL", "LIVE_REDIS_URL", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("SIGNING_SECRET", mode="before")
    @classmethod
    def _secret_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,) if value else ()
        if isinstance(value, (list, tuple)):
            if not all(isinstance(item, str) and item for item in value):
                raise ValueError("every secret must be a non-empty string")
            return tuple(value)
        raise ValueError("must be a string or a list of strings")

    @field_validator("TRUSTED_EVENTS_HOSTS", mode="before")
    @classmethod
    def _host_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of host names, not a single string")
        if isinstance(value, list | tuple):
            return tuple(str(item).lower() for item in value)
        return value

    @field_validator("LIVE_PERMISSION")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        module, _, name = value.strip().rpartition(".")
        if not module or not name.isidentifier():
            raise ValueError(
                f"must be the dotted path of a function (request, obj) -> bool, got {value!r}"
            )
        return value.strip()

    @field_validator("LIVE_REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        scheme = urlsplit(value).scheme if value is not None else "redis"
        if scheme not in ("redis", "rediss", "unix"):
            # The URL itself is not repeated: it may hold a password.
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, not {scheme}://")
        return value

    @field_validator("API_BASE_URL")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_http_url(value).rstrip("/")

    @field_validator("CALLBACK_BASE_URL")
    @classmethod
    def _callback_base(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = _check_http_url(value).rstrip("/")
        # An invalid flag is missing from info.data; its own error is enough.
        if info.data.get("ALLOW_INSECURE_CALLBACKS", True):
            return value
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise ValueError(
                f"{value!r} must use https:// (Scout only calls HTTPS URLs); "
                "set ALLOW_INSECURE_CALLBACKS=True for local development"
            )
        reason = _non_public_host(parts.hostname or "")
        if reason is not None:
            raise ValueError(
                f"the host of {value!r} is {reason}, which Scout cannot reach; use this site's "
                "public origin, or set ALLOW_INSECURE_CALLBACKS=True for local development"
            )
        return value

    @property
    def trusted_events_hosts(self) -> tuple[str, ...]:
        """Hosts an ``events_url`` may point at (defaults to the API host)."""
        if self.TRUSTED_EVENTS_HOSTS is not None:
            return self.TRUSTED_EVENTS_HOSTS
        host = urlsplit(self.API_BASE_URL).hostname
        return (host,) if host else ()

    def require(self, key: str) -> Any:
        """Return the value of ``key``, raising ``ImproperlyConfigured`` when it is unset."""
        value = getattr(self, key)
        if value in (None, ()):
            raise ImproperlyConfigured(f"settings.SCOUT[{key!r}] is required for this operation")
        return value


class SettingProblem(NamedTuple):
    """One reason ``settings.SCOUT`` is invalid."""

    key: str | None
    """The offending key; ``None`` when ``settings.SCOUT`` as a whole is wrong."""
    message: str
    """What is wrong, starting with ``settings.SCOUT['KEY']``."""


class InvalidScoutSettings(ImproperlyConfigured):
    """``settings.SCOUT`` is invalid; :attr:`problems` lists each key and what is wrong."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        """Keep ``problems``; the message joins them with ``"; "``."""
        self.problems = problems
        super().__init__("; ".join(problem.message for problem in problems))


def _describe(error: dict[str, Any]) -> SettingProblem:
    loc = error.get("loc", ())
    key = str(loc[0]) if loc else None
    if error.get("type") == "value_error":
        # Our validators' own words, without pydantic's "Value error, " prefix.
        detail = str(error.get("ctx", {}).get("error", error.get("msg")))
    else:
        detail = str(error.get("msg", "invalid value"))
    if key is None:
        return SettingProblem(None, f"settings.SCOUT is invalid: {detail}")
    if error.get("type") == "extra_forbidden":
        known = ", ".join(sorted(ScoutSettings.model_fields))
        return SettingProblem(
            key, f"settings.SCOUT has an unknown key {key!r}; known keys are: {known}"
        )
    field = ScoutSettings.model_fields.get(key)
    expected = ""
    if error.get("type") != "value_error" and field is not None and field.annotation is not None:
        expected = f" (expected {getattr(field.annotation, '__name__', None) or field.annotation})"
    return SettingProblem(key, f"settings.SCOUT[{key!r}] is invalid{expected}: {detail}")


def build_settings(raw: Any) -> ScoutSettings:
    """Validate a raw ``SCOUT`` dict; raise :class:`InvalidScoutSettings` naming each bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidScoutSettings(
            [SettingProblem(None, f"settings.SCOUT must be a dict, got {type(raw).__name__}")]
        )
    try:
        return ScoutSettings.model_validate(raw)
    except ValidationError as exc:
        raise InvalidScoutSettings([_describe(dict(err)) for err in exc.errors()]) from None


_lock = threading.Lock()
_cache: ScoutSettings | None = None


def scout_settings() -> ScoutSettings:
    """Return the validated ``settings.SCOUT`` (cached until the setting changes)."""
    global _cache
    cached = _cache
    if cached is not None:
        return cached
    with _lock:
        if _cache is None:
            _cache = build_settings(getattr(settings, "SCOUT", None))
        return _cache


def reset_cache(**kwargs: Any) -> None:
    """Forget the cached settings (connected to ``setting_changed``)."""
    global _cache
    if kwargs.get("setting", "SCOUT") == "SCOUT":
        _cache = None


def connect_signals() -> None:
    """Reset the cache whenever ``settings.SCOUT`` is overridden."""
    from django.core.signals import setting_changed

    setting_changed.connect(reset_cache, dispatch_uid="django_scout.conf.reset_cache")
