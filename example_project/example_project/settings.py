"""Settings of the django-scout example project, read from environment variables.

| variable | default |
|---|---|
| ``SCOUT_API_KEY`` | unset (required to call Scout) |
| ``SCOUT_API_BASE_URL`` | ``https://api.scoutos.com`` |
| ``SCOUT_SIGNING_SECRET`` | unset; comma-separated for rotation (first = current) |
| ``SCOUT_CALLBACK_BASE_URL`` | unset; public origin of this site |
| ``SCOUT_ALLOW_INSECURE_CALLBACKS`` | ``0``; ``1``/``true`` allows http:// and loopback callbacks |
| ``DATABASE_URL`` | a SQLite file under ``example_project/var/`` |
| ``CELERY_BROKER_URL`` | ``filesystem://`` (kombu's file broker, needs no server) |
| ``DJANGO_DEBUG`` | ``0`` |
| ``DJANGO_ALLOWED_HOSTS`` | ``localhost,127.0.0.1`` |
| ``DJANGO_SECRET_KEY`` | an insecure development key (set it in production) |
| ``DJANGO_STATIC_ROOT`` | ``static/`` under the var directory (``collectstatic`` fills it) |

Static files (the admin's CSS and JavaScript) are served by WhiteNoise from ``STATIC_ROOT``
whatever ``DEBUG`` is; ``scout_demo`` runs ``collectstatic`` before it starts the site.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable (``1``, ``true``, ``yes``, ``on``)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list of non-empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-insecure-development-key")
DEBUG = env_flag("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_scout",
    "tickets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT: with DEBUG off Django itself serves no static files.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def sqlite_options() -> dict[str, Any]:
    """Options that let the web process and the Celery worker share one SQLite file."""
    # Wait for locks instead of failing, and (Django 5.1+) take the write lock up front and
    # let readers run beside a writer.
    options: dict[str, Any] = {"timeout": 30}
    if django.VERSION >= (5, 1):
        options["transaction_mode"] = "IMMEDIATE"
        options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    return options


def database_config() -> dict[str, Any]:
    """Return the default database: ``DATABASE_URL`` if set, else a SQLite file.

    SQLite gets :func:`sqlite_options` however it is configured (options in the URL win).
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    else:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**sqlite_options(), **config.get("OPTIONS", {})}
    return config


DATABASES = {"default": database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "django-scout-reconcile": {"task": "django_scout.reconcile", "schedule": 60.0},
}

SCOUT: dict[str, Any] = {
    "API_KEY": os.environ.get("SCOUT_API_KEY") or None,
    "API_BASE_URL": os.environ.get("SCOUT_API_BASE_URL", "https://api.scoutos.com"),
    "SIGNING_SECRET": env_list("SCOUT_SIGNING_SECRET"),
    "CALLBACK_BASE_URL": os.environ.get("SCOUT_CALLBACK_BASE_URL") or None,
    "ALLOW_INSECURE_CALLBACKS": env_flag("SCOUT_ALLOW_INSECURE_CALLBACKS"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_scout": {"handlers": ["console"], "level": "INFO"}},
}
