"""HTTP and network failures become typed errors with readable messages and no secrets."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from django_scout.client import (
    ScoutAPIError,
    ScoutAuthError,
    ScoutClient,
    ScoutError,
    ScoutNotFoundError,
    ScoutRateLimitError,
    ScoutServerError,
    ScoutStreamError,
    ScoutTransportError,
    ScoutValidationError,
)
from tests.client.helpers import API_KEY, Harness, json_response

CALLBACK = "https://app.example.test/cb"


async def interact(h: Harness) -> Any:
    return await h.call("agents.interact_async", "a1", "hi", callback_url=CALLBACK)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, ScoutAPIError),
        (401, ScoutAuthError),
        (403, ScoutAuthError),
        (404, ScoutNotFoundError),
        (409, ScoutAPIError),
        (422, ScoutValidationError),
        (429, ScoutRateLimitError),
        (500, ScoutServerError),
        (503, ScoutServerError),
    ],
)
async def test_status_maps_to_error_type(make, status, error_type):
    h = make(lambda request: json_response(status, {"detail": "nope"}), max_retries=0)
    with pytest.raises(error_type) as caught:
        await interact(h)
    error = caught.value
    assert type(error) is error_type
    assert error.status_code == status
    assert error.method == "POST"
    assert error.url == "https://api.scoutos.test/world/a1/_interact_async"
    assert error.detail == "nope"
    assert len(h.calls) == 1


async def test_422_with_detail_list_has_readable_message(make):
    detail = [
        {"loc": ["body", "callback_url"], "msg": "field required", "type": "value_error.missing"},
        {
            "loc": ["body", "messages", 0, "content"],
            "msg": "str type expected",
            "type": "type_error",
        },
    ]
    h = make(lambda request: json_response(422, {"detail": detail}))
    with pytest.raises(ScoutValidationError) as caught:
        await interact(h)
    error = caught.value
    assert str(error) == (
        "Scout rejected POST /world/a1/_interact_async with 422: body.callback_url: field required;"
        " body.messages.0.content: str type expected"
    )
    assert error.errors == detail
    assert error.detail == detail


async def test_422_with_detail_string_and_without_detail(make):
    h = make(lambda request: json_response(422, {"detail": "tags invalid"}))
    with pytest.raises(ScoutValidationError) as caught:
        await interact(h)
    assert caught.value.errors == []
    assert str(caught.value).endswith("with 422: tags invalid")

    h2 = make(lambda request: json_response(422, {"message": "bad input"}))
    with pytest.raises(ScoutValidationError) as caught2:
        await interact(h2)
    assert caught2.value.detail is None
    assert str(caught2.value).endswith("with 422: bad input")


async def test_text_body_is_kept_and_truncated(make):
    h = make(lambda request: httpx.Response(400, text="x" * 10_000), max_retries=0)
    with pytest.raises(ScoutAPIError) as caught:
        await interact(h)
    assert caught.value.body == "x" * 4096
    assert len(str(caught.value)) < 400


async def test_empty_error_body_uses_reason_phrase(make):
    h = make(lambda request: httpx.Response(404), max_retries=0)
    with pytest.raises(ScoutNotFoundError, match="with 404: Not Found"):
        await h.call("agents.get", "missing")


async def test_429_retry_after_seconds(make):
    h = make(lambda request: json_response(429, {}, headers={"Retry-After": "17"}), max_retries=0)
    with pytest.raises(ScoutRateLimitError) as caught:
        await interact(h)
    assert caught.value.retry_after == 17.0
    assert caught.value.headers["retry-after"] == "17"


async def test_429_retry_after_http_date(make):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    h = make(lambda request: json_response(429, {}, headers={"Retry-After": when}), max_retries=0)
    with pytest.raises(ScoutRateLimitError) as caught:
        await interact(h)
    assert caught.value.retry_after is not None
    assert 27 <= caught.value.retry_after <= 31


async def test_429_without_or_with_garbage_retry_after(make):
    h = make(lambda request: json_response(429, {}, headers={"Retry-After": "soon"}), max_retries=0)
    with pytest.raises(ScoutRateLimitError) as caught:
        await interact(h)
    assert caught.value.retry_after is None


async def test_redirect_is_not_followed(make):
    h = make(
        lambda request: httpx.Response(302, headers={"Location": "https://evil.test/steal"}),
        max_retries=0,
    )
    with pytest.raises(ScoutAPIError) as caught:
        await h.call("agents.list")
    assert caught.value.status_code == 302
    assert "not followed" in str(caught.value)
    assert len(h.calls) == 1
    assert all(call.url.host == "api.scoutos.test" for call in h.calls)


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool full"), False),
        (httpx.ReadTimeout("slow read"), True),
        (httpx.WriteTimeout("slow write"), True),
        (httpx.RemoteProtocolError("peer closed"), True),
        (httpx.ReadError("reset"), True),
    ],
)
async def test_network_errors_map_to_transport_error(make, exc, sent):
    def fail(request):
        raise exc

    h = make(fail, max_retries=0)
    with pytest.raises(ScoutTransportError) as caught:
        await interact(h)
    assert caught.value.request_sent is sent
    assert caught.value.retry_safe is (not sent)
    assert type(exc).__name__ in str(caught.value)
    assert "/world/a1/_interact_async" in str(caught.value)


async def test_undecodable_body_is_a_stream_error(make):
    h = make(
        lambda request: httpx.Response(
            200, headers={"content-encoding": "gzip"}, content=b"definitely not gzip"
        )
    )
    with pytest.raises(ScoutStreamError):
        await h.call("agents.list")


async def test_api_key_never_in_repr_or_errors(make):
    h = make(lambda request: json_response(401, {"detail": "Invalid API key"}))
    text = [
        repr(h.client),
        str(h.client),
        repr(h.client.agents),
        repr(h.client.workflows),
        repr(h.client._config),
        repr(h.client._http.config),
    ]
    with pytest.raises(ScoutAuthError) as caught:
        await interact(h)
    error = caught.value
    text += [str(error), repr(error), repr(error.headers), repr(error.body), repr(error.args)]

    def refuse(request):
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        raise httpx.ConnectError("refused")

    h2 = make(refuse, max_retries=0)
    with pytest.raises(ScoutError) as caught2:
        await h2.call("agents.list")
    text += [str(caught2.value), repr(caught2.value)]
    for item in text:
        assert API_KEY not in item
    assert (
        repr(h.client)
        == f"{type(h.client).__name__}(base_url='https://api.scoutos.test/', api_key='***')"
    )


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="api_key"):
        ScoutClient(api_key="")
    with pytest.raises(ValueError, match="printable ASCII"):
        ScoutClient(api_key="k\u20ac y")
    with pytest.raises(ValueError, match="printable ASCII"):
        ScoutClient(api_key="key\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="base_url"):
        ScoutClient(api_key="k", base_url="ftp://x")
    with pytest.raises(ValueError, match="timeout"):
        ScoutClient(api_key="k", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        ScoutClient(api_key="k", max_retries=-1)
    with pytest.raises(ValueError, match="async_interact_endpoint"):
        ScoutClient(api_key="k", async_interact_endpoint="v2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trusted_hosts"):
        ScoutClient(api_key="k", trusted_hosts="api.scoutos.com")
