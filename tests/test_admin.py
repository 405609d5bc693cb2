"""The read-only admin: lists, filters, search and detail pages with inlines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_scout.models import (
    CallbackDelivery,
    DeliveryState,
    Interaction,
    InteractionEvent,
    Session,
    WorkflowRun,
    WorkflowRunEvent,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def finished() -> Interaction:
    session = Session.objects.create(session_id="sess_admin_1", agent_id="agent-admin")
    interaction = Interaction.objects.create(
        agent_id="agent-admin",
        session=session,
        status="succeeded",
        messages=[{"content": "hi <script>"}],
        completed_at=timezone.now(),
        event_count=2,
    )
    for i in range(2):
        InteractionEvent.objects.create(
            interaction=interaction, sequence=i, name="message", data={"text": f"event-{i}"}
        )
    CallbackDelivery.objects.create(
        callback_event_id="cb-admin-1",
        interaction=interaction,
        session_id="sess_admin_1",
        status="succeeded",
        payload={"status": "succeeded"},
        raw_body="{}",
        delivery_count=3,
    )
    Interaction.objects.create(agent_id="other-agent", messages=[{"content": "x"}])
    return interaction


def changelist(client: Client, **params: Any) -> str:
    """The result rows of the interaction changelist (not the filter sidebar)."""
    response = client.get("/admin/django_scout/interaction/", params)
    assert response.status_code == 200
    html = response.content.decode()
    if 'id="result_list"' not in html:
        return ""
    return html.split('id="result_list"', 1)[1].split("</table>", 1)[0]


def test_list_shows_status_agent_session_duration(
    staff_client: Client, finished: Interaction
) -> None:
    html = changelist(staff_client)
    assert "sess_admin_1" in html
    assert "agent-admin" in html
    assert "other-agent" in html
    assert "succeeded" in html.lower()
    assert "pending" in html.lower()


@pytest.mark.parametrize("term", ["sess_admin_1", "cb-admin-1", "agent-admin"])
def test_search(staff_client: Client, finished: Interaction, term: str) -> None:
    html = changelist(staff_client, q=term)
    assert "agent-admin" in html
    assert "other-agent" not in html


def test_search_by_uuid_and_garbage(staff_client: Client, finished: Interaction) -> None:
    assert "agent-admin" in changelist(staff_client, q=str(finished.pk))
    assert "other-agent" not in changelist(staff_client, q="not-a-uuid")


def test_filter_by_status(staff_client: Client, finished: Interaction) -> None:
    html = changelist(staff_client, status__exact="pending")
    assert "other-agent" in html
    assert "agent-admin" not in html


def test_detail_is_read_only_with_events_and_deliveries(
    staff_client: Client, finished: Interaction
) -> None:
    response = staff_client.get(f"/admin/django_scout/interaction/{finished.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "event-0" in html
    assert "event-1" in html
    assert "cb-admin-1" in html
    assert "&lt;script&gt;" in html  # messages are escaped
    assert 'name="_save"' not in html
    add = staff_client.get("/admin/django_scout/interaction/add/")
    assert add.status_code == 403


def test_delivery_admin_list_and_search(staff_client: Client, finished: Interaction) -> None:
    response = staff_client.get("/admin/django_scout/callbackdelivery/", {"q": "cb-admin-1"})
    assert response.status_code == 200
    assert "cb-admin-1" in response.content.decode()
    # Search is by exact ids (each an index lookup), not a substring scan.
    partial = staff_client.get("/admin/django_scout/callbackdelivery/", {"q": "cb-admin"})
    assert "cb-admin-1" not in partial.content.decode().split('id="result_list"')[-1]
    delivery = CallbackDelivery.objects.get()
    detail = staff_client.get(f"/admin/django_scout/callbackdelivery/{delivery.pk}/change/")
    assert detail.status_code == 200


@pytest.mark.parametrize("state", [state.value for state in DeliveryState])
def test_delivery_state_filter_lists_that_state_through_the_processed_at_term(
    staff_client: Client, state: str
) -> None:
    for each in DeliveryState:
        CallbackDelivery.objects.create(
            callback_event_id=f"cb-state-{each.value}",
            session_id="sess_state",
            status="succeeded",
            payload={},
            raw_body="{}",
            state=each.value,
            processed_at=None if each == DeliveryState.PENDING else timezone.now(),
        )
    with CaptureQueriesContext(connection) as captured:
        response = staff_client.get(
            "/admin/django_scout/callbackdelivery/", {"state__exact": state}
        )
    assert response.status_code == 200
    rows = response.content.decode().split('id="result_list"', 1)[1].split("</table>", 1)[0]
    assert set(re.findall(r"cb-state-[a-z]+", rows)) == {f"cb-state-{state}"}
    # The term that lets the database read them off the index holding that side.
    term = "IS NULL" if state == DeliveryState.PENDING else "IS NOT NULL"
    listed = [
        query["sql"]
        for query in captured.captured_queries
        if "callbackdelivery" in query["sql"] and "LIMIT" in query["sql"]
    ]
    assert listed
    assert all(f'"processed_at" {term}' in sql for sql in listed), listed


@pytest.fixture
def run_with_events(db: Any) -> WorkflowRun:
    run = WorkflowRun.objects.create(
        kind="webhook",
        workflow_id="wf_admin",
        webhook_url="https://hooks.scoutos.test/v1/workflows/wf_admin/webhook/sEcReT-ToKeN",
        status="succeeded",
        inputs={"webhook_body": {"n": 1}},
        completed_at=timezone.now(),
    )
    for i, name in enumerate(["workflow_run_started", "workflow_run_completed"]):
        WorkflowRunEvent.objects.create(run=run, sequence=i, name=name, data={"i": i})
    return run


def test_workflow_run_list_and_detail_mask_the_webhook_token(
    staff_client: Client, run_with_events: WorkflowRun
) -> None:
    listing = staff_client.get("/admin/django_scout/workflowrun/").content.decode()
    detail = staff_client.get(
        f"/admin/django_scout/workflowrun/{run_with_events.pk}/change/"
    ).content.decode()
    for html in (listing, detail):
        assert "sEcReT-ToKeN" not in html
        assert "webhook/***" in html
    assert detail.index("workflow_run_started") < detail.index("workflow_run_completed")
    assert "Re-run" in detail


def test_rerun_button_starts_a_new_run(
    staff_client: Client, run_with_events: WorkflowRun, fake_scout: Any
) -> None:
    from django.test import override_settings

    fake_scout.workflow("wf_admin")
    url = fake_scout.webhook_url("wf_admin")
    WorkflowRun.objects.filter(pk=run_with_events.pk).update(webhook_url=url)
    with override_settings(SCOUT=fake_scout.scout_settings()):
        response = staff_client.post(f"/admin/django_scout/workflowrun/{run_with_events.pk}/rerun/")
    assert response.status_code == 302
    new_run = WorkflowRun.objects.exclude(pk=run_with_events.pk).get()
    assert response["Location"].endswith(f"/{new_run.pk}/change/")
    assert new_run.rerun_of_id == run_with_events.pk
    assert new_run.webhook_url == url
    assert (
        staff_client.get(f"/admin/django_scout/workflowrun/{run_with_events.pk}/rerun/").status_code
        == 405
    )


def test_rerun_needs_permission(run_with_events: WorkflowRun) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_workflowrun"))
    client = Client()
    client.force_login(user)
    detail = client.get(f"/admin/django_scout/workflowrun/{run_with_events.pk}/change/")
    assert detail.status_code == 200
    assert "/rerun/" not in detail.content.decode()
    response = client.post(f"/admin/django_scout/workflowrun/{run_with_events.pk}/rerun/")
    assert response.status_code == 403
    assert WorkflowRun.objects.count() == 1


def test_fetch_events_action_enqueues_for_interactions_with_an_events_url(
    staff_client: Client, finished: Interaction, django_capture_on_commit_callbacks: Any
) -> None:
    from unittest import mock

    from django_scout import tasks

    Interaction.objects.filter(pk=finished.pk).update(events_url="https://api.scoutos.test/e")
    with (
        mock.patch.object(tasks.fetch_events_task, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_client.post(
            "/admin/django_scout/interaction/",
            {
                "action": "fetch_events_selected",
                "_selected_action": [
                    str(pk) for pk in Interaction.objects.values_list("pk", flat=True)
                ],
            },
            follow=True,
        )
    assert response.status_code == 200
    assert "1 without an events URL skipped" in response.content.decode()
    apply_async.assert_called_once_with(args=(str(finished.pk),), retry=False)


# --- operator actions and links ----------------------------------------------------------


def test_reconcile_now_button_runs_reconcile_and_reports(staff_client: Client) -> None:
    from unittest import mock

    url = "/admin/django_scout/interaction/reconcile/"
    listing = staff_client.get("/admin/django_scout/interaction/").content.decode()
    assert url in listing
    assert staff_client.get(url).status_code == 405
    with mock.patch(
        "django_scout.services.reconcile", wraps=__import__("django_scout").services.reconcile
    ) as run:
        response = staff_client.post(url, follow=True)
    assert run.call_count == 1
    assert "Reconciled: 0 start(s)" in response.content.decode()


def test_reconcile_now_needs_permission() -> None:
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_interaction"))
    client = Client()
    client.force_login(user)
    listing = client.get("/admin/django_scout/interaction/").content.decode()
    assert "/reconcile/" not in listing
    assert client.post("/admin/django_scout/interaction/reconcile/").status_code == 403


def test_retry_failed_start_action_starts_a_new_interaction(
    staff_client: Client, finished: Interaction, django_capture_on_commit_callbacks: Any
) -> None:
    from unittest import mock

    refused = Interaction.objects.create(
        agent_id="agent-refused",
        messages=[{"content": "again"}],
        status="failed",
        error_code="not_found",
        tags=["t1"],
    )
    with (
        mock.patch("django_scout.services.publishing.TaskPublisher.publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_client.post(
            "/admin/django_scout/interaction/",
            {"action": "retry_start_selected", "_selected_action": [refused.pk, finished.pk]},
            follow=True,
        )
    html = response.content.decode()
    assert "Started 1 interaction(s) again; 1 skipped (only failed starts are retried)" in html
    copy = Interaction.objects.get(agent_id="agent-refused", status="pending")
    assert (copy.messages, copy.tags) == ([{"content": "again"}], ["t1"])
    assert publish.call_count == 1


def test_reprocess_action_puts_an_abandoned_delivery_back(
    staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from unittest import mock

    abandoned = CallbackDelivery.objects.create(
        callback_event_id="cb-abandoned",
        session_id="sess_nobody",
        status="succeeded",
        payload={},
        raw_body="{}",
        state="abandoned",
        processed_at=timezone.now(),
        processing_error="abandoned: not processed within CALLBACK_DEADLINE",
    )
    with (
        mock.patch("django_scout.services.publishing.TaskPublisher.publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_client.post(
            "/admin/django_scout/callbackdelivery/",
            {"action": "reprocess_selected", "_selected_action": [abandoned.pk]},
            follow=True,
        )
    assert "Processing 1 callback(s) again." in response.content.decode()
    abandoned.refresh_from_db()
    assert (abandoned.state, abandoned.processed_at) == ("pending", None)
    assert publish.call_count == 1


def test_pages_link_session_interaction_delivery_and_events(
    staff_client: Client, finished: Interaction
) -> None:
    delivery = CallbackDelivery.objects.get()
    interaction_page = staff_client.get(
        f"/admin/django_scout/interaction/{finished.pk}/change/"
    ).content.decode()
    assert "/admin/django_scout/session/sess_5Fadmin_5F1/change/" in interaction_page
    assert f"/admin/django_scout/callbackdelivery/{delivery.pk}/change/" in interaction_page
    assert f"/admin/django_scout/interactionevent/?interaction={finished.pk}" in interaction_page
    delivery_page = staff_client.get(
        f"/admin/django_scout/callbackdelivery/{delivery.pk}/change/"
    ).content.decode()
    assert f"/admin/django_scout/interaction/{finished.pk}/change/" in delivery_page
    session_page = staff_client.get(
        "/admin/django_scout/session/sess_5Fadmin_5F1/change/"
    ).content.decode()
    assert f"/admin/django_scout/interaction/{finished.pk}/change/" in session_page
    assert "/admin/django_scout/interaction/?session=sess_admin_1" in session_page


def test_error_panel_only_when_something_failed(
    staff_client: Client, finished: Interaction
) -> None:
    ok = staff_client.get(f"/admin/django_scout/interaction/{finished.pk}/change/").content.decode()
    assert "scout-panel" not in ok
    assert "events missing" not in ok
    Interaction.objects.filter(pk=finished.pk).update(
        status="failed", error_code="scout_failed", error_message="the agent crashed"
    )
    failed = staff_client.get(
        f"/admin/django_scout/interaction/{finished.pk}/change/"
    ).content.decode()
    assert 'class="scout-panel scout-panel--error" role="alert"' in failed
    assert "the agent crashed" in failed


@pytest.mark.parametrize("model", [Interaction, WorkflowRun])
def test_a_streamed_rows_detail_shows_its_last_stream_progress(
    staff_client: Client, model: Any
) -> None:
    progress = timezone.now().replace(microsecond=0)
    if model is Interaction:
        row: Any = Interaction.objects.create(
            agent_id="agent", messages=[{"content": "x"}], status="accepted", stream=True
        )
    else:
        row = WorkflowRun.objects.create(workflow_id="wf", status="running", stream=True)
    model.objects.filter(pk=row.pk).update(stream_progress_at=progress)
    name = model._meta.model_name
    page = staff_client.get(f"/admin/django_scout/{name}/{row.pk}/change/").content.decode()
    assert "last stream progress" in page.lower()
    assert timezone.localtime(progress).strftime("%Y-%m-%d %H:%M:%S") in page
