"""pytest plugin of django-scout (registered as the ``django_scout`` pytest11 entry point).

Fixtures:

``fake_scout``
    A started :class:`~django_scout.testing.FakeScout` (API key ``test-api-key``, signing secret
    ``test-signing-secret``, a free loopback port), stopped after the test. Constructor
    arguments can be given per test with the ``fake_scout`` marker::

        @pytest.mark.fake_scout(latency=0.1, callback_backoff=0.01)
        def test_slow_scout(fake_scout): ...

``fake_scout_settings``
    Points ``settings.SCOUT`` at ``fake_scout`` for the test (needs pytest-django's
    ``settings`` fixture); the value is the resulting ``SCOUT`` dict.

The plugin imports nothing heavy (and no Django) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import FakeScout

__all__ = ["fake_scout", "fake_scout_settings", "pytest_configure"]

FIXTURE_DEFAULTS: dict[str, Any] = {
    "api_key": "test-api-key",
    "signing_secret": "test-signing-secret",
    "port": 0,
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_scout`` marker."""
    config.addinivalue_line(
        "markers",
        "fake_scout(**kwargs): FakeScout constructor arguments for the fake_scout fixture",
    )


@pytest.fixture
def fake_scout(request: pytest.FixtureRequest) -> Iterator[FakeScout]:
    """A started fake Scout server on loopback, stopped after the test."""
    from .server import FakeScout

    options = dict(FIXTURE_DEFAULTS)
    marker = request.node.get_closest_marker("fake_scout")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.fake_scout takes keyword arguments only")
        options.update(marker.kwargs)
    scout = FakeScout(**options)
    scout.start()
    try:
        yield scout
    finally:
        scout.stop()


@pytest.fixture
def fake_scout_settings(request: pytest.FixtureRequest, fake_scout: FakeScout) -> dict[str, Any]:
    """``settings.SCOUT`` pointed at ``fake_scout`` for one test (pytest-django required).

    Keeps the project's other ``SCOUT`` keys (e.g. ``CALLBACK_BASE_URL``) and overrides
    ``API_KEY``, ``API_BASE_URL``, ``SIGNING_SECRET`` and ``ALLOW_INSECURE_CALLBACKS``.
    """
    settings = request.getfixturevalue("settings")
    scout_settings: dict[str, Any] = {
        **getattr(settings, "SCOUT", {}),
        **fake_scout.scout_settings(),
    }
    settings.SCOUT = scout_settings
    return scout_settings
