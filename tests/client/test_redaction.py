"""``scrub``, ``scrub_data``, ``redact_headers``: every secret shape is masked, nothing else."""

from __future__ import annotations

import json

import pytest

from django_scout.client.redaction import KEPT_HEADERS, MASK, redact_headers, scrub, scrub_data

KEY = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"invalid API key {KEY} for this org", KEY),
        (f'{{"detail": "denied", "echo": "{KEY}"}}', KEY),
        ("https://x.test/?k=sk-live-0123456789abcdef", KEY),
        ("Authorization: Bearer tok_abc123XYZ", "tok_abc123XYZ"),
        ("upstream said bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl, giving up", "eyJhbGciOi"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("proxy sent Basic dXNlcjpwYXNzd29yZA== upstream", "dXNlcjpwYXNzd29yZA=="),
        ('{"api_key": "ak_1234567890"}', "ak_1234567890"),
        ("{'client_secret': 'cs_98765'}", "cs_98765"),
        ('{\\"access_token\\": \\"at_4242\\"}', "at_4242"),
        ('"refresh_token":"rt with spaces 99"', "rt with spaces 99"),
        ('{"id_token": "' + "j" * 1500 + '"}', "j" * 1500),
        ("https://x.test/cb?token=qt_5555&x=1", "qt_5555"),
        ("login failed: password=hunter2hunter2", "hunter2hunter2"),
        ("X-Scout-Token: tok_live_777", "tok_live_777"),
        ("x-api-key: xk_31337", "xk_31337"),
        (
            "POST https://hooks.scoutos.com/v1/workflows/wf_1/webhook/whk_secret_42 failed",
            "whk_secret_42",
        ),
        ("via https://user:pw_55555@proxy.test/path", "pw_55555"),
    ],
)
def test_each_secret_shape_is_masked(text: str, secret: str) -> None:
    scrubbed = scrub(text, secrets=[KEY])
    assert secret not in scrubbed
    assert MASK in scrubbed
    assert scrub(scrubbed, secrets=[KEY]) == scrubbed  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=4096 exceeds the model's limit",
        "session_id=sess_123 not found",
        "Basic plan required for this agent",
        "body.messages.0.content: field required",
        '{"tokens": 12, "token_count": 3, "x-scout-signature-alg": "HMAC-SHA256"}',
        "Scout rejected POST /world/a1/_interact_async with 422: missing bearer",
        "https://api.scoutos.test/v1/agents/a1?environment=production",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text, secrets=[KEY]) == text


def test_short_secrets_are_not_searched_for() -> None:
    assert scrub("a key", secrets=["k", ""]) == "a key"


def test_scrub_data_masks_nested_values_and_secret_named_keys() -> None:
    body = {
        "detail": [{"loc": ["body", "x"], "msg": "bad", "input": f"Bearer {KEY}"}],
        "auth": {"token": "t_0000000001", "type": "bearer"},
        "api_key": 123456789,
        "count": 5,
        "tokens": 7,
    }
    scrubbed = scrub_data(body, secrets=[KEY])
    text = json.dumps(scrubbed)
    assert KEY not in text
    assert "t_0000000001" not in text
    assert "123456789" not in text
    assert scrubbed["auth"] == {"token": MASK, "type": "bearer"}
    assert (scrubbed["count"], scrubbed["tokens"]) == (5, 7)
    assert scrubbed["detail"][0]["loc"] == ["body", "x"]
    assert scrub_data(f"echo {KEY}", secrets=[KEY]) == f"echo {MASK}"
    assert scrub_data(None) is None


def test_headers_outside_the_allow_list_keep_their_name_but_not_their_value() -> None:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Scout/1.0",
        "X-Scout-Signature-Alg": "HMAC-SHA256",
        "X-Scout-Signature": "t=1,sig=abc",
        "X-Scout-Token": "tok_live_777",
        "Authorization": "Bearer b_12345678",
        "Cookie": "sessionid=c_12345678",
        "X-Custom-Thing": "v_12345678",
    }
    redacted = redact_headers(headers)
    assert redacted == {
        "Content-Type": "application/json",
        "User-Agent": "Scout/1.0",
        "X-Scout-Signature-Alg": "HMAC-SHA256",
        "X-Scout-Signature": MASK,
        "X-Scout-Token": MASK,
        "Authorization": MASK,
        "Cookie": MASK,
        "X-Custom-Thing": MASK,
    }
    assert all(name == name.lower() for name in KEPT_HEADERS)
