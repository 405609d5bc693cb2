"""Helpers the housekeeping benchmarks (``seed_history.py``, ``bench_housekeeping.py``) share:
Django set-up on a chosen database, the machine's load, medians and spreads.

Import this module before anything from Django: :func:`setup_django` must run first.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The default SQLite file of the history benchmarks (``--sqlite`` changes it).
DEFAULT_SQLITE = Path(os.environ.get("TMPDIR", "/tmp")) / "django-scout-bench-history.sqlite3"


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db sqlite|postgres`` and ``--sqlite FILE``."""
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="postgres" if os.environ.get("DATABASE_URL") else "sqlite",
        help="postgres: the database DATABASE_URL names; sqlite: the file --sqlite names "
        "(default: postgres when DATABASE_URL is set)",
    )
    parser.add_argument("--sqlite", type=Path, default=DEFAULT_SQLITE, help="the SQLite file")


def setup_django(db: str, sqlite: Path) -> str:
    """Configure Django with ``bench.settings`` and set it up; returns the database's label.

    ``db`` is ``postgres`` (``DATABASE_URL``, which must be set) or ``sqlite`` (the file
    ``sqlite``). Tasks are never run inline and the broker is in memory: nothing is published.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["SCOUT_TEST_EAGER"] = "0"
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    if db == "postgres":
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            raise SystemExit("--db postgres: set DATABASE_URL=postgres://…")
    else:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{sqlite.resolve()}"
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            (mode,) = cursor.fetchone()
            version = f"SQLite {sqlite3.sqlite_version}, journal {mode}"
        else:
            cursor.execute("SHOW server_version")
            (number,) = cursor.fetchone()
            version = f"PostgreSQL {number}"
    return f"{version} ({connection.settings_dict['NAME']})"


def load_line(label: str) -> str:
    """The machine's load averages and CPU count, e.g. for the start and end of a run."""
    one, five, fifteen = os.getloadavg()
    return (
        f"[{label}] {time.strftime('%Y-%m-%d %H:%M:%S')} load average {one:.2f} {five:.2f} "
        f"{fifteen:.2f} on {os.cpu_count()} CPUs"
    )


def median_spread(seconds: Sequence[float]) -> str:
    """``seconds`` as ``median (min to max)``, in the unit that reads best."""
    low, mid, high = min(seconds), statistics.median(seconds), max(seconds)
    if high >= 1:
        return f"{mid:.2f} s ({low:.2f}-{high:.2f})"
    return f"{mid * 1000:.1f} ms ({low * 1000:.1f}-{high * 1000:.1f})"
