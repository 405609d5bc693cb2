"""One function per Scout endpoint: check the arguments, return the :class:`RequestSpec`.

Shared by the sync and async resources. Everything here runs before any I/O, so a bad argument
raises ``ValueError`` (or :class:`UntrustedURLError`) without a byte being sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._config import ClientConfig, quote_segment
from ._http import RequestSpec
from ._trust import parse_http_url
from .redaction import mask_webhook_url, webhook_secrets
from .validation import (
    build_messages,
    optional_string,
    path_segment,
    validate_callback_url,
    validate_json_object,
    validate_tags,
)

__all__ = [
    "agent_get_request",
    "agent_interaction_request",
    "agents_list_request",
    "app_execute_request",
    "interact_async_request",
    "session_events_request",
    "webhook_request",
    "workflow_config_request",
    "workflow_execute_request",
]

_SSE = "text/event-stream"


def _seg(value: Any, name: str) -> str:
    return quote_segment(path_segment(value, name))


def _api(
    config: ClientConfig,
    method: str,
    path: str,
    *,
    params: Mapping[str, str | None] | None = None,
    json_body: Any = None,
    stream: bool = False,
) -> RequestSpec:
    url = config.api_url(path)
    kept = {key: value for key, value in (params or {}).items() if value is not None}
    return RequestSpec(
        method=method,
        url=url,
        shown_url=str(url),
        params=kept,
        json_body=json_body,
        stream=stream,
        accept=_SSE if stream else "application/json",
    )


def _optional_fields(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _interaction_extras(
    metadata: Any, variables: Any, tags: Sequence[str] | None
) -> dict[str, Any]:
    checked_tags = validate_tags(tags) if tags is not None else None
    return _optional_fields(
        metadata=validate_json_object(metadata, "metadata"),
        variables=validate_json_object(variables, "variables"),
        tags=checked_tags,
    )


# --------------------------------------------------------------------------- agents


def interact_async_request(
    config: ClientConfig,
    agent_id: str,
    message: str | None,
    messages: Sequence[Any] | None,
    *,
    callback_url: str,
    session_id: str | None,
    metadata: Any,
    variables: Any,
    tags: Sequence[str] | None,
) -> RequestSpec:
    """``POST world/{agent_id}[/{session_id}]/_interact_async`` (``world``, the API reference's
    path) or ``POST v1/agents/{agent_id}/interact`` (``v1``, the async-interactions guide's)."""
    agent = _seg(agent_id, "agent_id")
    wire_messages = build_messages(message, messages)
    body: dict[str, Any] = {}
    if config.async_interact_endpoint == "v1" and message is not None:
        body["message"] = message
    else:
        body["messages"] = wire_messages
    body["callback_url"] = validate_callback_url(callback_url)
    body.update(_interaction_extras(metadata, variables, tags))
    session = optional_string(session_id, "session_id")
    if config.async_interact_endpoint == "v1":
        return _api(
            config,
            "POST",
            f"v1/agents/{agent}/interact",
            params={"session_id": session},
            json_body=body,
        )
    if session is not None:
        path = f"world/{agent}/{_seg(session, 'session_id')}/_interact_async"
        return _api(config, "POST", path, json_body=body)
    return _api(config, "POST", f"world/{agent}/_interact_async", json_body=body)


def agent_interaction_request(
    config: ClientConfig,
    agent_id: str,
    message: str | None,
    messages: Sequence[Any] | None,
    *,
    stream: bool,
    session_id: str | None,
    metadata: Any,
    variables: Any,
    tags: Sequence[str] | None,
    revision_id: str | None,
) -> RequestSpec:
    """``POST world/{agent_id}[/{session_id}]/_interact`` (stream) or ``.../_interact_sync``."""
    agent = _seg(agent_id, "agent_id")
    body: dict[str, Any] = {"messages": build_messages(message, messages)}
    body.update(_interaction_extras(metadata, variables, tags))
    revision = optional_string(revision_id, "revision_id")
    if revision is not None:
        body["revision_id"] = revision
    action = "_interact" if stream else "_interact_sync"
    session = optional_string(session_id, "session_id")
    prefix = f"world/{agent}" if session is None else f"world/{agent}/{_seg(session, 'session_id')}"
    return _api(config, "POST", f"{prefix}/{action}", json_body=body, stream=stream)


def agents_list_request(config: ClientConfig) -> RequestSpec:
    """``GET agents``: every agent of the organisation."""
    return _api(config, "GET", "agents")


def agent_get_request(config: ClientConfig, agent_id: str) -> RequestSpec:
    """``GET agents/{agent_id}/active``: the agent and its active revision."""
    return _api(config, "GET", f"agents/{_seg(agent_id, 'agent_id')}/active")


def session_events_request(config: ClientConfig, events_url: str) -> RequestSpec:
    """``GET events_url`` with the key, after checking the URL is trusted."""
    url = config.trust.check(events_url, what="events_url")
    return RequestSpec(method="GET", url=url, shown_url=str(url), stream=True, accept="*/*")


# --------------------------------------------------------------------------- workflows


def _workflow_params(
    environment: str | None, revision_id: str | None, session_id: str | None
) -> dict[str, str | None]:
    return {
        "environment": optional_string(environment, "environment"),
        "revision_id": optional_string(revision_id, "revision_id"),
        "session_id": optional_string(session_id, "session_id"),
    }


def workflow_execute_request(
    config: ClientConfig,
    workflow_id: str,
    inputs: Any,
    *,
    stream: bool,
    environment: str | None,
    revision_id: str | None,
    session_id: str | None,
) -> RequestSpec:
    """``POST v2/workflows/{workflow_id}/execute``, with ``streaming`` false (one JSON answer)
    or true (an SSE stream of the run's events)."""
    workflow = _seg(workflow_id, "workflow_id")
    body = _optional_fields(inputs=validate_json_object(inputs, "inputs"))
    body["streaming"] = stream
    return _api(
        config,
        "POST",
        f"v2/workflows/{workflow}/execute",
        params=_workflow_params(environment, revision_id, session_id),
        json_body=body,
        stream=stream,
    )


def workflow_config_request(
    config: ClientConfig,
    workflow_config: Any,
    inputs: Any,
    *,
    workflow_key: str | None,
    environment: str | None,
    revision_id: str | None,
    session_id: str | None,
    stream: bool = False,
) -> RequestSpec:
    """``POST v2/workflows/execute`` with an inline ``workflow_config``."""
    checked_config = validate_json_object(workflow_config, "workflow_config")
    if checked_config is None:
        raise ValueError("workflow_config is required (a dict; Scout accepts {})")
    body: dict[str, Any] = {"workflow_config": checked_config}
    body.update(
        _optional_fields(
            workflow_key=optional_string(workflow_key, "workflow_key"),
            inputs=validate_json_object(inputs, "inputs"),
        )
    )
    body["streaming"] = stream
    return _api(
        config,
        "POST",
        "v2/workflows/execute",
        params=_workflow_params(environment, revision_id, session_id),
        json_body=body,
        stream=stream,
    )


def webhook_request(config: ClientConfig, webhook_url: str, body: Any) -> RequestSpec:
    """``POST`` ``body`` as JSON to a workflow webhook URL, without the API key."""
    shown = mask_webhook_url(webhook_url) if isinstance(webhook_url, str) else "?"
    url = parse_http_url(webhook_url, what="webhook_url", shown=shown)
    config.trust.check_no_downgrade(url, what="webhook_url", shown=shown)
    try:
        content = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"webhook body must be JSON-serializable: {exc}") from None
    return RequestSpec(
        method="POST",
        url=url,
        shown_url=shown,
        content=content,
        authenticated=False,
        accept="*/*",
        secrets=webhook_secrets(webhook_url),
    )


# --------------------------------------------------------------------------- apps


def app_execute_request(
    config: ClientConfig, app_id: str, inputs: Any, *, stream: bool
) -> RequestSpec:
    """``POST v1/apps/execute`` with ``{"id", "inputs", "streaming"}``."""
    app = path_segment(app_id, "app_id")
    checked = validate_json_object(inputs, "inputs")
    body = {"id": app, "inputs": checked if checked is not None else {}, "streaming": stream}
    return _api(config, "POST", "v1/apps/execute", json_body=body, stream=stream)
