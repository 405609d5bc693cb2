"""Callback signatures: the seed's recipe, tolerance, rotation and each rejection reason."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from django_scout.signing import (
    SignatureError,
    SignatureFailure,
    compute_signature,
    sign,
    verify,
)

SECRET = "org-secret-key"
BODY = b'{"callback_event_id":"2b2f5b7d","session_id":"sess_abc123","status":"succeeded"}'
NOW = 1_709_651_400


def seed_recipe(raw_body: bytes, timestamp: int, secret: str) -> str:
    """The verification recipe of Scout's async-interactions guide, written out independently
    of our module."""
    signed_string = f"{timestamp}.{raw_body.decode('utf-8')}"
    digest = hmac.new(secret.encode("utf-8"), signed_string.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("utf-8")


def header_for(body: bytes = BODY, timestamp: int = NOW, secret: str = SECRET) -> str:
    return f"t={timestamp},sig={seed_recipe(body, timestamp, secret)}"


def reason_of(exc_info: pytest.ExceptionInfo[SignatureError]) -> SignatureFailure:
    return exc_info.value.reason


def test_vector_from_seed_recipe_verifies() -> None:
    result = verify(BODY, header_for(), SECRET, now=NOW)
    assert result.timestamp == NOW
    assert result.secret_index == 0


def test_sign_matches_seed_recipe_byte_for_byte() -> None:
    assert sign(BODY, SECRET, NOW) == header_for()
    assert compute_signature(BODY, SECRET, NOW) == seed_recipe(BODY, NOW, SECRET)


def test_non_ascii_body_signed_over_raw_bytes() -> None:
    body = '{"text":"naïve \u2013 ✓"}'.encode()
    assert verify(body, header_for(body), SECRET, now=NOW).timestamp == NOW


def test_reserialized_json_does_not_verify() -> None:
    reserialized = (
        b'{"callback_event_id": "2b2f5b7d", "session_id": "sess_abc123", "status": "succeeded"}'
    )
    with pytest.raises(SignatureError) as exc_info:
        verify(reserialized, header_for(), SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MISMATCH


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header, SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MISSING


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "sig=abc=",
        f"t={NOW}",
        f"t={NOW},sig=",
        f"t=soon,sig={seed_recipe(BODY, NOW, SECRET)}",
        f"t=-5,sig={seed_recipe(BODY, NOW, SECRET)}",
        f"t={NOW},sig=not base64!!",
        f"t={NOW},t={NOW},sig={seed_recipe(BODY, NOW, SECRET)}",
        "t=" + "1" * 5000,
    ],
)
def test_malformed_header(header: str) -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header, SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MALFORMED


def test_header_whitespace_case_and_extra_parts_tolerated() -> None:
    sig = seed_recipe(BODY, NOW, SECRET)
    assert verify(BODY, f" t={NOW} , v=2,  SIG={sig} ", SECRET, now=NOW).timestamp == NOW


def test_unsupported_algorithm() -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header_for(), SECRET, now=NOW, algorithm="HMAC-SHA1")
    assert reason_of(exc_info) is SignatureFailure.UNSUPPORTED_ALGORITHM


def test_algorithm_header_case_insensitive() -> None:
    assert verify(BODY, header_for(), SECRET, now=NOW, algorithm="hmac-sha256").secret_index == 0


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 10**6])
def test_stale_both_directions(offset: int) -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header_for(timestamp=NOW + offset), SECRET, now=NOW, tolerance=300)
    assert reason_of(exc_info) is SignatureFailure.STALE
    assert ("future" in str(exc_info.value)) is (offset > 0)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_within_tolerance(offset: int) -> None:
    ts = NOW + offset
    assert verify(BODY, header_for(timestamp=ts), SECRET, now=NOW, tolerance=300).timestamp == ts


def test_stale_checked_before_mismatch_so_replays_are_named() -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header_for(timestamp=NOW - 3600, secret="other"), SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.STALE


def test_mismatch_wrong_secret() -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, header_for(secret="attacker"), SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MISMATCH


def test_mismatch_tampered_body() -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY.replace(b"succeeded", b"failed"), header_for(), SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MISMATCH


def test_mismatch_timestamp_swapped() -> None:
    sig = seed_recipe(BODY, NOW, SECRET)
    with pytest.raises(SignatureError) as exc_info:
        verify(BODY, f"t={NOW + 1},sig={sig}", SECRET, now=NOW)
    assert reason_of(exc_info) is SignatureFailure.MISMATCH


def test_rotation_accepts_old_secret_and_reports_index() -> None:
    result = verify(BODY, header_for(secret="old-secret"), ["new-secret", "old-secret"], now=NOW)
    assert result.secret_index == 1


def test_several_sig_parts_any_match() -> None:
    good = seed_recipe(BODY, NOW, SECRET)
    bad = seed_recipe(BODY, NOW, "nope")
    assert verify(BODY, f"t={NOW},sig={bad},sig={good}", SECRET, now=NOW).secret_index == 0


@pytest.mark.parametrize("secrets", [[], "", ["ok", ""]])
def test_no_secret_is_a_configuration_error(secrets: list[str] | str) -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(BODY, header_for(), secrets, now=NOW)


def test_sign_requires_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(BODY, "")


def test_sign_defaults_to_now() -> None:
    header = sign(BODY, SECRET)
    assert verify(BODY, header, SECRET, tolerance=5).secret_index == 0
