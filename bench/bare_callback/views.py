"""The bare callback view: verify the HMAC, parse the body, insert one row, answer JSON."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from django_scout.signing import SIGNATURE_HEADER, SignatureError, verify

from .models import BareCallback


@csrf_exempt
def bare_callback(request: HttpRequest) -> HttpResponse:
    """``POST`` a signed callback; 401 on a bad signature, 200 once stored."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = request.body
    try:
        verify(body, request.headers.get(SIGNATURE_HEADER), settings.SCOUT["SIGNING_SECRET"])
    except SignatureError as exc:
        return JsonResponse({"detail": str(exc)}, status=401)
    event_id = json.loads(body)["callback_event_id"]
    try:
        BareCallback.objects.create(
            event_id=event_id, body=body.decode(), received_at=timezone.now()
        )
    except IntegrityError:
        return JsonResponse({"callback_event_id": event_id, "duplicate": True})
    return JsonResponse({"callback_event_id": event_id, "duplicate": False})
