"""Anthropic's wire format (Messages API), which operator-defined providers may speak too."""

from __future__ import annotations

import secrets

from addon.errors import GatewayError
from addon.metering.json_usage import parse_anthropic
from addon.metering.prompt_text import chat_prompt_text
from addon.metering.stream_events import anthropic_events
from addon.providers.key_health import error_object
from addon.providers.wire_format import WireFormat

VERSION_HEADERS = (("anthropic-version", "2023-06-01"),)  # for `tollkeeper providers test`


def classify(method: str, path: str) -> str:
    if method == "POST":
        if path == "/v1/messages":
            return "anthropic.messages"
        if path == "/v1/messages/count_tokens":
            return "anthropic.count_tokens"
    return "anthropic.other"


def error_body(err: GatewayError, error_type: str, headers: dict[str, str]) -> dict[str, object]:
    """Anthropic's SDKs read the request id from a header; the body repeats it."""
    request_id = "req_tk_" + secrets.token_hex(12)
    headers["request-id"] = request_id
    return {
        "type": "error",
        "error": {"type": error_type, "message": err.message},
        "request_id": request_id,
    }


ANTHROPIC_STYLE = WireFormat(
    prefix="anthropic",
    classify=classify,
    parse_json=parse_anthropic,
    stream_events=anthropic_events,
    prompt_text=chat_prompt_text,
    error_types={
        "internal": "api_error",
        "invalid_request": "invalid_request_error",
        "authentication": "authentication_error",
        "permission": "permission_error",
        "quota": "rate_limit_error",
        "rate_limit": "rate_limit_error",
        "unavailable": "api_error",
        "overloaded": "overloaded_error",
        "timeout": "timeout_error",
    },
    error_body=error_body,
    token_apis=frozenset({"anthropic.messages"}),
    free_apis=frozenset({"anthropic.count_tokens"}),
    request_id_header="request-id",
)


def anthropic_key_rejected(status: int, body: bytes) -> str | None:
    """401 ``authentication_error`` ("invalid x-api-key"); 403 ``permission_error`` is not."""
    if status == 401 and error_object(body).get("type") == "authentication_error":
        return "401 authentication_error"
    return None
