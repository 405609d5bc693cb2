"""Views of the test project that use django-scout the way a host's views do."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from django_scout.api import astart_interaction
from django_scout.models import Interaction, WorkflowRun


async def start_interaction_view(request: HttpRequest) -> JsonResponse:
    """Start an interaction from an async view (``?agent=...&message=...``).

    A synchronous database call here would raise ``SynchronousOnlyOperation`` under ASGI, so
    this view answering at all shows that :func:`~django_scout.api.astart_interaction` is safe
    to await from async code.
    """
    try:
        interaction = await astart_interaction(
            request.GET.get("agent", ""), request.GET.get("message", "")
        )
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"id": str(interaction.pk), "status": interaction.status})


def live_widget_view(request: HttpRequest, kind: str, pk: UUID) -> HttpResponse:
    """A host page showing ``{% scout_live %}`` for one interaction or run (404 otherwise);
    ``?limit=`` is the tag's ``events``."""
    model = Interaction if kind == "interaction" else WorkflowRun
    obj = get_object_or_404(model, pk=pk)
    limit = int(request.GET.get("limit", "50"))
    return render(request, "testapp/live_widget.html", {"obj": obj, "limit": limit})
