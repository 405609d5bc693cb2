"""JSON a host passes to ``django_scout.api``: one rule, refused with ``ValueError`` up front.

Runs on the test database (SQLite, or PostgreSQL with ``DATABASE_URL``): each bad value is one
the database itself would refuse, and the call must raise ``ValueError`` before anything is
saved, leaving the host's own transaction usable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from django_scout.api import (
    execute_app,
    run_workflow,
    run_workflow_with_config,
    start_interaction,
    trigger_workflow_webhook,
)
from django_scout.client.validation import validate_json_value
from django_scout.models import Interaction, WorkflowRun
from tests.helpers import UNIT_SCOUT

pytestmark = pytest.mark.django_db

#: Values no supported database stores in a JSON column, and the message each gets.
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("nan", math.nan, "JSON-serializable"),
    ("infinity", math.inf, "JSON-serializable"),
    ("minus infinity", -math.inf, "JSON-serializable"),
    ("nul", "a\x00b", "NUL"),
    ("nul in a key", {"a\x00": 1}, "NUL"),
    ("lone surrogate", "\ud800", "surrogate"),
    ("not JSON", object(), "JSON-serializable"),
]

#: Each API function that takes JSON from the host, with the bad value put where it goes.
CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("metadata", lambda bad: start_interaction("agent", "hi", metadata={"x": [bad]})),
    ("variables", lambda bad: start_interaction("agent", "hi", variables={"x": bad})),
    ("message", lambda bad: start_interaction("agent", bad if isinstance(bad, str) else "hi")),
    ("messages", lambda bad: start_interaction("agent", messages=[{"content": "hi", "x": bad}])),
    ("inputs", lambda bad: run_workflow("wf", {"x": bad})),
    ("workflow_config", lambda bad: run_workflow_with_config({"x": bad})),
    ("inputs", lambda bad: run_workflow_with_config({}, {"x": bad})),
    ("body", lambda bad: trigger_workflow_webhook("https://h.test/workflows/wf/w", [bad])),
    ("inputs", lambda bad: execute_app("app", {"x": bad})),
]


@pytest.fixture(autouse=True)
def _settings() -> Any:
    with override_settings(SCOUT=UNIT_SCOUT):
        yield


@pytest.mark.parametrize(("kind", "bad", "reason"), BAD_VALUES, ids=[v[0] for v in BAD_VALUES])
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[f"{i}-{c[0]}" for i, c in enumerate(CALLS)])
def test_bad_json_raises_value_error_and_the_host_transaction_goes_on(
    kind: str, bad: Any, reason: str, name: str, call: Callable[[Any], Any]
) -> None:
    if name == "message" and not isinstance(bad, str):
        pytest.skip("a message is a string")
    with transaction.atomic():
        with pytest.raises(ValueError, match=reason) as raised:
            call(bad)
        assert str(raised.value).startswith(name)
        # The transaction is intact: a query in it still runs, and nothing was saved.
        assert Interaction.objects.count() == 0
        assert WorkflowRun.objects.count() == 0


def test_such_a_value_is_one_the_database_refuses() -> None:
    """Why the rule exists: saved anyway, NaN breaks the insert (and, in PostgreSQL, the
    transaction around it) on every supported database; NUL and a lone surrogate do on
    PostgreSQL."""
    refused: list[Any] = [math.nan, math.inf]
    if connection.vendor == "postgresql":
        refused += ["a\x00b", "\ud800"]
    for value in refused:
        with pytest.raises(DatabaseError), transaction.atomic():
            Interaction.objects.create(agent_id="agent", messages=[], metadata={"x": value})


@pytest.mark.parametrize(
    "good",
    [
        {"text": "héllo 🌍", "n": 1.5, "big": 10**30, "nested": [[{"a": None}]]},
        "a\\u0000b",  # a backslash, then "u0000": not a NUL character
        [],
        None,
        True,
    ],
)
def test_good_json_passes_unchanged(good: Any) -> None:
    assert validate_json_value(good, "x") is good


def test_deeply_nested_input_is_a_value_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="inputs must be JSON-serializable"):
        validate_json_value(deep, "inputs")
