"""The one place that changes django-scout's state and sends its signals.

Every transition is a single conditional ``UPDATE`` (``WHERE status = <expected>``); the caller
that changed a row is the only one that sends the signal, after the transaction commits. Tasks,
views, the admin and management commands call these functions and stay thin.

- :mod:`.interactions`: agent interactions, callbacks, events, reconcile and prune;
- :mod:`.workflows`: workflow runs, webhook triggers and app executions;
- :mod:`.housekeeping`: reconcile and prune across both;
- :mod:`.common`: the Scout client factory, the start rule and after-commit helpers;
- :mod:`.registry`: the Celery tasks the services enqueue, registered by :mod:`django_scout.tasks`.

"""

from .common import (
    TRANSIENT_DATABASE_ERRORS,
    OutcomeNotStored,
    ReconcileReport,
    RetryLater,
    enqueue_after_commit,
    error_code_for,
    get_client,
)
from .housekeeping import prune, reconcile
from .interactions import (
    ProcessOutcome,
    StartOutcome,
    StreamOutcome,
    accept_interaction,
    attach_session,
    attempt_delivery,
    callback_url_for,
    claim_start,
    complete_interaction,
    consume_stream,
    fail_start,
    fetch_events,
    give_up_delivery,
    give_up_start,
    mark_start_unconfirmed,
    outcome_from_dict,
    perform_start,
    perform_stream,
    process_delivery,
    record_callback,
    release_start_claim,
    reprocess_delivery,
    retry_start,
    start_interaction,
    store_events,
    store_start_outcome,
)
from .workflows import (
    ENVIRONMENTS,
    RunOutcome,
    execute_app,
    fail_run,
    give_up_run,
    perform_run,
    rerun,
    run_workflow,
    run_workflow_with_config,
    trigger_workflow_webhook,
)

__all__ = [
    "ENVIRONMENTS",
    "TRANSIENT_DATABASE_ERRORS",
    "OutcomeNotStored",
    "ProcessOutcome",
    "ReconcileReport",
    "RetryLater",
    "RunOutcome",
    "StartOutcome",
    "StreamOutcome",
    "accept_interaction",
    "attach_session",
    "attempt_delivery",
    "callback_url_for",
    "claim_start",
    "complete_interaction",
    "consume_stream",
    "enqueue_after_commit",
    "error_code_for",
    "execute_app",
    "fail_run",
    "fail_start",
    "fetch_events",
    "get_client",
    "give_up_delivery",
    "give_up_run",
    "give_up_start",
    "mark_start_unconfirmed",
    "outcome_from_dict",
    "perform_run",
    "perform_start",
    "perform_stream",
    "process_delivery",
    "prune",
    "reconcile",
    "record_callback",
    "release_start_claim",
    "reprocess_delivery",
    "rerun",
    "retry_start",
    "run_workflow",
    "run_workflow_with_config",
    "start_interaction",
    "store_events",
    "store_start_outcome",
    "trigger_workflow_webhook",
]
