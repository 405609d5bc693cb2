"""``manage.py scout_reconcile``: repair what a down broker or a lost callback left behind."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_scout import services


class Command(BaseCommand):
    """Re-enqueue stalled starts and deliveries; time out interactions with no callback."""

    help = (
        "Re-enqueue interactions, callbacks and workflow runs left unprocessed, match early "
        "callbacks, and fail interactions with no callback within CALLBACK_DEADLINE "
        "(callback_timeout) and runs with no outcome within RUN_DEADLINE (run_timeout)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument("--json", action="store_true", help="print a JSON report")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run reconcile and report."""
        report = services.reconcile()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(
            f"re-enqueued {len(report.requeued_starts)} start(s), "
            f"{len(report.requeued_deliveries)} callback(s) and "
            f"{len(report.requeued_runs)} workflow run(s); timed out "
            f"{len(report.timed_out)} interaction(s) and {len(report.timed_out_runs)} run(s)"
        )
