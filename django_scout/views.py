"""The callback endpoint Scout POSTs completions to, and the live relay's two views.

Callbacks are thin: verify, validate, store, answer. The answer never waits on Scout or on
processing: the delivery is stored (once per ``callback_event_id``) and its processing enqueued
after the commit. The live views hand over to :func:`django_scout.live.respond`.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO, cast
from uuid import UUID

from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from pydantic import ValidationError
from rest_framework import exceptions, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from . import live, services
from .authentication import IsScoutSigned, ScoutSignatureAuthentication
from .client._json_depth import JSONNestingError, check_json_depth
from .client.redaction import redact_headers
from .conf import scout_settings
from .payloads import CallbackPayload

logger = logging.getLogger("django_scout")


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(item) for item in error.get("loc", ())) or "body"
        parts.append(f"{loc}: {error.get('msg')}")
    return "; ".join(parts)


def _bound_unsized_body(request: HttpRequest, limit: int) -> None:
    """Let ``request.body`` read a WSGI body sent without ``Content-Length`` (chunked).

    Django reads a WSGI body only up to ``CONTENT_LENGTH``, so a chunked one reads as empty.
    When the server ends ``wsgi.input`` where the body ends (``wsgi.input_terminated``, e.g.
    gunicorn), ``request.body`` reads it to its end instead, but never more than ``limit + 1``
    bytes: enough to tell an oversized body, never all of an endless one. Other servers' input
    (an unterminated stream could block the read) and ASGI requests (whose body the handler has
    already buffered) are left alone.
    """
    if (
        isinstance(request, WSGIRequest)
        and not request.META.get("CONTENT_LENGTH")
        and request.environ.get("wsgi.input_terminated")
        and not hasattr(request, "_body")
    ):
        request._stream = cast(BinaryIO, LimitedStream(request.environ["wsgi.input"], limit + 1))


class PayloadTooLarge(exceptions.APIException):
    """413 for a callback body over ``MAX_CALLBACK_BODY_BYTES``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(detail=f"callback body exceeds {limit} bytes")


class CallbackView(APIView):
    """``POST`` Scout's completion callback; ``interaction_id`` in the URL names its target."""

    authentication_classes = [ScoutSignatureAuthentication]
    permission_classes = [IsScoutSigned]
    throttle_classes: list[Any] = []
    # The body is read raw (the signature covers its bytes), never through DRF's parsers, and
    # the answer is JSON whatever the host's REST_FRAMEWORK defaults are.
    parser_classes: list[Any] = []
    renderer_classes = [JSONRenderer]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """DRF's dispatch, then the view lets go of its request.

        DRF's request refers to itself and to the view (both in its ``parser_context``), and
        the view to it: left so, each callback would leave a cycle of some twenty objects (the
        view, the request, its authenticator, user and signature, the response) for the
        garbage collector, which then runs more often and promotes more of what it finds to
        the old generations, whose collections pause a worker for tens of milliseconds. Cut
        here, reference counting frees them as the request ends.
        """
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if isinstance(self.request, Request):
                self.request.parser_context = {}
            self.request = self.response = None  # type: ignore[assignment]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        """Answer with the first renderer (JSON) whatever ``Accept`` says: Scout reads JSON."""
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Refuse oversized bodies (413) before reading them for the signature check."""
        limit = scout_settings().MAX_CALLBACK_BODY_BYTES
        _bound_unsized_body(request._request, limit)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge(limit)
        try:
            body_length = len(request._request.body)
        except RequestDataTooBig:
            raise PayloadTooLarge(limit) from None
        if body_length > limit:
            raise PayloadTooLarge(limit)
        super().initial(request, *args, **kwargs)

    def post(self, request: Request, interaction_id: UUID | None = None) -> JsonResponse:
        """Validate and store the callback; 200 for new and repeated deliveries alike.

        Answered with a plain ``JsonResponse``: the answer is always JSON, so DRF's content
        negotiation and rendering would only add cost on the path every callback takes.
        """
        raw: bytes = request._request.body
        try:
            text = raw.decode("utf-8")
            check_json_depth(text)
            payload = CallbackPayload.model_validate_json(text)
        except UnicodeDecodeError:
            return self._bad_request("body is not UTF-8")
        except JSONNestingError as exc:
            return self._bad_request(f"body: JSON {exc}")
        except ValidationError as exc:
            return self._bad_request(_validation_summary(exc))
        try:
            delivery, created = services.record_callback(
                payload, text, redact_headers(request.headers), interaction_id
            )
        except DatabaseError:
            logger.exception("django-scout: could not store callback %s", payload.callback_event_id)
            return JsonResponse(
                {"detail": "could not store the callback; retry later"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return JsonResponse(
            {
                "callback_event_id": delivery.callback_event_id,
                "duplicate": not created,
                "delivery_count": delivery.delivery_count,
            }
        )

    def _bad_request(self, detail: str) -> JsonResponse:
        logger.warning("django-scout: rejected malformed callback: %s", detail)
        return JsonResponse({"detail": f"malformed callback: {detail}"}, status=400)


def _outside_atomic_requests(view: Any) -> Any:
    """Exempt ``view`` from ``ATOMIC_REQUESTS`` on every database: Django refuses it on async
    views, and a stream must not hold a transaction open."""
    from django.conf import settings

    for alias in settings.DATABASES:
        view = transaction.non_atomic_requests(using=alias)(view)
    return view


@_outside_atomic_requests
async def live_interaction(request: HttpRequest, interaction_id: UUID) -> HttpResponseBase:
    """``GET`` an SSE stream of one interaction's status and events (see :mod:`.live`)."""
    return await live.respond(request, live.INTERACTION, interaction_id)


@_outside_atomic_requests
async def live_run(request: HttpRequest, run_id: UUID) -> HttpResponseBase:
    """``GET`` an SSE stream of one workflow run's status and events (see :mod:`.live`)."""
    return await live.respond(request, live.RUN, run_id)
