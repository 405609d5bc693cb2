"""Command line of the fake Scout server (``python -m django_scout.testing``).

It prints the base URL as the first line of standard output (so scripts can read it), then
serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO

from .behaviours import EVENTS_FORMATS, AgentBehaviour, AppBehaviour, WorkflowBehaviour
from .server import LOOPBACK_HOSTS, FakeScout

__all__ = ["build_parser", "main", "scout_from_args", "serve"]


def _first_secret(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


DEFAULT_PROG = "python -m django_scout.testing"


def build_parser(prog: str = DEFAULT_PROG) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is the command shown in its usage line and ``--help``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a fake Scout API server on loopback for local development and demos.",
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    server.add_argument(
        "--api-key",
        default=os.environ.get("SCOUT_API_KEY") or "test-api-key",
        help="Bearer key clients must send (default: $SCOUT_API_KEY or test-api-key)",
    )
    server.add_argument(
        "--signing-secret",
        default=_first_secret(os.environ.get("SCOUT_SIGNING_SECRET")) or "test-signing-secret",
        help="callback signing secret (default: first of $SCOUT_SIGNING_SECRET or "
        "test-signing-secret)",
    )
    server.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    server.add_argument("-v", "--verbose", action="store_true", help="log every request")

    agents = parser.add_argument_group("agents (every agent id)")
    agents.add_argument("--events", type=int, default=5, help="events per session")
    agents.add_argument("--events-format", choices=sorted(EVENTS_FORMATS), default="sse")
    agents.add_argument("--event-interval", type=float, default=0.0)
    agents.add_argument("--outcome", choices=("succeeded", "failed"), default="succeeded")
    agents.add_argument("--error-code", default="agent_error")
    agents.add_argument("--error-message", default="The agent run failed (fake Scout).")
    agents.add_argument("--callback-delay", type=float, default=0.0)
    agents.add_argument("--duplicates", type=int, default=0, help="extra deliveries")
    agents.add_argument("--concurrent-duplicates", action="store_true")
    agents.add_argument("--callback-before-accept", action="store_true")
    agents.add_argument("--accept-status", type=int, default=202)

    callbacks = parser.add_argument_group("callback delivery")
    callbacks.add_argument("--callback-attempts", type=int, default=8)
    callbacks.add_argument("--callback-backoff", type=float, default=0.2)
    callbacks.add_argument(
        "--callback-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also allow callbacks to HOST (repeatable; loopback is always allowed)",
    )
    callbacks.add_argument(
        "--any-callback-host", action="store_true", help="allow callbacks to any host"
    )

    workflows = parser.add_argument_group("workflows (every workflow id)")
    workflows.add_argument("--workflow-shape", choices=("sdk", "docs"), default="sdk")
    workflows.add_argument(
        "--workflow-outcome", choices=("succeeded", "failed"), default="succeeded"
    )
    workflows.add_argument("--stream-interval", type=float, default=0.0)

    apps = parser.add_argument_group("apps")
    apps.add_argument(
        "--app", action="append", default=[], metavar="APP_ID", help="register an app"
    )
    apps.add_argument("--any-app", action="store_true", help="answer every app id")
    return parser


def scout_from_args(args: argparse.Namespace) -> FakeScout:
    """A (not yet started) :class:`FakeScout` configured from parsed arguments."""
    callback_hosts = None if args.any_callback_host else LOOPBACK_HOSTS | set(args.callback_host)
    scout = FakeScout(
        api_key=args.api_key,
        signing_secret=args.signing_secret,
        host=args.host,
        port=args.port,
        latency=args.latency,
        callback_max_attempts=args.callback_attempts,
        callback_backoff=args.callback_backoff,
        callback_hosts=callback_hosts,
    )
    scout.default_agent = AgentBehaviour(
        outcome=args.outcome,
        error={"code": args.error_code, "message": args.error_message},
        events=args.events,
        events_format=args.events_format,
        event_interval=args.event_interval,
        callback_delay=args.callback_delay,
        duplicates=args.duplicates,
        concurrent_duplicates=args.concurrent_duplicates,
        callback_before_accept=args.callback_before_accept,
        accept_status=args.accept_status,
    )
    scout.default_workflow = WorkflowBehaviour(
        shape=args.workflow_shape,
        outcome=args.workflow_outcome,
        stream_interval=args.stream_interval,
    )
    for app_id in args.app:
        scout.app(app_id)
    if args.any_app:
        scout.default_app = AppBehaviour()
    return scout


def serve(
    scout: FakeScout,
    *,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Start ``scout``, print its base URL, and block until SIGINT/SIGTERM (or ``stop`` is
    set); then stop it. Signal handlers are installed only in the main thread."""
    out = out or sys.stdout
    stop = stop or threading.Event()
    scout.start()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        print(scout.base_url, file=out, flush=True)
        print(
            f"Fake Scout listening on {scout.base_url} (API key {scout.api_key!r}); "
            "press Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.2):
            pass
    finally:
        scout.stop()
        for restored, handler in previous.items():
            signal.signal(restored, handler)


def main(argv: Sequence[str] | None = None, *, prog: str = DEFAULT_PROG) -> int:
    """Entry point: parse ``argv``, run the server, return the exit status.

    ``prog`` names the command in usage and error messages (``manage.py scout_fake_server``
    when the management command wraps this one).
    """
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        scout = scout_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(scout)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
