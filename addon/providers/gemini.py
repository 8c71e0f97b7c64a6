"""Google Gemini (AI Studio): its own wire format — ``generateContent``,
``streamGenerateContent`` (a JSON array, or SSE with ``alt=sse``) and ``countTokens`` — plus
its OpenAI-compatible API (``/v1beta/openai/…``), metered as OpenAI's."""

from __future__ import annotations

import re

from addon.errors import GatewayError
from addon.metering.framing import negotiated_framing
from addon.metering.gemini import parse_gemini
from addon.metering.prompt_text import gemini_prompt_text
from addon.metering.stream_events import gemini_events
from addon.providers.base import GEMINI, Provider, collapse_slashes
from addon.providers.key_health import detail_values
from addon.providers.openai_style import classify as openai_classify
from addon.providers.wire_format import WireFormat

_OPENAI_COMPATIBLE = re.compile(r"^/v1[a-z0-9]*/openai(/.*)$")


def classify(method: str, path: str) -> str:
    """``/v1beta/models/{model}:generateContent`` and friends; the OpenAI-compatible API
    (``/v1beta/openai/chat/completions``, ``/embeddings``…) is metered as OpenAI's."""
    if compatible := _OPENAI_COMPATIBLE.match(path):
        return openai_classify(method, compatible.group(1))
    _, _, action = path.rpartition(":")
    if method == "POST" and "/models/" in path:
        if action == "generateContent":
            return "gemini.generate"
        if action == "streamGenerateContent":
            return "gemini.stream"
        if action == "countTokens":
            return "gemini.count_tokens"
    return "gemini.other"


def model(path: str) -> str | None:
    bare = collapse_slashes(path.split("?", 1)[0])
    if "/models/" not in bare:
        return None
    return bare.split("/models/", 1)[1].split(":", 1)[0] or None


def error_body(err: GatewayError, error_type: str, headers: dict[str, str]) -> dict[str, object]:
    return {"error": {"code": err.status, "message": err.message, "status": error_type}}


GEMINI_STYLE = WireFormat(
    prefix="gemini",
    classify=classify,
    parse_json=parse_gemini,
    stream_events=gemini_events,
    prompt_text=gemini_prompt_text,
    framing=negotiated_framing,
    error_types={
        "internal": "INTERNAL",
        "invalid_request": "INVALID_ARGUMENT",
        "authentication": "UNAUTHENTICATED",
        "permission": "PERMISSION_DENIED",
        "quota": "RESOURCE_EXHAUSTED",
        "rate_limit": "RESOURCE_EXHAUSTED",
        "unavailable": "UNAVAILABLE",
        "overloaded": "UNAVAILABLE",
        "timeout": "DEADLINE_EXCEEDED",
    },
    error_body=error_body,
    token_apis=frozenset({"gemini.generate", "gemini.stream"}),
    free_apis=frozenset({"gemini.count_tokens"}),
    streamed_apis=frozenset({"gemini.stream"}),  # a JSON array is a stream too
)


def key_rejected(status: int, body: bytes) -> str | None:
    """400 INVALID_ARGUMENT whose ErrorInfo reason is ``API_KEY_INVALID`` (also an expired
    key); other 400s and 403 PERMISSION_DENIED are about the request."""
    if status not in (400, 401):
        return None
    if "API_KEY_INVALID" in detail_values(body, "reason"):
        return f"{status} API_KEY_INVALID"
    return None


def retry_delay(body: bytes) -> float | None:
    """Gemini names its wait in the body's RetryInfo (``"retryDelay": "17s"``), not in a
    ``retry-after`` header."""
    for delay in detail_values(body, "retryDelay"):
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)s", delay):
            return float(m.group(1))
    return None


PROVIDER = Provider(
    name="gemini",
    hosts=("generativelanguage.googleapis.com",),
    default_base_url="https://generativelanguage.googleapis.com",
    auth=GEMINI,
    wire=GEMINI_STYLE,
    stream_usage_opt_in=False,  # its streams always report usage
    model_in_path=model,
    key_rejected=key_rejected,
    retry_hint=retry_delay,
    test_path="/v1beta/models",
)
