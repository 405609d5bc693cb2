"""Views of the test project that use django-scout the way a host's views do."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from django_scout.api import astart_interaction


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
