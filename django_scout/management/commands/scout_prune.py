"""``manage.py scout_prune --older-than DAYS``: delete old events and processed callbacks."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scout import services


class Command(BaseCommand):
    """Keep the event and delivery tables from growing forever."""

    help = (
        "Delete events of interactions and workflow runs finished more than DAYS ago and "
        "callback deliveries processed more than DAYS ago. Interactions, runs and unprocessed "
        "deliveries are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--json", action="store_true", help="print a JSON report")

    def handle(self, *args: Any, **options: Any) -> None:
        """Prune and report counts."""
        if options["older_than"] < 0:
            raise CommandError("--older-than must be zero or more days")
        counts = services.prune(options["older_than"])
        if options["json"]:
            self.stdout.write(json.dumps(counts))
        else:
            self.stdout.write(
                f"deleted {counts['events']} interaction event(s), {counts['run_events']} run "
                f"event(s) and {counts['deliveries']} delivery(ies)"
            )
