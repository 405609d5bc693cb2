"""``manage.py scout_fetch_events``: (re-)fetch interactions' event streams now."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scout import services
from django_scout.client import ScoutError
from django_scout.models import Interaction


class Command(BaseCommand):
    """Fetch events for the given interactions, or for all whose events are missing."""

    help = "Fetch event streams into InteractionEvent (idempotent; never duplicates)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument("interaction_ids", nargs="*", metavar="INTERACTION_ID")
        parser.add_argument(
            "--missing", action="store_true", help="every interaction whose events are missing"
        )
        parser.add_argument("--json", action="store_true", help="print a JSON report")

    def handle(self, *args: Any, **options: Any) -> None:
        """Fetch and report per interaction; exit 1 if any fetch failed."""
        ids = options["interaction_ids"]
        if not ids and not options["missing"]:
            raise CommandError("name INTERACTION_IDs or pass --missing")
        queryset = Interaction.objects.exclude(events_url="")
        if ids:
            try:
                queryset = queryset.filter(pk__in=ids)
            except Exception as exc:  # invalid UUIDs
                raise CommandError(f"invalid interaction id: {exc}") from None
            found = {str(pk) for pk in queryset.values_list("pk", flat=True)}
            unknown = sorted(set(ids) - found)
            if unknown:
                raise CommandError(f"no interaction with an events_url: {', '.join(unknown)}")
        else:
            queryset = queryset.filter(events_missing=True)
        report: dict[str, Any] = {}
        for interaction in queryset.iterator():
            try:
                count = services.fetch_events(interaction)
            except ScoutError as exc:
                report[str(interaction.pk)] = {"ok": False, "error": str(exc)}
                if not options["json"]:
                    self.stderr.write(f"{interaction.pk}: failed: {exc}")
            else:
                report[str(interaction.pk)] = {"ok": True, "events": count}
                if not options["json"]:
                    self.stdout.write(f"{interaction.pk}: {count} events")
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        elif not report:
            self.stdout.write("nothing to fetch")
        if any(not item["ok"] for item in report.values()):
            raise SystemExit(1)
