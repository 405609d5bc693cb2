"""No secret leaves: each one is injected where Scout or a proxy could echo it, then looked for
in the log output, in the stored rows and in the admin's list and change pages.

Scout's own records (a callback's ``raw_body`` and ``payload``, a run's ``raw_response``) are
stored verbatim, so the row checks leave them out where they hold the injected secret; the admin
shows them scrubbed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core import serializers
from django.db import models
from django.test import Client, override_settings

from django_scout.api import run_workflow, start_interaction, trigger_workflow_webhook
from django_scout.models import CallbackDelivery, Interaction, WorkflowRun
from django_scout.testing import FakeScout, WorkflowBehaviour
from tests.helpers import SECRET, Committed, callback_payload, post_callback
from tests.mock_scout import MockScout

# Rolled back after each test; each call that commits in production (a request, a service
# call) runs under ``committed()``, which runs its on_commit callbacks as it ends.
pytestmark = pytest.mark.django_db

API_KEY = "sk-live-tests-4f9a8b7c6d5e"
BEARER = "tok_bearer_0a1b2c3d4e5f"
SCOUT_TOKEN = "tok_scout_header_9f8e7d6c"

SCOUT: dict[str, Any] = {
    "API_KEY": API_KEY,
    "API_BASE_URL": "https://api.scoutos.test",
    "SIGNING_SECRET": SECRET,
    "CALLBACK_BASE_URL": "https://app.example.test",
    "TASK_RETRY_BACKOFF": 0.0,
    "MAX_RETRIES": 0,
    "TASK_MAX_RETRIES": 2,
}


@pytest.fixture(autouse=True)
def _settings_and_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with override_settings(SCOUT=SCOUT), caplog.at_level(logging.DEBUG):
        yield


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.test", "pw"))
    return client


def admin_html(client: Client, obj: models.Model) -> str:
    """The admin's list page of ``obj``'s model and ``obj``'s change page."""
    base = f"/admin/django_scout/{obj._meta.model_name}/"
    pages = [client.get(base), client.get(f"{base}{obj.pk}/change/")]
    assert [page.status_code for page in pages] == [200, 200]
    return "".join(page.content.decode() for page in pages)


def rows(*querysets: Any, exclude: tuple[str, ...] = ()) -> str:
    """Every field but ``exclude`` of every row, as JSON."""
    parts = []
    for queryset in querysets:
        assert queryset.exists()
        fields = [f.name for f in queryset.model._meta.concrete_fields if f.name not in exclude]
        parts.append(serializers.serialize("json", queryset, fields=fields))
    return "".join(parts)


def assert_nowhere(secrets: tuple[str, ...], *places: str) -> None:
    for secret in secrets:
        for place in places:
            assert secret not in place


def started(committed: Committed) -> Interaction:
    """A new interaction, reloaded after its (eager) start task ran."""
    with committed():
        interaction = start_interaction("agent-1", "hello")
    interaction.refresh_from_db()
    return interaction


