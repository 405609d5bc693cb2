"""``manage.py scout_fake_server``: run the fake Scout server with this project's key and secret.

Every option of ``python -m django_scout.testing`` is accepted (``manage.py scout_fake_server
--help`` lists them); the API key and signing secret default to ``SCOUT["API_KEY"]`` and the first
``SCOUT["SIGNING_SECRET"]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_scout.conf import scout_settings
from django_scout.testing import cli


def fake_server_argv(extra: Sequence[str]) -> list[str]:
    """The fake server's arguments: this project's key and secret, then ``extra``."""
    conf = scout_settings()
    defaults: list[str] = []
    if conf.API_KEY:
        defaults += ["--api-key", conf.API_KEY]
    if conf.SIGNING_SECRET:
        defaults += ["--signing-secret", conf.SIGNING_SECRET[0]]
    return [*defaults, *extra]


def command_prog(argv0: str, subcommand: str = "scout_fake_server") -> str:
    """How the command was invoked, for its usage line: ``manage.py scout_fake_server``.

    Django's own commands name themselves the same way (``python -m django`` when run as a
    module).
    """
    name = os.path.basename(argv0)
    if name == "__main__.py":
        name = "python -m django"
    return f"{name} {subcommand}"


class Command(BaseCommand):
    """Serve the fake Scout API on loopback until Ctrl-C."""

    help = "Run the fake Scout server on loopback until Ctrl-C (--help lists its options)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Everything is forwarded to the fake server's own parser."""
        parser.add_argument("fake_args", nargs=argparse.REMAINDER)

    def run_from_argv(self, argv: list[str]) -> None:
        """Forward ``manage.py scout_fake_server ARGS`` to the fake server's command line."""
        import django

        django.setup()
        prog = command_prog(argv[0], argv[1])
        raise SystemExit(cli.main(fake_server_argv(argv[2:]), prog=prog))

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("scout_fake_server", "--port", "0")`` runs it in the foreground."""
        status = cli.main(
            fake_server_argv([*args, *options.get("fake_args", [])]),
            prog=command_prog("manage.py"),
        )
        if status:
            raise SystemExit(status)
