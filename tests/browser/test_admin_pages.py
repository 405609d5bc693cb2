"""The admin in real headless Chromium: log in, every page, a filter, a search, actions, links.

Each page is checked for what a person reads on it and saved as a full-page screenshot under
a stable name (``<model>-changelist.png``, ``<model>-change.png``, ...).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.utils import quote

from django_scout.models import WorkflowRun
from tests.browser.pages import AdminBrowser, ChangeList, ChangePage, LoginPage
from tests.browser.seed import ADMIN_PASSWORD, ADMIN_USERNAME, ROUTER, AdminData


def test_login_form(anonymous_admin: AdminBrowser, admin_credentials: tuple[str, str]) -> None:
    admin = anonymous_admin
    admin.open("admin:index")
    assert admin.path == "/admin/login/"  # the admin sends anonymous visitors to log in
    assert admin.is_styled(), "the admin's stylesheet did not apply"
    login = LoginPage(admin)
    login.fill(ADMIN_USERNAME, "")
    admin.screenshot("login")
    login.fill(ADMIN_USERNAME, "wrong password")
    admin.navigate(lambda: admin.page.click("#login-form [type=submit]"))
    assert "correct username and password" in login.error()
    admin.screenshot("login-error")
    login.log_in(ADMIN_USERNAME, ADMIN_PASSWORD)
    assert admin.path == "/admin/"
    assert "Site administration" in admin.text()


def test_admin_index_and_app_index(admin: AdminBrowser, admin_data: AdminData) -> None:
    assert admin.is_styled()
    models = admin.page.locator("#content-main .app-django_scout")
    for name in ("Callback deliveries", "Interactions", "Sessions", "Workflow runs"):
        assert models.get_by_role("link", name=name, exact=True).count() == 1, name
    admin.screenshot("index")
    admin.navigate(models.get_by_role("link", name="Scout", exact=True).click)
    assert admin.path == "/admin/django_scout/"
    assert admin.heading() == "Scout administration"
    admin.screenshot("app-index")


CHANGELISTS: dict[str, tuple[str, list[str]]] = {
    # model name: (heading, texts the list must show)
    "interaction": (
        "Select interaction to view",
        ["pending", "accepted", "succeeded", "failed", "sess_done_19c2", "tool_error", "12.4 s"],
    ),
    "callbackdelivery": (
        "Select callback delivery to view",
        ["cb_done_0001", "cb_done_0002", "cb_stray_0001", "abandoned", "processed"],
    ),
    "session": (
        "Select session to view",
        ["sess_done_19c2", "sess_failed_5be0", "agent_crm_lookup"],
    ),
    "workflowrun": (
        "Select workflow run to view",
        [ROUTER, "wf_escalation", "workflow_error", "webhook trigger", "streamed", "2.2 s"],
    ),
}


@pytest.mark.parametrize("model_name", list(CHANGELISTS))
def test_changelist(admin: AdminBrowser, admin_data: AdminData, model_name: str) -> None:
    heading, texts = CHANGELISTS[model_name]
    changelist = ChangeList(admin, model_name).open()
    assert admin.heading() == heading
    assert changelist.result_count() > 0
    shown = "\n".join(changelist.row_texts())
    for text in texts:
        assert text in shown, f"{text!r} not in the {model_name} list"
    assert "sEcReT-ToKeN" not in admin.text()
    admin.screenshot(f"{model_name}-changelist")


def _change_pages(data: AdminData) -> dict[str, tuple[Any, list[str]]]:
    return {
        # model name: (object, texts its page must show)
        "interaction": (
            data.succeeded,
            ["Request", "Events", "Timing", "Refund issued on 3 Nov", "cb_done_0002", "gold"],
        ),
        "callbackdelivery": (
            data.duplicate_delivery,
            ["cb_done_0002", "processed", "sess_done_19c2", "content-type"],
        ),
        "session": (data.session, ["sess_done_19c2", "agent_support_triage"]),
        "workflowrun": (
            data.failed_run,
            ["wf_escalation", "workflow_error", "Block 'classify' raised KeyError", "Re-run"],
        ),
    }


@pytest.mark.parametrize("model_name", list(CHANGELISTS))
def test_change_page(admin: AdminBrowser, admin_data: AdminData, model_name: str) -> None:
    obj, texts = _change_pages(admin_data)[model_name]
    page = ChangePage(admin, model_name).open(obj.pk)
    assert page.is_read_only()
    page.expand_collapsed()
    shown = admin.text()
    for text in texts:
        assert text in shown, f"{text!r} not on the {model_name} page"
    admin.screenshot(f"{model_name}-change")


def test_interaction_events_and_deliveries_inlines(
    admin: AdminBrowser, admin_data: AdminData
) -> None:
    page = ChangePage(admin, "interaction").open(admin_data.succeeded.pk)
    assert page.field("status_display") == "succeeded"
    assert page.field("duration_display") == "12.4 s"
    assert "TKT-4821" in page.field("subject_display")
    deliveries = page.inline_rows("deliveries")
    assert len(deliveries) == 2
    events = page.timeline_rows("events_display")
    assert len(events) == 5
    assert "interaction_started" in events[0]
    assert "interaction_completed" in events[-1]
    admin.navigate(page.page.get_by_role("link", name="all events →").click)
    assert admin.path == "/admin/django_scout/interactionevent/"
    assert len(ChangeList(admin, "interactionevent").column("name")) == 5


def test_filter_interactions_by_status(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "interaction").open().filter("status", "Failed")
    assert "status__exact=failed" in admin.query
    assert changelist.column("status_display") == ["failed"]
    assert changelist.column("error_code") == ["tool_error"]
    admin.screenshot("interaction-changelist-failed")


def test_filter_deliveries_by_state(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "callbackdelivery").open()
    changelist.filter("processing state", "abandoned")
    assert changelist.column("callback_event_id") == ["cb_stray_0001"]


def test_filter_runs_by_status(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "workflowrun").open().filter("status", "Failed")
    assert changelist.column("target_short") == ["wf_escalation"]
    assert changelist.column("error_code") == ["workflow_error"]


def test_search_interaction_by_id(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "interaction").open()
    changelist.search(str(admin_data.failed.pk))
    assert changelist.result_count() == 1
    assert changelist.column("short_id") == [str(admin_data.failed.pk)[:8] + "…"]
    assert "1 result" in admin.text()
    changelist.search("cb_done_0002")  # a callback id finds its interaction
    assert changelist.column("short_id") == [str(admin_data.succeeded.pk)[:8] + "…"]
    changelist.search("no-such-thing")
    assert changelist.result_count() == 0


def test_search_deliveries_by_session(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "callbackdelivery").open().search("sess_done_19c2")
    assert sorted(changelist.column("callback_event_id")) == ["cb_done_0001", "cb_done_0002"]


def test_fetch_events_action(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "interaction").open()
    changelist.select(str(admin_data.pending.pk)[:8])
    messages = changelist.run_action("Fetch the selected interactions' events again")
    assert messages == ["Fetching events for 0 interaction(s) (1 without an events URL skipped)."]
    admin.screenshot("interaction-action-message")


def test_rerun_action_starts_the_run_again(
    admin: AdminBrowser, admin_data: AdminData, fake_scout: Any, fake_scout_settings: Any
) -> None:
    fake_scout.workflow("wf_escalation")
    changelist = ChangeList(admin, "workflowrun").open().filter("status", "Failed")
    changelist.select("wf_escalation")
    assert changelist.run_action("Re-run the selected runs") == ["Started 1 run(s) again."]
    new_run = WorkflowRun.objects.exclude(rerun_of=None).exclude(pk=admin_data.rerun.pk).get()
    assert new_run.rerun_of_id == admin_data.failed_run.pk
    assert new_run.status == "succeeded"  # Celery runs eagerly here, against the fake Scout
    changelist.open()
    assert changelist.column("target_short").count("wf_escalation") == 3


def test_rerun_button_opens_the_new_run(
    admin: AdminBrowser, admin_data: AdminData, fake_scout: Any, fake_scout_settings: Any
) -> None:
    fake_scout.workflow(ROUTER)
    page = ChangePage(admin, "workflowrun").open(admin_data.run.pk)
    admin.navigate(admin.page.get_by_role("button", name="Re-run").click)
    assert admin.messages() == [f"Started {ROUTER} again."]
    new_run = WorkflowRun.objects.get(rerun_of=admin_data.run)
    assert admin.path == f"/admin/django_scout/workflowrun/{new_run.pk}/change/"
    assert page.field("status_display") == "succeeded"
    original = page.follow_field("rerun_of_display", "workflowrun")
    assert admin.path == f"/admin/django_scout/workflowrun/{admin_data.run.pk}/change/"
    assert original.field("scout_run_id") == "run_plain_3d1e"


def test_links_between_deliveries_interactions_and_sessions(
    admin: AdminBrowser, admin_data: AdminData
) -> None:
    changelist = ChangeList(admin, "callbackdelivery").open()
    delivery = changelist.open_row("cb_done_0002")
    assert delivery.field("delivery_count") == "3"
    interaction = delivery.follow_field("interaction_display", "interaction")
    assert admin.path == f"/admin/django_scout/interaction/{admin_data.succeeded.pk}/change/"
    session = interaction.follow_field("session_display", "session")
    assert admin.path == f"/admin/django_scout/session/{quote('sess_done_19c2')}/change/"
    assert session.field("agent_id") == "agent_support_triage"
    admin.page.go_back()
    admin.navigate(interaction.inline("deliveries").get_by_role("link", name="cb_done_0001").click)
    assert admin.path.startswith("/admin/django_scout/callbackdelivery/")
    admin.navigate(admin.page.locator(".breadcrumbs").get_by_role("link", name="Scout").click)
    assert admin.path == "/admin/django_scout/"


def test_stray_delivery_page(admin: AdminBrowser, admin_data: AdminData) -> None:
    page = ChangePage(admin, "callbackdelivery").open(admin_data.stray_delivery.pk)
    assert page.field("state_display") == "abandoned"
    assert page.field("interaction_display") == "—"
    assert "no interaction has session sess_unknown_0000" in page.field("error_display")
    admin.screenshot("callbackdelivery-change-stray")


def test_dashboard(admin: AdminBrowser, admin_data: AdminData) -> None:
    admin.open("admin:app_list", "django_scout")
    admin.navigate(admin.page.get_by_role("link", name="Dashboard").first.click)
    assert admin.path == "/admin/django_scout/interaction/dashboard/"
    assert admin.page.locator("svg").count() >= 1
    shown = admin.text()
    for text in ("agent_support_triage", "wf_escalation", "reconcile"):
        assert text in shown, f"{text!r} not on the dashboard"
    admin.screenshot("dashboard")


def test_reconcile_now_button(admin: AdminBrowser, admin_data: AdminData) -> None:
    from unittest import mock

    ChangeList(admin, "interaction").open()
    # What reconcile enqueues would call Scout; only the button and its report are tested.
    with mock.patch("django_scout.services.publishing.TaskPublisher.publish", return_value=True):
        admin.navigate(admin.page.get_by_role("button", name="Reconcile now").click)
    (message,) = admin.messages()
    assert message.startswith("Reconciled: ")
    assert admin.path == "/admin/django_scout/interaction/"


def test_reprocess_an_abandoned_callback(admin: AdminBrowser, admin_data: AdminData) -> None:
    changelist = ChangeList(admin, "callbackdelivery").open()
    changelist.filter("processing state", "abandoned").select("cb_stray_0001")
    messages = changelist.run_action("Process the selected failed or abandoned callbacks again")
    assert messages == ["Processing 1 callback(s) again."]
    changelist.open(state__exact="pending")
    assert changelist.column("callback_event_id") == ["cb_stray_0001"]


def test_event_list_of_one_interaction(admin: AdminBrowser, admin_data: AdminData) -> None:
    events = ChangeList(admin, "interactionevent").open(interaction=str(admin_data.succeeded.pk))
    assert len(events.column("name")) == 5
    admin.screenshot("interactionevent-changelist")
