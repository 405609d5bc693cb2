"""Sign and verify Scout callback signatures.

Scout signs every callback with ``X-Scout-Signature: t=<unix seconds>,sig=<base64>``, where
``sig`` is the standard-alphabet base64 of HMAC-SHA256 over ``{t}.{raw body}`` keyed with the
organisation's secret (its UTF-8 bytes). ``X-Scout-Signature-Alg: HMAC-SHA256`` names the scheme.

This module has no Django dependency. :func:`verify` raises :class:`SignatureError` whose
:attr:`~SignatureError.reason` tells the five kinds of rejection apart.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALGORITHM",
    "ALGORITHM_HEADER",
    "SIGNATURE_HEADER",
    "SignatureError",
    "SignatureFailure",
    "VerifiedSignature",
    "compute_signature",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Scout-Signature"
ALGORITHM_HEADER = "X-Scout-Signature-Alg"
ALGORITHM = "HMAC-SHA256"

_MAX_HEADER_LENGTH = 4096


class SignatureFailure(str, enum.Enum):
    """Why a signature was rejected."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    STALE = "stale"
    MISMATCH = "mismatch"


class SignatureError(Exception):
    """A callback signature was rejected; :attr:`reason` says why."""

    def __init__(self, reason: SignatureFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedSignature:
    """The outcome of a successful :func:`verify`.

    ``secret_index`` is the position of the secret that matched (0 = the current secret;
    a higher number means a secret kept only for rotation).
    """

    timestamp: int
    secret_index: int


def compute_signature(body: bytes, secret: str, timestamp: int) -> str:
    """Return the base64 HMAC-SHA256 of ``{timestamp}.{body}`` keyed with ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return the ``X-Scout-Signature`` header value for ``body``.

    ``timestamp`` defaults to now (Unix seconds).
    """
    if not secret:
        raise ValueError("a non-empty signing secret is required")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},sig={compute_signature(body, secret, ts)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    if len(header) > _MAX_HEADER_LENGTH:
        raise SignatureError(SignatureFailure.MALFORMED, "signature header is too long")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise SignatureError(
                SignatureFailure.MALFORMED, f"signature header part {part[:20]!r} has no '='"
            )
        key, value = key.strip().lower(), value.strip()
        if key == "t":
            if timestamp is not None:
                raise SignatureError(SignatureFailure.MALFORMED, "more than one t= in the header")
            timestamp = value
        elif key == "sig":
            signatures.append(value)
        # Unknown parts are ignored so Scout can add fields without breaking verification.
    if timestamp is None:
        raise SignatureError(SignatureFailure.MALFORMED, "signature header has no t= timestamp")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(
            SignatureFailure.MALFORMED, "t= must be a whole number of Unix seconds"
        )
    if not signatures or not all(signatures):
        raise SignatureError(SignatureFailure.MALFORMED, "signature header has no sig= value")
    for value in signatures:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(SignatureFailure.MALFORMED, "sig= is not base64") from None
    return int(timestamp), signatures


def verify(
    body: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
    algorithm: str | None = None,
) -> VerifiedSignature:
    """Check a callback's signature over its raw ``body`` bytes.

    ``header`` is the ``X-Scout-Signature`` value (``None`` if absent); ``secrets`` is one secret
    or several (the first is current, the rest are accepted during rotation); ``tolerance`` is
    how many seconds ``t=`` may lie before or after ``now``; ``algorithm`` is the
    ``X-Scout-Signature-Alg`` value when the request carried one.

    Returns a :class:`VerifiedSignature`; raises :class:`SignatureError` otherwise. Every ``sig=``
    part in the header is tried against every secret in constant time.
    """
    secret_list = [secrets] if isinstance(secrets, str) else list(secrets)
    if not secret_list or not all(secret_list):
        raise ValueError("at least one non-empty signing secret is required")
    if header is None or not header.strip():
        raise SignatureError(SignatureFailure.MISSING, f"no {SIGNATURE_HEADER} header")
    if algorithm is not None and algorithm.strip().upper() != ALGORITHM:
        raise SignatureError(
            SignatureFailure.UNSUPPORTED_ALGORITHM,
            f"{ALGORITHM_HEADER} is {algorithm.strip()[:40]!r}, expected {ALGORITHM!r}",
        )
    timestamp, provided = _parse_header(header)
    current = time.time() if now is None else now
    skew = timestamp - current
    if abs(skew) > tolerance:
        direction = "in the future" if skew > 0 else "old"
        raise SignatureError(
            SignatureFailure.STALE,
            f"timestamp is {abs(int(skew))}s {direction}; tolerance is {tolerance}s",
        )
    matched: int | None = None
    for index, secret in enumerate(secret_list):
        expected = compute_signature(body, secret, timestamp).encode("ascii")
        for candidate in provided:
            # Compare every pair so timing does not reveal which secret or part matched.
            equal = hmac.compare_digest(expected, candidate.encode("ascii"))
            if equal and matched is None:
                matched = index
    if matched is None:
        raise SignatureError(SignatureFailure.MISMATCH, "signature does not match the body")
    return VerifiedSignature(timestamp=timestamp, secret_index=matched)
