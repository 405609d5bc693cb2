"""DRF authentication for Scout callbacks: the HMAC signature over the raw request body."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .conf import scout_settings
from .signing import ALGORITHM_HEADER, SIGNATURE_HEADER, SignatureError, VerifiedSignature, verify

logger = logging.getLogger("django_scout")


class ScoutCaller:
    """The ``request.user`` of a verified callback: Scout itself, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    username = "scout"

    def __str__(self) -> str:
        return "Scout"


class SignatureNotConfigured(exceptions.APIException):
    """``SIGNING_SECRET`` is unset: answer 503 so Scout retries once it is configured."""

    status_code = 503
    default_detail = "callback signing secret is not configured"
    default_code = "not_configured"


class ScoutSignatureAuthentication(BaseAuthentication):
    """Verify ``X-Scout-Signature`` over the raw body bytes (never re-serialized JSON).

    Failure raises ``AuthenticationFailed`` (401) whose code is the rejection reason:
    ``missing``, ``malformed``, ``unsupported_algorithm``, ``stale`` or ``mismatch``.
    """

    def authenticate(self, request: Request) -> tuple[ScoutCaller, VerifiedSignature]:
        """Return ``(ScoutCaller(), VerifiedSignature)`` or raise ``AuthenticationFailed``."""
        conf = scout_settings()
        if not conf.SIGNING_SECRET:
            logger.error("django-scout: rejecting a callback: SCOUT['SIGNING_SECRET'] is not set")
            raise SignatureNotConfigured()
        raw_body: bytes = request._request.body
        try:
            verified = verify(
                raw_body,
                request.headers.get(SIGNATURE_HEADER),
                conf.SIGNING_SECRET,
                tolerance=conf.SIGNATURE_TOLERANCE,
                algorithm=request.headers.get(ALGORITHM_HEADER),
            )
        except SignatureError as exc:
            logger.warning(
                "django-scout: rejected callback from %s: %s",
                request.META.get("REMOTE_ADDR", "?"),
                exc,
            )
            raise exceptions.AuthenticationFailed(
                detail=f"invalid Scout signature ({exc.reason.value})", code=exc.reason.value
            ) from None
        if verified.secret_index:
            logger.info(
                "django-scout: callback signed with rotated secret #%s", verified.secret_index
            )
        return ScoutCaller(), verified

    def authenticate_header(self, request: Request) -> str:
        """Makes DRF answer 401 (not 403) on failure."""
        return 'Scout-Signature realm="scout-callbacks"'


class IsScoutSigned(BasePermission):
    """Allow only requests whose signature :class:`ScoutSignatureAuthentication` verified."""

    def has_permission(self, request: Request, view: Any) -> bool:
        """True when the request carries a verified Scout signature."""
        return isinstance(request.auth, VerifiedSignature)
