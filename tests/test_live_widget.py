"""``{% scout_live obj %}`` rendered on the server: who sees what, the bound on events, escaping,
the live URL and resume point the script starts from, runs as well as interactions.

The script itself (``live.js``) is exercised in Chromium by ``tests/browser/test_live_widget.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.urls import reverse

from django_scout.client.streams import SessionEvent
from django_scout.models import Interaction, WorkflowRun, WorkflowRunEvent
from django_scout.services import accept_interaction, complete_interaction, store_events
from django_scout.templatetags.scout_live import SUMMARY_LENGTH, event_summary
from tests.helpers import UNIT_SCOUT

pytestmark = pytest.mark.django_db


def render(source: str, **context: Any) -> str:
    return Template("{% load scout_live %}" + source).render(Context(context))


def staff_request() -> Any:
    request = RequestFactory().get("/ticket/")
    request.user = User(username="op", is_staff=True, is_active=True)
    return request


def anonymous_request() -> Any:
    request = RequestFactory().get("/ticket/")
    request.user = AnonymousUser()
    return request


def accepted(events: int = 0, data: Any = None) -> Interaction:
    interaction = Interaction.objects.create(agent_id="a1", messages=[{"content": "x"}])
    accept_interaction(interaction.pk, f"sess-{interaction.pk}", "")
    store_events(
        interaction,
        [
            SessionEvent(n, f"step{n}", data or {"text": f"text {n}"}, None, None)
            for n in range(events)
        ],
    )
    interaction.refresh_from_db()
    return interaction


def timeline(html: str) -> list[str]:
    return re.findall(r'<li class="scout-live__event" data-sequence="(\d+)"', html)


def test_staff_see_status_events_and_the_live_url() -> None:
    interaction = accepted(events=3)
    html = render("{% scout_live obj %}", obj=interaction, request=staff_request())
    url = reverse("django_scout:live-interaction", kwargs={"interaction_id": interaction.pk})
    assert f'data-scout-live-url="{url}"' in html
    assert 'data-scout-live-last-event-id="2"' in html  # the script resumes after it
    assert 'role="status" data-scout-live-badge>accepted<' in html
    assert 'aria-live="polite"' in html
    assert timeline(html) == ["0", "1", "2"]
    assert "text 2" in html
    assert "django_scout/live.js" in html
    assert "django_scout/live.css" in html
    assert "<script>" not in html  # no inline script: the page's CSP may forbid it
    assert 'href="">' in html  # the no-JS reload link


def test_a_viewer_the_hook_refuses_gets_the_status_alone() -> None:
    interaction = accepted(events=3)
    for context in ({"request": anonymous_request()}, {}):
        html = render("{% scout_live obj %}", obj=interaction, **context)
        assert ">accepted<" in html
        assert "data-scout-live-url" not in html
        assert timeline(html) == []
        assert "text 0" not in html


def test_the_permission_hook_decides(settings: Any) -> None:
    settings.SCOUT = {**UNIT_SCOUT, "LIVE_PERMISSION": "tests.testapp.live.record_and_allow"}
    from tests.testapp.live import CALLS

    CALLS.clear()
    interaction = accepted(events=1)
    request = anonymous_request()
    html = render("{% scout_live obj %}", obj=interaction, request=request)
    assert timeline(html) == ["0"]
    assert [(request, interaction)] == CALLS


def test_only_the_last_events_are_rendered() -> None:
    interaction = accepted(events=8)
    html = render("{% scout_live obj events=3 %}", obj=interaction, request=staff_request())
    assert timeline(html) == ["5", "6", "7"]
    assert 'data-scout-live-limit="3"' in html
    assert 'data-scout-live-last-event-id="7"' in html


def test_event_data_are_escaped() -> None:
    hostile = "<script>alert(1)</script><b>bold</b>"
    interaction = accepted(events=1, data={"text": hostile})
    html = render("{% scout_live obj %}", obj=interaction, request=staff_request())
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_terminal_row_shows_its_outcome_and_no_live_url() -> None:
    interaction = accepted(events=2)
    complete_interaction(
        interaction.pk, "failed", error_code="tool_error", error_message="secret detail"
    )
    html = render("{% scout_live obj %}", obj=interaction, request=staff_request())
    assert "data-scout-live-url" not in html
    assert "data-scout-live-note" not in html
    assert re.search(r"data-scout-live-outcome>.*failed.*tool_error", html, re.S)
    assert "secret detail" not in html  # error messages stay in the host's own views
    assert timeline(html) == ["0", "1"]


def test_a_workflow_run() -> None:
    run = WorkflowRun.objects.create(workflow_id="wf", environment="production", status="running")
    WorkflowRunEvent.objects.create(run=run, sequence=0, name="block_started", data={"x": 1})
    html = render("{% scout_live obj %}", obj=run, request=staff_request())
    url = reverse("django_scout:live-run", kwargs={"run_id": run.pk})
    assert f'data-scout-live-url="{url}"' in html
    assert "Workflow run" in html
    assert timeline(html) == ["0"]
    assert '{"x":1}' in html.replace("&quot;", '"')


def test_assets_false_and_the_assets_tag() -> None:
    interaction = accepted()
    html = render("{% scout_live obj assets=False %}", obj=interaction, request=staff_request())
    assert "live.js" not in html
    assets = render("{% scout_live_assets %}")
    assert "django_scout/live.js" in assets
    assert "defer" in assets
    assert "django_scout/live.css" in assets


def test_none_renders_nothing_and_other_objects_are_refused() -> None:
    assert render("{% scout_live obj %}", obj=None, request=staff_request()) == ""
    with pytest.raises(TypeError, match="Interaction or a WorkflowRun"):
        render("{% scout_live obj %}", obj=User(), request=staff_request())


@pytest.mark.parametrize(
    ("data", "summary"),
    [
        ({"text": "  hello "}, "hello"),
        ({"data": {"message": "nested"}}, "nested"),
        ({"data": {"text": ""}, "n": 1}, '{"data":{"text":""},"n":1}'),
        ("plain", "plain"),
        (None, ""),
        ([1, "é"], '[1,"é"]'),
        ({"text": "x" * 500}, "x" * (SUMMARY_LENGTH - 1) + "…"),
    ],
)
def test_event_summary(data: Any, summary: str) -> None:
    assert event_summary(data) == summary


@override_settings(SCOUT={**UNIT_SCOUT, "LIVE_PERMISSION": "tests.testapp.live.deny"})
def test_staff_refused_by_the_hook_get_no_events() -> None:
    html = render("{% scout_live obj %}", obj=accepted(events=1), request=staff_request())
    assert timeline(html) == []
    assert "data-scout-live-url" not in html
