"""Shared fixtures of the fake-server tests: a plain httpx client pointed at ``fake_scout``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from django_scout.testing import FakeScout


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client per module: building one (its TLS context) costs more than a request."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


@pytest.fixture
def api(client: httpx.Client, fake_scout: FakeScout) -> httpx.Client:
    """The module's client, with this test's fake as base URL and its API key."""
    client.base_url = httpx.URL(fake_scout.base_url)
    client.headers["Authorization"] = "Bearer test-api-key"
    return client