def deliver(
    committed: Committed,
    interaction: Interaction,
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> Interaction:
    """POST Scout's signed callback for ``interaction`` (with extra ``headers``) and process
    it; returns the interaction reloaded."""
    payload = callback_payload(str(interaction.session_id), **overrides)
    with committed():
        response = post_callback(
            Client(), payload, interaction_id=interaction.pk, extra_headers=headers
        )
    assert response.status_code == 200
    interaction.refresh_from_db()
    return interaction


def interaction_pages(client: Client, interaction: Interaction) -> str:
    """The admin pages of ``interaction`` and of its (only) callback delivery."""
    delivery = CallbackDelivery.objects.get()
    return admin_html(client, interaction) + admin_html(client, delivery)


# --- the API key, echoed by Scout when it refuses or fails a start -----------------------------


@pytest.mark.parametrize("status", [401, 500, 503])
def test_api_key_echoed_by_a_failed_start_leaks_nowhere(
    mock_scout: MockScout,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    status: int,
    committed: Committed,
) -> None:
    echo = {"detail": f"key {API_KEY} refused", "seen": {"Authorization": f"Bearer {API_KEY}"}}
    mock_scout.start_faults = [httpx.Response(status, json=echo) for _ in range(5)]
    interaction = started(committed)
    assert interaction.error_message  # there is something to look at
    assert_nowhere(
        (API_KEY,),
        rows(Interaction.objects.all()),
        caplog.text,
        admin_html(admin_client, interaction),
    )


# --- a bearer token in an event-fetch error -----------------------------------------------------


def test_bearer_token_in_an_event_fetch_error_leaks_nowhere(
    mock_scout: MockScout,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    committed: Committed,
) -> None:
    proxy_page = f"gateway rejected Authorization: Bearer {BEARER} and key {API_KEY}"
    mock_scout.events_faults = [httpx.Response(500, text=proxy_page) for _ in range(5)]
    interaction = deliver(committed, started(committed))
    assert interaction.events_missing
    assert interaction.events_error
    assert_nowhere(
        (BEARER, API_KEY),
        rows(Interaction.objects.all(), CallbackDelivery.objects.all()),
        caplog.text,
        interaction_pages(admin_client, interaction),
    )


# --- secrets inside Scout's own callback -------------------------------------------------------


def test_secrets_in_a_callback_error_message_are_stored_and_shown_masked(
    mock_scout: MockScout,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    committed: Committed,
) -> None:
    error = {"code": "tool_failed", "message": f"tool sent Bearer {BEARER} with {API_KEY}"}
    interaction = deliver(committed, started(committed), status="failed", error=error)
    assert (interaction.status, interaction.error_code) == ("failed", "tool_failed")
    assert interaction.error_message == "tool sent Bearer *** with ***"
    assert_nowhere(
        (BEARER, API_KEY),
        rows(Interaction.objects.all()),
        rows(CallbackDelivery.objects.all(), exclude=("raw_body", "payload")),
        caplog.text,
        interaction_pages(admin_client, interaction),
    )


# --- credentials in callback request headers ---------------------------------------------------


def test_credential_headers_of_a_callback_are_stored_and_shown_masked(
    mock_scout: MockScout,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    committed: Committed,
) -> None:
    secrets = {
        "X-Scout-Token": SCOUT_TOKEN,
        "Authorization": f"Bearer {BEARER}",
        "Cookie": "sessionid=cookie_value_31415",
        "X-Api-Key": API_KEY,
        "X-Partner-Credential": "partner_cred_27182",
    }
    extra = {**secrets, "User-Agent": "Scout/1.0", "X-Request-Id": "req-1"}
    interaction = deliver(committed, started(committed), headers=extra)
    stored = {k.lower(): v for k, v in CallbackDelivery.objects.get().headers.items()}
    assert stored["user-agent"] == "Scout/1.0"
    assert stored["x-request-id"] == "req-1"
    assert stored["x-scout-signature-alg"] == "HMAC-SHA256"
    for name in [*secrets, "X-Scout-Signature"]:
        assert stored[name.lower()] == "***"  # operators still see that it was sent
    assert_nowhere(
        (SCOUT_TOKEN, BEARER, "cookie_value_31415", API_KEY, "partner_cred_27182"),
        rows(CallbackDelivery.objects.all(), Interaction.objects.all()),
        caplog.text,
        interaction_pages(admin_client, interaction),
    )


# --- workflow runs: webhook tokens and Scout's failure messages ---------------------------------

WEBHOOK_TOKEN = "whk_secret_token_1618"


@pytest.fixture
def fake(fake_scout: FakeScout) -> Iterator[FakeScout]:
    """``fake_scout`` (with this module's API key) as the project's Scout."""
    conf = fake_scout.scout_settings(**{**SCOUT, "API_BASE_URL": fake_scout.base_url})
    with override_settings(SCOUT=conf):
        yield fake_scout


@pytest.mark.fake_scout(api_key=API_KEY)
def test_webhook_token_echoed_in_an_error_leaks_nowhere(
    fake: FakeScout, admin_client: Client, caplog: pytest.LogCaptureFixture, committed: Committed
) -> None:
    fake.workflow("wf")
    url = fake.webhook_url("wf", token=WEBHOOK_TOKEN)
    echo = {"detail": f"no trigger at {url}", "token": WEBHOOK_TOKEN}
    fake.fail_next("POST", "/v1/workflows/*", 404, body=echo)
    with committed():
        run = trigger_workflow_webhook(url, {"order": 7})
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_message
    assert_nowhere(
        (WEBHOOK_TOKEN,),
        # webhook_url is the credential itself, kept so the run can be repeated
        rows(WorkflowRun.objects.all(), exclude=("webhook_url",)),
        caplog.text,
        admin_html(admin_client, run),
    )


@pytest.mark.fake_scout(api_key=API_KEY)
@pytest.mark.parametrize("stream", [False, True])
def test_api_key_in_a_workflow_failure_message_is_stored_and_shown_masked(
    fake: FakeScout,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
    committed: Committed,
) -> None:
    message = f"block 2 called the API with {API_KEY} and api_key={BEARER}"
    fake.workflow("wf", WorkflowBehaviour(outcome="failed", error_message=message))
    with committed():
        run = run_workflow("wf", stream=stream)
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "workflow_failed")
    assert "block 2 called the API with ***" in run.error_message
    assert_nowhere(
        (API_KEY, BEARER),
        # raw_response is Scout's answer, stored verbatim like a callback's raw body
        rows(WorkflowRun.objects.all(), exclude=("raw_response",)),
        caplog.text,
        admin_html(admin_client, run),
    )
