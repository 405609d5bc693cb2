"""Scout API client (sync and async). No Django import here.

``ScoutClient`` / ``AsyncScoutClient`` are the entry points; the models, workflow events and
errors they return or raise are exported here too.
"""

from ._retry import ExponentialBackoff, RetryPolicy, parse_retry_after
from .client import AsyncScoutClient, ScoutClient
from .errors import (
    ScoutAPIError,
    ScoutAuthError,
    ScoutError,
    ScoutNotFoundError,
    ScoutProtocolError,
    ScoutRateLimitError,
    ScoutServerError,
    ScoutStreamError,
    ScoutTransportError,
    ScoutValidationError,
    UntrustedURLError,
)
from .event_stream import AsyncEventStream, EventStream
from .models import (
    ActiveAgent,
    ActorIdentity,
    Agent,
    AgentReply,
    AgentRevision,
    AgentStreamEvent,
    AppExecution,
    AppStreamEvent,
    AsyncInteractionAccepted,
    WebhookTriggerResult,
    WorkflowRunResult,
)
from .redaction import mask_webhook_url
from .streams import SessionEvent
from .validation import build_messages, validate_tags
from .workflow_events import (
    BlockRunCompleted,
    BlockRunFailed,
    BlockRunStarted,
    BlockStateUpdated,
    UnknownWorkflowEvent,
    WorkflowEvent,
    WorkflowRunCompleted,
    WorkflowRunFailed,
    WorkflowRunStarted,
    WorkflowStreamError,
    parse_workflow_event,
)

__all__ = [
    "ActiveAgent",
    "ActorIdentity",
    "Agent",
    "AgentReply",
    "AgentRevision",
    "AgentStreamEvent",
    "AppExecution",
    "AppStreamEvent",
    "AsyncEventStream",
    "AsyncInteractionAccepted",
    "AsyncScoutClient",
    "BlockRunCompleted",
    "BlockRunFailed",
    "BlockRunStarted",
    "BlockStateUpdated",
    "EventStream",
    "ExponentialBackoff",
    "RetryPolicy",
    "ScoutAPIError",
    "ScoutAuthError",
    "ScoutClient",
    "ScoutError",
    "ScoutNotFoundError",
    "ScoutProtocolError",
    "ScoutRateLimitError",
    "ScoutServerError",
    "ScoutStreamError",
    "ScoutTransportError",
    "ScoutValidationError",
    "SessionEvent",
    "UnknownWorkflowEvent",
    "UntrustedURLError",
    "WebhookTriggerResult",
    "WorkflowEvent",
    "WorkflowRunCompleted",
    "WorkflowRunFailed",
    "WorkflowRunResult",
    "WorkflowRunStarted",
    "WorkflowStreamError",
    "build_messages",
    "mask_webhook_url",
    "parse_retry_after",
    "parse_workflow_event",
    "validate_tags",
]
