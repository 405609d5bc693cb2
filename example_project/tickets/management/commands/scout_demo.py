"""``manage.py scout_demo``: the whole integration, end to end, on one machine.

Starts the fake Scout server, this site (for Scout's callbacks and the admin) and a real Celery
worker, opens a support ticket per scenario and asks Scout to triage each, shows progress, prints
a summary table, and then either stays up for browsing the admin or, with ``--once``, exits
(status 1 when an interaction did not end as its scenario expects); ``--serve-for SECONDS``
keeps the admin up that long (or until SIGTERM) and then exits like ``--once``.

The admin is styled although ``DEBUG`` is off: the demo runs ``collectstatic`` into
``STATIC_ROOT`` and the example settings serve it with WhiteNoise.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scout.conf import reset_cache
from django_scout.models import Interaction, WorkflowRun
from django_scout.reporting import interaction_summary, run_summary
from django_scout.services import reconcile
from django_scout.testing import FakeScout
from tickets.demo.processes import WebServer, Worker, worker_environment
from tickets.demo.report import progress_line, table
from tickets.demo.scenarios import SCENARIOS, WORKFLOW_SCENARIOS, WorkflowScenario
from tickets.models import Ticket
from tickets.services import ask_scout, route_ticket

DEMO_API_KEY = "demo-api-key"
DEMO_SECRET = "demo-signing-secret"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
#: Seconds between the reconcile runs the demo makes while it waits (and the grace it gives them).
DEMO_RECONCILE_EVERY = 5


class Command(BaseCommand):
    """Run the end-to-end demo."""

    help = "Run the django-scout demo: fake Scout + this site + a Celery worker."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's arguments."""
        parser.add_argument("--once", action="store_true", help="exit after the summary")
        parser.add_argument("--port", type=int, default=8000, help="web port (0 = any free one)")
        parser.add_argument(
            "--timeout", type=float, default=180, help="seconds to wait for the interactions"
        )
        parser.add_argument(
            "--serve-for",
            type=float,
            default=None,
            metavar="SECONDS",
            help="after the summary, serve the admin this long (or until SIGTERM), then exit "
            "like --once",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Set up, run the scenarios, report, and stay up or exit."""
        self._prepare_database()
        self._collect_static()
        broker = str(settings.CELERY_BROKER_URL)
        if broker.startswith("filesystem://"):
            self._purge_file_broker()
        self.stdout.write(f"database: {settings.DATABASES['default']['ENGINE']}, broker: {broker}")
        fake = FakeScout(api_key=DEMO_API_KEY, signing_secret=DEMO_SECRET)
        for scenario in SCENARIOS:
            fake.agent(scenario.agent_id, scenario.behaviour)
        for workflow in WORKFLOW_SCENARIOS:
            fake.workflow(workflow.workflow_id, workflow.behaviour)
        web = _start_web_server(options["port"])
        worker: Worker | None = None
        try:
            fake.start()
            self.stdout.write(f"fake Scout:   {fake.base_url}")
            self.stdout.write(f"example site: {web.url}")
            scout_env = {
                "SCOUT_API_KEY": DEMO_API_KEY,
                "SCOUT_API_BASE_URL": fake.base_url,
                "SCOUT_SIGNING_SECRET": DEMO_SECRET,
                "SCOUT_CALLBACK_BASE_URL": web.url,
                "SCOUT_ALLOW_INSECURE_CALLBACKS": "1",
            }
            _apply_scout_settings(scout_env)
            var_dir = Path(os.environ.get("EXAMPLE_VAR_DIR", Path(settings.BASE_DIR) / "var"))
            worker = Worker(worker_environment(scout_env), var_dir / "demo-worker.log").start()
            self.stdout.write("starting a Celery worker ...")
            worker.wait_ready()
            ok = self._run_scenarios(fake, options["timeout"], web.url)
            self._print_admin_hint(web.url)
            serve_for = options["serve_for"]
            if options["once"] or serve_for is not None:
                if serve_for:
                    note = f"serving the admin for {serve_for:.0f}s (or until SIGTERM)"
                    _wait_for_interrupt(serve_for, lambda: self.stdout.write(note))
                if not ok:
                    raise CommandError("some interactions did not end as expected")
                return
            _wait_for_interrupt(None, lambda: self.stdout.write("Press Ctrl-C to stop."))
        finally:
            if worker is not None:
                worker.stop()
            web.stop()
            fake.stop()

    def _prepare_database(self) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USER).exists():
            user_model.objects.create_superuser(DEMO_USER, "demo@example.com", DEMO_PASSWORD)

    def _collect_static(self) -> None:
        """Copy the admin's CSS and JavaScript to ``STATIC_ROOT``, which WhiteNoise serves.

        Must run before the web server starts: WhiteNoise indexes ``STATIC_ROOT`` once, when
        the WSGI application is built. Files already there and unchanged are skipped.
        """
        call_command("collectstatic", interactive=False, verbosity=0)

    def _purge_file_broker(self) -> None:
        from example_project.celery import app

        folder = app.conf.broker_transport_options.get("data_folder_in")
        if folder and Path(folder).is_dir():
            shutil.rmtree(folder)
            Path(folder).mkdir(parents=True)

    def _run_scenarios(self, fake: FakeScout, timeout: float, site_url: str) -> bool:
        started: list[tuple[Any, Ticket, Interaction]] = []
        for scenario in SCENARIOS:
            ticket = Ticket.objects.create(
                subject=scenario.subject, body=scenario.body, customer_email="jane@example.com"
            )
            interaction = ask_scout(ticket, agent_id=scenario.agent_id, stream=scenario.stream)
            started.append((scenario, ticket, interaction))
            if scenario.stream:
                self.stdout.write(
                    f"live triage: {site_url}{ticket.get_absolute_url()}  "
                    f"(the {scenario.key!r} scenario, as it happens; user {DEMO_USER!r})"
                )
        runs: list[tuple[WorkflowScenario, Ticket, WorkflowRun]] = []
        for workflow, (_, ticket, _) in zip(WORKFLOW_SCENARIOS, started, strict=False):
            run = route_ticket(ticket, workflow.workflow_id, stream=workflow.stream)
            runs.append((workflow, ticket, run))
        self.stdout.write(
            f"started {len(started)} interactions and {len(runs)} workflow runs; waiting for Scout"
        )
        begin = time.monotonic()
        last_counts = ""
        reconciled_at = begin
        while True:
            if time.monotonic() - reconciled_at >= DEMO_RECONCILE_EVERY:
                # As beat does in production: a start whose publish was skipped (a broker
                # slow to answer the first publish opens the breaker) is enqueued again.
                reconcile()
                reconciled_at = time.monotonic()
            statuses = list(
                Interaction.objects.filter(pk__in=[i.pk for _, _, i in started]).values_list(
                    "status", flat=True
                )
            )
            run_statuses = list(
                WorkflowRun.objects.filter(pk__in=[r.pk for _, _, r in runs]).values_list(
                    "status", flat=True
                )
            )
            elapsed = time.monotonic() - begin
            line = (
                progress_line(statuses, elapsed)
                + "  || runs: "
                + progress_line(
                    run_statuses, elapsed, ("pending", "running", "succeeded", "failed")
                ).split("] ", 1)[1]
            )
            counts = line.split("]", 1)[1]
            if counts != last_counts or int(elapsed * 2) % 10 == 0:
                self.stdout.write(line)
            last_counts = counts
            done = ("succeeded", "failed")
            if all(s in done for s in statuses) and all(s in done for s in run_statuses):
                break
            if elapsed > timeout:
                self.stderr.write(f"timed out after {timeout:.0f}s")
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let late duplicate deliveries land so the table shows them
        interactions_ok = self._print_summary(fake, started)
        runs_ok = self._print_run_summary(runs)
        ok = interactions_ok and runs_ok
        self.stdout.write("all interactions ended as expected" if ok else "UNEXPECTED OUTCOMES")
        return ok

    def _print_run_summary(self, runs: list[tuple[WorkflowScenario, Ticket, WorkflowRun]]) -> bool:
        rows = []
        ok = True
        for scenario, ticket, run in runs:
            run.refresh_from_db()
            ticket.refresh_from_db()
            summary = run_summary(run)
            matches = run.status == scenario.expected_status
            ok = ok and matches
            rows.append(
                {
                    "scenario": scenario.key,
                    "workflow": run.target,
                    "mode": "stream" if run.stream else "plain",
                    "status": run.status + ("" if matches else " (!)"),
                    "events": summary["events"],
                    "duration": f"{run.duration:.1f}s" if run.duration is not None else "-",
                    "routed to": ticket.routed_to or "-",
                    "error": summary["error_code"] or "",
                }
            )
        self.stdout.write("")
        columns = ["scenario", "workflow", "mode", "status", "events", "duration", "routed to"]
        self.stdout.write(table(rows, [(c, c) for c in [*columns, "error"]]))
        return ok

    def _print_summary(
        self, fake: FakeScout, started: list[tuple[Any, Ticket, Interaction]]
    ) -> bool:
        rows = []
        ok = True
        for scenario, ticket, interaction in started:
            interaction.refresh_from_db()
            ticket.refresh_from_db()
            summary = interaction_summary(interaction)
            matches = interaction.status == scenario.expected_status
            ok = ok and matches
            rows.append(
                {
                    "scenario": scenario.key,
                    "agent": scenario.agent_id,
                    "mode": "stream" if interaction.stream else "callback",
                    "status": interaction.status + ("" if matches else " (!)"),
                    "events": summary["events"],
                    "deliveries": summary["deliveries"],
                    "duration": f"{summary['duration_s']:.1f}s" if summary["duration_s"] else "-",
                    "ticket": ticket.get_triage_display(),
                    "error": summary["error_code"] or "",
                }
            )
        self.stdout.write("")
        self.stdout.write(
            table(
                rows,
                [
                    ("scenario", "scenario"),
                    ("agent", "agent"),
                    ("mode", "mode"),
                    ("status", "status"),
                    ("events", "events"),
                    ("deliveries", "deliveries"),
                    ("duration", "duration"),
                    ("ticket", "ticket"),
                    ("error", "error"),
                ],
            )
        )
        self.stdout.write(f"fake Scout sent {len(fake.callbacks)} callback request(s)")
        return ok

    def _print_admin_hint(self, url: str) -> None:
        self.stdout.write("")
        self.stdout.write(f"admin: {url}/admin/  (user {DEMO_USER!r}, password {DEMO_PASSWORD!r})")
        self.stdout.write(f"       {url}/admin/django_scout/interaction/")
        self.stdout.write(f"       {url}/admin/django_scout/workflowrun/")
        self.stdout.write(f"tickets: {url}/tickets/<id>/  (each ticket's triage, followed live)")


def _start_web_server(port: int) -> WebServer:
    try:
        return WebServer(port=port).start()
    except OSError:
        if port == 0:
            raise
        return WebServer(port=0).start()


def _apply_scout_settings(env: dict[str, str]) -> None:
    settings.SCOUT = {
        **settings.SCOUT,
        "API_KEY": env["SCOUT_API_KEY"],
        "API_BASE_URL": env["SCOUT_API_BASE_URL"],
        "SIGNING_SECRET": [env["SCOUT_SIGNING_SECRET"]],
        "CALLBACK_BASE_URL": env["SCOUT_CALLBACK_BASE_URL"],
        "ALLOW_INSECURE_CALLBACKS": True,
        # This process stands in for beat (see _run_scenarios), on a demo's time scale.
        "RECONCILE_GRACE": DEMO_RECONCILE_EVERY,
    }
    reset_cache()


def _wait_for_interrupt(timeout: float | None, announce: Callable[[], object]) -> None:
    """Block until Ctrl-C, SIGTERM or (if given) ``timeout`` seconds have passed.

    ``announce`` runs once the SIGTERM handler is in place, so whoever reads the announcement
    may stop the demo with SIGTERM straight away.
    """
    stop = False
    deadline = None if timeout is None else time.monotonic() + timeout

    def handler(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handler)
    announce()
    try:
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
