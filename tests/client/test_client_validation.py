"""Input validation (tags, messages, JSON objects) and webhook-URL masking."""

from __future__ import annotations

import pytest

from django_scout.client import build_messages, mask_webhook_url, validate_tags
from tests.client.helpers import json_response

CALLBACK = "https://app.example.test/cb"


# --------------------------------------------------------------------------- tags


def test_valid_tags_are_returned_as_a_list():
    tags = ("support", "tier:gold", "a-b_c", "x" * 32, "0")
    assert validate_tags(tags) == list(tags)
    assert validate_tags(None) == []
    assert validate_tags([f"t{i}" for i in range(20)]) == [f"t{i}" for i in range(20)]


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ([f"t{i}" for i in range(21)], "too many tags: 21 given, Scout accepts at most 20"),
        (["ok", "x" * 33], r"invalid tag 'x{33}': each tag must be 1 to 32 characters"),
        (["Support"], r"invalid tag 'Support'.*lowercase a-z"),
        (["has space"], "invalid tag 'has space'"),
        (["dot.tag"], "invalid tag 'dot.tag'"),
        (["émoji"], "invalid tag 'émoji'"),
        ([""], "invalid tag ''"),
        ([3], "tag 3 is not a string"),
        ("support", "tags must be a list of strings, got str"),
    ],
)
def test_invalid_tags_name_the_tag_and_the_rule(tags, match):
    with pytest.raises(ValueError, match=match):
        validate_tags(tags)


@pytest.mark.parametrize(
    "tags",
    [[f"t{i}" for i in range(21)], ["x" * 33], ["Upper"], ["bad!char"]],
    ids=["21-tags", "33-chars", "uppercase", "bad-char"],
)
@pytest.mark.parametrize(
    "method",
    ["agents.interact_async", "agents.interact", "agents.stream"],
)
async def test_bad_tags_raise_before_any_request(make, tags, method):
    h = make(lambda request: json_response(202, {"session_id": "s", "events_url": "u"}))
    extra = {"callback_url": CALLBACK} if method == "agents.interact_async" else {}
    with pytest.raises(ValueError, match="tag"):
        await h.call(method, "a1", "hello", tags=tags, **extra)
    assert h.calls == []


# --------------------------------------------------------------------------- messages


def test_build_messages_wraps_text_and_copies_dicts():
    assert build_messages("hi", None) == [{"content": "hi"}]
    item = {"content": "x", "extra": 1}
    built = build_messages(None, ["a", item])
    assert built == [{"content": "a"}, {"content": "x", "extra": 1}]
    assert built[1] is not item


def test_build_messages_accepts_drive_files_and_mixed_lists():
    drive = {"type": "drive_file", "path": "/a.pdf"}
    assert build_messages(None, [{"content": drive}]) == [{"content": drive}]
    assert build_messages(None, [{"content": ["see", drive]}]) == [{"content": ["see", drive]}]


@pytest.mark.parametrize(
    ("message", "messages", "match"),
    [
        (None, None, "exactly one"),
        ("a", ["b"], "exactly one"),
        ("", None, "non-empty"),
        (None, [], "must not be empty"),
        (None, ({"content": ""},), r"messages\[0\].content '' is not valid"),
        (None, ["ok", {"content": {"type": "drive_file"}}], r"messages\[1\]"),
        (None, [{"content": ["ok", 5]}], r"messages\[0\].content 5 is not valid"),
        (None, {"content": "x"}, "must be a list"),
    ],
)
def test_build_messages_rejects(message, messages, match):
    with pytest.raises(ValueError, match=match):
        build_messages(message, messages)


async def test_inputs_must_be_a_json_object(make):
    h = make(lambda request: json_response(200, {}))
    with pytest.raises(ValueError, match="inputs must be a dict"):
        await h.call("workflows.run", "wf1", ["not", "a", "dict"])
    with pytest.raises(ValueError, match="inputs must be JSON-serializable"):
        await h.call("workflows.run", "wf1", {"when": object()})
    with pytest.raises(ValueError, match="keys must all be strings"):
        await h.call("apps.execute", "app", {1: "x"})
    assert h.calls == []


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/tok_SECRET",
            "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/***",
        ),
        (
            "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/tok/extra?x=SECRET",
            "https://hooks.scoutos.com/v1/workflows/wf_1/webhook/***?***",
        ),
        ("https://user:SECRET@hooks.test:8443/h/SECRET", "https://***@hooks.test:8443/h/***"),
        ("https://hooks.test/", "https://hooks.test/"),
    ],
)
def test_mask_webhook_url(url, masked):
    assert mask_webhook_url(url) == masked
    assert "SECRET" not in mask_webhook_url(url)


def test_mask_webhook_url_of_garbage_hides_everything():
    assert mask_webhook_url("http://[bad") == "***"
