"""Errors the gateway itself answers with, shaped like the provider's own errors.

Hierarchy (each class carries its HTTP status and its ``x-tollkeeper-error`` code)::

    GatewayError
    ├── InvalidAttribution    400  a malformed x-tollkeeper-user / x-tollkeeper-tags header
    ├── InvalidKey            401  missing / unknown / malformed / revoked / expired key
    ├── NotAllowed            403  provider or model not allowed for the key
    ├── BudgetExceeded        429  budget exhausted (x-should-retry: false)
    ├── RateLimited           429  RPM/TPM/parallel limit (retry-after)
    ├── NoRealKey             503  no usable real key: the message says how many keys there
    │                              are, why each is out and when the next try is (pool.py)
    ├── NotRecording          503  usage can be neither written nor spooled (retry-after)
    ├── UpstreamUnreachable   502
    │   └── AnswerWithheld    502  the upstream's answer held the real key, too big to scrub
    ├── UpstreamTimeout       504
    └── GatewayFault          500  a fault inside the addon (fail closed)

``render(err, shape)`` turns one into (status, body, headers) for the provider's error shape:
"openai" (also Azure and the OpenAI-compatible family), "anthropic" or "gemini".
"""

from __future__ import annotations

import json
import secrets
from typing import ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "gateway_error"
    openai_type: ClassVar[str] = "server_error"
    anthropic_type: ClassVar[str] = "api_error"
    gemini_status: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def extra_headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"retry-after": str(self.retry_after_s)}


class InvalidAttribution(GatewayError):
    status, code = 400, "invalid_attribution"
    openai_type, anthropic_type, gemini_status = (
        "invalid_request_error",
        "invalid_request_error",
        "INVALID_ARGUMENT",
    )


class InvalidKey(GatewayError):
    status, code = 401, "invalid_key"
    openai_type, anthropic_type, gemini_status = (
        "invalid_request_error",
        "authentication_error",
        "UNAUTHENTICATED",
    )


class NotAllowed(GatewayError):
    status, code = 403, "not_allowed"
    openai_type, anthropic_type, gemini_status = (
        "invalid_request_error",
        "permission_error",
        "PERMISSION_DENIED",
    )


class BudgetExceeded(GatewayError):
    status, code = 429, "budget_exceeded"
    openai_type, anthropic_type, gemini_status = (
        "insufficient_quota",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    )

    def extra_headers(self) -> dict[str, str]:
        return {**super().extra_headers(), "x-should-retry": "false"}


class RateLimited(GatewayError):
    status, code = 429, "rate_limited"
    openai_type, anthropic_type, gemini_status = (
        "requests",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    )


class NoRealKey(GatewayError):
    status, code = 503, "no_real_key"
    openai_type, anthropic_type, gemini_status = "server_error", "api_error", "UNAVAILABLE"


class NotRecording(GatewayError):
    status, code = 503, "not_recording"
    openai_type, anthropic_type, gemini_status = "server_error", "api_error", "UNAVAILABLE"


class UpstreamUnreachable(GatewayError):
    status, code = 502, "upstream_unreachable"
    openai_type, anthropic_type, gemini_status = "server_error", "api_error", "UNAVAILABLE"


class AnswerWithheld(UpstreamUnreachable):
    code = "answer_withheld"


class UpstreamTimeout(GatewayError):
    status, code = 504, "upstream_timeout"
    openai_type, anthropic_type, gemini_status = (
        "server_error",
        "timeout_error",
        "DEADLINE_EXCEEDED",
    )


class GatewayFault(GatewayError):
    pass


_OPENAI_CODES = {"invalid_key": "invalid_api_key", "budget_exceeded": "insufficient_quota"}


def render(err: GatewayError, shape: str) -> tuple[int, bytes, dict[str, str]]:
    """The response a client receives for ``err``, in the provider's error ``shape``."""
    headers = {"content-type": "application/json", "x-tollkeeper-error": err.code}
    headers.update(err.extra_headers())
    body: dict[str, object]
    if shape == "anthropic":
        request_id = "req_tk_" + secrets.token_hex(12)
        headers["request-id"] = request_id
        body = {
            "type": "error",
            "error": {"type": err.anthropic_type, "message": err.message},
            "request_id": request_id,
        }
    elif shape == "gemini":
        body = {"error": {"code": err.status, "message": err.message, "status": err.gemini_status}}
    else:
        body = {
            "error": {
                "message": err.message,
                "type": err.openai_type,
                "param": None,
                "code": _OPENAI_CODES.get(err.code, err.code),
            }
        }
    return err.status, json.dumps(body).encode(), headers
