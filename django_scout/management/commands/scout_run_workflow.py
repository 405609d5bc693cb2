"""``manage.py scout_run_workflow WORKFLOW_ID``: run a workflow through Celery and follow it."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scout.api import (
    execute_app,
    run_workflow,
    run_workflow_with_config,
    trigger_workflow_webhook,
)
from django_scout.models import WorkflowRun
from django_scout.reporting import describe_run_event, run_summary
from django_scout.services import ENVIRONMENTS

#: How long ``--stream`` follows a run when ``--wait`` is not given.
DEFAULT_STREAM_WAIT = 600.0


class Command(BaseCommand):
    """Start a workflow run; ``--wait`` follows it, ``--stream`` prints its events live."""

    help = (
        "Run a Scout workflow. --stream stores every event as it arrives and prints block "
        "outputs live; --wait follows the run to its end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument(
            "workflow_id",
            metavar="WORKFLOW_ID",
            help="the workflow id; with --kind config a JSON file holding the workflow_config "
            "('-' for stdin), with --kind webhook the trigger URL, with --kind app the app id",
        )
        parser.add_argument(
            "--kind",
            choices=("workflow", "config", "webhook", "app"),
            default="workflow",
            help="what to run (default: workflow)",
        )
        parser.add_argument(
            "--inputs",
            default="{}",
            help="the inputs, a JSON object (for a webhook: the body, any JSON value)",
        )
        parser.add_argument("--workflow-key", help="with --kind config")
        parser.add_argument("--environment", default="production", choices=ENVIRONMENTS)
        parser.add_argument("--revision-id")
        parser.add_argument("--session-id")
        parser.add_argument("--stream", action="store_true", help="stream and print events")
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            metavar="SECONDS",
            help=f"wait up to SECONDS (default: 0, or {DEFAULT_STREAM_WAIT:.0f} with --stream)",
        )
        parser.add_argument("--json", action="store_true", help="print a JSON summary")

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate, start, follow and report."""
        try:
            inputs = json.loads(options["inputs"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--inputs is not valid JSON: {exc}") from None
        try:
            run = self._start(options, inputs)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        wait = options["wait"]
        if wait is None:
            wait = DEFAULT_STREAM_WAIT if options["stream"] else 0.0
        quiet = options["json"]
        if not quiet:
            self.stdout.write(f"started run {run.pk} of {run.target} ({run.get_kind_display()})")
        if wait > 0:
            self._follow(run, wait, print_events=options["stream"] and not quiet)
        run.refresh_from_db()
        if quiet:
            self.stdout.write(json.dumps(run_summary(run), indent=2, default=str))
        else:
            self._print_outcome(run)
        if run.status == "failed":
            raise SystemExit(1)
        if wait > 0 and not run.is_terminal:
            raise SystemExit(2)

    def _start(self, options: dict[str, Any], inputs: Any) -> WorkflowRun:
        target = options["workflow_id"]
        common = {
            "environment": options["environment"],
            "revision_id": options["revision_id"],
            "session_id": options["session_id"],
            "stream": options["stream"],
        }
        if options["kind"] == "webhook":
            return trigger_workflow_webhook(target, inputs)
        if options["kind"] == "app":
            return execute_app(target, inputs, stream=options["stream"])
        if options["kind"] == "config":
            # Always streamed, as the API defaults: only the stream reports the outcome.
            return run_workflow_with_config(
                _read_config(target),
                inputs,
                workflow_key=options["workflow_key"],
                **{**common, "stream": True},
            )
        return run_workflow(target, inputs, **common)

    def _follow(self, run: WorkflowRun, seconds: float, *, print_events: bool) -> None:
        deadline = time.monotonic() + seconds
        shown = 0
        while True:
            if print_events:
                for event in run.events.filter(sequence__gte=shown).order_by("sequence"):
                    self.stdout.write(describe_run_event(event.name, event.data))
                    shown = event.sequence + 1
                    self.stdout.flush()
            run.refresh_from_db(fields=["status"])
            if run.is_terminal:
                if print_events and run.events.filter(sequence__gte=shown).exists():
                    continue  # print what arrived with the final status
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)

    def _print_outcome(self, run: WorkflowRun) -> None:
        summary = run_summary(run)
        self.stdout.write(
            f"{summary['status']}: scout_run_id={summary['scout_run_id'] or '-'} "
            f"events={summary['events']}"
        )
        if summary["outputs"] is not None:
            self.stdout.write(f"outputs: {json.dumps(summary['outputs'], default=str)}")
        if summary["error_code"]:
            self.stdout.write(f"error: {summary['error_code']}: {summary['error_message']}")


def _read_config(source: str) -> Any:
    """The workflow_config JSON from a file (``-`` = standard input)."""
    import sys
    from pathlib import Path

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read the workflow config {source!r}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"the workflow config is not valid JSON: {exc}") from None
