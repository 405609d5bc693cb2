"""Test helpers for django-scout and its host projects: a fake Scout server, and more.

:class:`FakeScout` is a real HTTP server on loopback that answers Scout's agent, workflow and
app endpoints in the shapes of Scout's docs and official SDK, sends HMAC-signed completion
callbacks (at least once: delayed, repeated, retried or failed on demand) and serves lazily
generated event streams. It needs no Django. The pytest plugin
(:mod:`django_scout.testing.pytest_plugin`) provides a ``fake_scout`` fixture.
"""

from .behaviours import (
    EVENTS_FORMATS,
    AgentBehaviour,
    AppBehaviour,
    EventsFormat,
    WorkflowBehaviour,
)
from .callbacks import CallbackDelivery, callback_payload, encode_callback, sign_callback
from .faults import Fault, SlowRule
from .records import (
    AppExecution,
    CallbackAttempt,
    FakeSession,
    Interaction,
    RecordedRequest,
    WorkflowRunRecord,
)
from .server import LOOPBACK_HOSTS, FakeScout

__all__ = [
    "EVENTS_FORMATS",
    "LOOPBACK_HOSTS",
    "AgentBehaviour",
    "AppBehaviour",
    "AppExecution",
    "CallbackAttempt",
    "CallbackDelivery",
    "EventsFormat",
    "FakeScout",
    "FakeSession",
    "Fault",
    "Interaction",
    "RecordedRequest",
    "SlowRule",
    "WorkflowBehaviour",
    "WorkflowRunRecord",
    "callback_payload",
    "encode_callback",
    "sign_callback",
]
