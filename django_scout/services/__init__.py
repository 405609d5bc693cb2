"""The one place that changes django-scout's state and sends its signals.

Every transition is a single conditional ``UPDATE`` (``WHERE status = <expected>``); the caller
that changed a row is the only one that sends the signal, after the transaction commits. Tasks,
views, the admin and management commands call these functions and stay thin.

- :mod:`.interactions`: agent interactions, callbacks, events, reconcile and prune;
- :mod:`.workflows`: workflow runs, webhook triggers and app executions;
- :mod:`.housekeeping`: reconcile and prune across both;
- :mod:`.common`: the Scout client factory and after-commit helpers.

"""

from .common import ReconcileReport, enqueue_after_commit, error_code_for, get_client
from .housekeeping import prune, reconcile
from .interactions import (
    ProcessOutcome,
    accept_interaction,
    callback_url_for,
    claim_start,
    complete_interaction,
    fail_start,
    fetch_events,
    mark_start_unconfirmed,
    process_delivery,
    record_callback,
    release_start_claim,
    start_interaction,
    store_events,
)
from .workflows import (
    ENVIRONMENTS,
    RetryLater,
    execute_app,
    fail_run,
    perform_run,
    rerun,
    run_workflow,
    run_workflow_with_config,
    trigger_workflow_webhook,
)

__all__ = [
    "ENVIRONMENTS",
    "ProcessOutcome",
    "ReconcileReport",
    "RetryLater",
    "accept_interaction",
    "callback_url_for",
    "claim_start",
    "complete_interaction",
    "enqueue_after_commit",
    "error_code_for",
    "execute_app",
    "fail_run",
    "fail_start",
    "fetch_events",
    "get_client",
    "mark_start_unconfirmed",
    "perform_run",
    "process_delivery",
    "prune",
    "reconcile",
    "record_callback",
    "release_start_claim",
    "rerun",
    "run_workflow",
    "run_workflow_with_config",
    "start_interaction",
    "store_events",
    "trigger_workflow_webhook",
]
