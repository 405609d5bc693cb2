"""System checks: ``manage.py check`` reports settings that would make django-scout fail.

- ``django_scout.E001`` (error, every check): ``settings.SCOUT`` is invalid; one per key.
- ``django_scout.E002`` (error, every check): ``CALLBACK_BASE_URL`` is set, ``SIGNING_SECRET``
  is not.
- ``django_scout.E003`` (error, ``--deploy``): ``SIGNING_SECRET`` is not set (and E002 did not
  report it).
- ``django_scout.W001`` (warning, ``--deploy``): no beat schedule runs ``django_scout.reconcile``.
- ``django_scout.E004`` (error, every check): ``LIVE_PERMISSION`` does not import as a callable.
- ``django_scout.E005`` (error, every check): ``LIVE_NOTIFY`` names a channel this site cannot
  use (``redis`` without ``LIVE_REDIS_URL`` or the ``redis`` package, ``postgresql`` on another
  database or on psycopg 2).

Every check carries the ``django_scout`` tag: ``manage.py check --deploy --tag django_scout``
runs only these. A host silences one with ``SILENCED_SYSTEM_CHECKS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import router
from django.utils.module_loading import import_string

from .conf import InvalidScoutSettings, ScoutSettings, build_settings

__all__ = [
    "RECONCILE_TASK",
    "TAG",
    "check_live_notify",
    "check_live_permission",
    "check_reconcile_schedule",
    "check_scout_settings",
    "check_signing_secret_deploy",
    "check_signing_secret_for_callbacks",
]

#: The tag of every django-scout check (``manage.py check --tag django_scout``).
TAG = "django_scout"
#: The registered name of :func:`django_scout.tasks.reconcile_task`.
RECONCILE_TASK = "django_scout.reconcile"

_SIGNING_HINT = (
    "Set settings.SCOUT['SIGNING_SECRET'] to your Scout organization's signing secret "
    "(a list of secrets during a rotation)."
)


def _valid_settings() -> ScoutSettings | None:
    """The validated settings, or ``None`` when they are invalid (E001 reports that)."""
    try:
        return build_settings(getattr(settings, "SCOUT", None))
    except InvalidScoutSettings:
        return None


@checks.register(checks.Tags.compatibility, TAG)
def check_scout_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``settings.SCOUT``; report each bad key as its own ``django_scout.E001``."""
    try:
        build_settings(getattr(settings, "SCOUT", None))
    except InvalidScoutSettings as exc:
        return [
            checks.Error(
                problem.message,
                hint=(
                    f"Correct settings.SCOUT[{problem.key!r}]; the django-scout settings "
                    "reference lists every key, its type and its default."
                    if problem.key is not None
                    else "Set settings.SCOUT to a dict of django-scout's settings."
                ),
                id="django_scout.E001",
            )
            for problem in exc.problems
        ]
    return []


