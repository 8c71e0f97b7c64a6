"""OpenAI's wire format, which Azure, the OpenAI-compatible family (Mistral, Groq, DeepSeek,
xAI, OpenRouter, Together, Fireworks), Gemini's compatibility API and operator-defined
providers speak too."""

from __future__ import annotations

from addon.errors import GatewayError
from addon.metering.estimate import openai_prompt_tokens
from addon.metering.json_usage import parse_openai
from addon.metering.media import MEDIA_APIS
from addon.metering.prompt_text import openai_prompt_text
from addon.metering.stream_events import openai_events
from addon.providers.base import BEARER, Provider
from addon.providers.key_health import KeyCheck, openai_key_rejected
from addon.providers.wire_format import WireFormat

# POST paths of paid OpenAI-style endpoints that are not token APIs (see metering/media.py)
MEDIA_PATHS = {
    "/images/generations": "openai.images",
    "/images/edits": "openai.image_edits",
    "/images/variations": "openai.image_variations",
    "/audio/transcriptions": "openai.transcriptions",
    "/audio/translations": "openai.translations",
    "/audio/speech": "openai.speech",
    "/moderations": "openai.moderations",
}


def classify(method: str, path: str) -> str:
    if path == "/realtime" or path.startswith("/realtime/"):
        return "openai.realtime"  # a websocket (GET) or its sessions: paid, not metered
    if method == "POST":
        if path == "/chat/completions":
            return "openai.chat"
        if path == "/completions":
            return "openai.completions"
        if path == "/embeddings":
            return "openai.embeddings"
        if path == "/responses":
            return "openai.responses"
        if path == "/responses/input_tokens":  # counts a prompt: free
            return "openai.count_tokens"
        if path in MEDIA_PATHS:
            return MEDIA_PATHS[path]
    return "openai.other"


# the error code SDKs look for, where it is not the gateway's own code
_CODES = {"invalid_key": "invalid_api_key", "budget_exceeded": "insufficient_quota"}


def error_body(err: GatewayError, error_type: str, headers: dict[str, str]) -> dict[str, object]:
    code = _CODES.get(err.code, err.code)
    return {"error": {"message": err.message, "type": error_type, "param": None, "code": code}}


OPENAI_STYLE = WireFormat(
    prefix="openai",
    classify=classify,
    parse_json=parse_openai,
    stream_events=openai_events,
    prompt_text=openai_prompt_text,
    prompt_tokens=openai_prompt_tokens,
    error_types={
        "internal": "server_error",
        "invalid_request": "invalid_request_error",
        "authentication": "invalid_request_error",
        "permission": "invalid_request_error",
        "quota": "insufficient_quota",
        "rate_limit": "requests",
        "unavailable": "server_error",
        "overloaded": "server_error",
        "timeout": "server_error",
    },
    error_body=error_body,
    token_apis=frozenset(
        {"openai.chat", "openai.completions", "openai.embeddings", "openai.responses"}
    ),
    media_apis=MEDIA_APIS,
    free_apis=frozenset({"openai.moderations", "openai.count_tokens"}),
    # chat and legacy completions streams report usage only with stream_options.include_usage
    include_usage_apis=frozenset({"openai.chat", "openai.completions"}),
)


def openai_compatible(
    name: str,
    host: str,
    base_url: str,
    *,
    stream_usage_opt_in: bool = True,
    alt_base_paths: tuple[str, ...] = (),
    key_rejected: KeyCheck = openai_key_rejected,
) -> Provider:
    """A provider that speaks OpenAI's format at its own host, with a bearer key."""
    return Provider(
        name=name,
        hosts=(host,),
        default_base_url=base_url,
        auth=BEARER,
        wire=OPENAI_STYLE,
        stream_usage_opt_in=stream_usage_opt_in,
        alt_base_paths=alt_base_paths,
        key_rejected=key_rejected,
    )
