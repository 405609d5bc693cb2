"""The ``make`` fixture: every test that takes it runs twice, once per client flavour.

``make(handler, **client_kwargs)`` returns a :class:`tests.client.helpers.Harness` for the
current flavour (``sync`` or ``async``); the harnesses are closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.client.helpers import Handler, Harness


@pytest.fixture(params=["sync", "async"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Harness]]:
    """Factory of harnesses for the current flavour (``sync`` or ``async``)."""
    created: list[Harness] = []

    def factory(handler: Handler, **client_kwargs: Any) -> Harness:
        harness = Harness(request.param, handler, **client_kwargs)
        created.append(harness)
        return harness

    yield factory
    for harness in created:
        await harness.close()