@checks.register(checks.Tags.security, TAG)
def check_signing_secret_for_callbacks(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``django_scout.E002``: callbacks are requested (``CALLBACK_BASE_URL``) but unverifiable."""
    conf = _valid_settings()
    if conf is None or conf.SIGNING_SECRET or not conf.CALLBACK_BASE_URL:
        return []
    return [
        checks.Error(
            "settings.SCOUT['SIGNING_SECRET'] is not set, but settings.SCOUT['CALLBACK_BASE_URL'] "
            "is: every callback Scout sends to this site is answered 503, so no async "
            "interaction finishes (reconcile fails each one after CALLBACK_DEADLINE).",
            hint=f"{_SIGNING_HINT} Or remove CALLBACK_BASE_URL if this site starts no async "
            "interactions.",
            id="django_scout.E002",
        )
    ]


@checks.register(checks.Tags.security, TAG, deploy=True)
def check_signing_secret_deploy(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``django_scout.E003`` (``--deploy``): the callback endpoint cannot verify anything."""
    conf = _valid_settings()
    # With CALLBACK_BASE_URL set, E002 already reports the missing secret.
    if conf is None or conf.SIGNING_SECRET or conf.CALLBACK_BASE_URL:
        return []
    return [
        checks.Error(
            "settings.SCOUT['SIGNING_SECRET'] is not set: the callback endpoint answers every "
            "callback with 503, so Scout's callbacks to this site never succeed.",
            hint=f"{_SIGNING_HINT} If this site never receives Scout callbacks, add "
            "'django_scout.E003' to SILENCED_SYSTEM_CHECKS.",
            id="django_scout.E003",
        )
    ]


def _schedules_reconcile(schedule: Any) -> bool:
    return isinstance(schedule, Mapping) and any(
        isinstance(entry, Mapping) and entry.get("task") == RECONCILE_TASK
        for entry in schedule.values()
    )


def _reconcile_scheduled() -> bool:
    """Whether a beat schedule runs the reconcile task, as far as settings can tell."""
    if _schedules_reconcile(getattr(settings, "CELERY_BEAT_SCHEDULE", None)):
        return True
    if _schedules_reconcile(current_app.conf.beat_schedule):
        return True
    # django-celery-beat keeps schedules in the database, which a check must not need (it may
    # run before migrate, or with no database at all): its presence is taken as a schedule.
    return apps.is_installed("django_celery_beat")


@checks.register(TAG, deploy=True)
def check_reconcile_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``django_scout.W001`` (``--deploy``): nothing schedules ``django_scout.reconcile``."""
    if _reconcile_scheduled():
        return []
    return [
        checks.Warning(
            f"No entry of CELERY_BEAT_SCHEDULE (or the Celery app's beat_schedule) runs the "
            f"{RECONCILE_TASK!r} task: interactions and runs whose task was lost (broker down, "
            "worker killed) or whose callback never arrives stay pending forever.",
            hint=(
                "Add {'task': 'django_scout.reconcile', 'schedule': 60.0} to "
                "CELERY_BEAT_SCHEDULE and run celery beat. If you run `manage.py scout_reconcile` "
                "from cron or another scheduler instead, add 'django_scout.W001' to "
                "SILENCED_SYSTEM_CHECKS."
            ),
            id="django_scout.W001",
        )
    ]


@checks.register(checks.Tags.security, TAG)
def check_live_permission(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``django_scout.E004``: ``LIVE_PERMISSION`` does not name an importable callable."""
    conf = _valid_settings()
    if conf is None:
        return []
    path = conf.LIVE_PERMISSION
    try:
        hook = import_string(path)
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if callable(hook):
            return []
        problem = f"is a {type(hook).__name__}, not a function"
    return [
        checks.Error(
            f"settings.SCOUT['LIVE_PERMISSION'] = {path!r} {problem}: every live stream is "
            "answered 500.",
            hint="Name a function (request, obj) -> bool by its dotted path, or remove the key "
            "to let only staff users watch.",
            id="django_scout.E004",
        )
    ]


@checks.register(checks.Tags.compatibility, TAG)
def check_live_notify(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``django_scout.E005``: the ``LIVE_NOTIFY`` channel cannot work on this site."""
    from .models import Interaction
    from .services.live import is_psycopg_postgresql

    conf = _valid_settings()
    if conf is None:
        return []
    problem = None
    if conf.LIVE_NOTIFY == "redis" and not conf.LIVE_REDIS_URL:
        problem = "is 'redis' but LIVE_REDIS_URL is not set"
    elif conf.LIVE_REDIS_URL and conf.LIVE_NOTIFY in ("auto", "redis"):
        try:
            import redis  # noqa: F401
        except ImportError:
            problem = "needs the redis package (LIVE_REDIS_URL is set), which is not installed"
    elif conf.LIVE_NOTIFY == "postgresql" and not is_psycopg_postgresql(
        router.db_for_write(Interaction)
    ):
        problem = "is 'postgresql' but the database is not PostgreSQL through psycopg 3"
    if problem is None:
        return []
    return [
        checks.Error(
            f"settings.SCOUT['LIVE_NOTIFY'] {problem}: live streams would never hear of changes.",
            hint="Set LIVE_NOTIFY to 'auto' (Redis with LIVE_REDIS_URL, else PostgreSQL's "
            "LISTEN/NOTIFY, else polling) or 'poll'.",
            id="django_scout.E005",
        )
    ]
