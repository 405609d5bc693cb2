"""``manage.py scout_interact AGENT_ID MESSAGE``: start an interaction, optionally wait for it."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scout.api import start_interaction
from django_scout.models import Interaction
from django_scout.reporting import interaction_summary

SPINNER = "|/-\\"


class Command(BaseCommand):
    """Start an agent interaction (async, or streamed) through Celery and report on it."""

    help = "Start a Scout agent interaction; --wait follows it to a terminal status."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument("agent_id")
        parser.add_argument("message")
        parser.add_argument("--session-id", help="continue this Scout session")
        parser.add_argument(
            "--tag", action="append", default=[], dest="tags", help="repeat for several tags"
        )
        parser.add_argument("--metadata", help="a JSON object sent as metadata")
        parser.add_argument(
            "--stream",
            action="store_true",
            help="run it through Scout's streaming endpoint, storing events as they arrive",
        )
        parser.add_argument(
            "--wait", type=float, default=0, metavar="SECONDS", help="wait up to SECONDS"
        )
        parser.add_argument("--json", action="store_true", help="print a JSON summary")

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate, start, and optionally wait."""
        metadata = None
        if options["metadata"]:
            try:
                metadata = json.loads(options["metadata"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--metadata is not valid JSON: {exc}") from None
        try:
            interaction = start_interaction(
                options["agent_id"],
                options["message"],
                session_id=options["session_id"],
                metadata=metadata,
                tags=options["tags"] or None,
                stream=options["stream"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not options["json"]:
            self.stdout.write(f"started interaction {interaction.pk} ({interaction.status})")
        if options["wait"] > 0:
            interaction = self._wait(interaction, options["wait"], quiet=options["json"])
        else:
            interaction.refresh_from_db()
        if options["json"]:
            self.stdout.write(json.dumps(interaction_summary(interaction), indent=2))
        else:
            self._print_outcome(interaction)
        if interaction.status == "failed":
            raise SystemExit(1)
        if options["wait"] > 0 and not interaction.is_terminal:
            raise SystemExit(2)

    def _wait(self, interaction: Interaction, seconds: float, *, quiet: bool) -> Interaction:
        deadline = time.monotonic() + seconds
        last_status = interaction.status
        tick = 0
        interactive = sys.stderr.isatty() and not quiet
        while time.monotonic() < deadline:
            interaction.refresh_from_db()
            if interaction.status != last_status and not quiet:
                if interactive:
                    self.stderr.write("\r", ending="")
                self.stderr.write(f"status: {last_status} -> {interaction.status}")
                last_status = interaction.status
            if interaction.is_terminal:
                break
            if interactive:
                elapsed = seconds - (deadline - time.monotonic())
                self.stderr.write(
                    f"\r{SPINNER[tick % 4]} {interaction.status} {elapsed:5.1f}s", ending=""
                )
                self.stderr.flush()
            tick += 1
            time.sleep(0.2)
        if interactive:
            self.stderr.write("\r", ending="")
        return interaction

    def _print_outcome(self, interaction: Interaction) -> None:
        summary = interaction_summary(interaction)
        self.stdout.write(
            f"{summary['status']}: session={summary['session_id'] or '-'} "
            f"events={summary['events']} deliveries={summary['deliveries']}"
        )
        if summary["error_code"]:
            self.stdout.write(f"error: {summary['error_code']}: {summary['error_message']}")
