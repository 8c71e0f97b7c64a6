"""Provider-shaped bodies for the fake upstream: usage defaults, replies, SSE streams and errors.

Shapes follow /work/shared/reference/providers.md (§1.2 OpenAI, §1.4 Anthropic, §1.12 examples,
§2 errors); Gemini's builders are in `gemini_payloads.py`, its usage defaults here. The usage
dicts below are what the fake answers with unless a test overrides them; tests compute their
expectations from the same dicts.
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import json
import re
import secrets
import struct
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

OPENAI_CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 1200,
    "completion_tokens": 40,
    "total_tokens": 1240,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_COMPLETIONS_USAGE: dict[str, Any] = {
    "prompt_tokens": 10,
    "completion_tokens": 16,
    "total_tokens": 26,
}
OPENAI_EMBEDDINGS_USAGE: dict[str, Any] = {"prompt_tokens": 8, "total_tokens": 8}
OPENAI_RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 2048,
    "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
    "output_tokens": 180,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 2228,
}
ANTHROPIC_MESSAGES_USAGE: dict[str, Any] = {
    "input_tokens": 25,
    "cache_creation_input_tokens": 1800,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 1800, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 12,
    "service_tier": "standard",
}
# A stream reports input in message_start and the cumulative output in message_delta.
ANTHROPIC_STREAM_START_USAGE: dict[str, Any] = {
    "input_tokens": 25,
    "cache_creation_input_tokens": 1800,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 1800, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 1,
    "service_tier": "standard",
}
ANTHROPIC_STREAM_DELTA_USAGE: dict[str, Any] = {"output_tokens": 15}
ANTHROPIC_COUNT_TOKENS: dict[str, Any] = {"input_tokens": 2095}
# Payload 15. Thoughts are outside candidatesTokenCount: normalised input 2100 (cached 2048),
# output 300 (reasoning 260). A stream reports running totals that end with exactly this.
GEMINI_USAGE: dict[str, Any] = {
    "promptTokenCount": 2100,
    "candidatesTokenCount": 40,
    "totalTokenCount": 2400,
    "cachedContentTokenCount": 2048,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2100}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2048}],
    "thoughtsTokenCount": 260,
}
GEMINI_COUNT_TOKENS: dict[str, Any] = {
    "totalTokens": 2100,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2100}],
}

# Keys of FakeUpstream.usage (and of the x-fake-usage request header).
DEFAULT_USAGE: dict[str, dict[str, Any]] = {
    "chat": OPENAI_CHAT_USAGE,
    "completions": OPENAI_COMPLETIONS_USAGE,
    "embeddings": OPENAI_EMBEDDINGS_USAGE,
    "responses": OPENAI_RESPONSES_USAGE,
    "messages": ANTHROPIC_MESSAGES_USAGE,
    "messages_stream_start": ANTHROPIC_STREAM_START_USAGE,
    "messages_stream_delta": ANTHROPIC_STREAM_DELTA_USAGE,
    "count_tokens": ANTHROPIC_COUNT_TOKENS,
    "gemini": GEMINI_USAGE,
    "gemini_count_tokens": GEMINI_COUNT_TOKENS,
}

REPLY_TEXT = "Hello from the fake upstream."
EMBEDDING_DIMENSIONS = 8
STREAM_PIECE_CHARS = 16 * 1024


class Event(NamedTuple):
    """One SSE event, already framed; `content` marks events that carry generated text."""

    data: bytes
    content: bool = False


def default_usage() -> dict[str, dict[str, Any]]:
    return copy.deepcopy(DEFAULT_USAGE)


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def split_text(text: str) -> list[str]:
    """Stream pieces: words (with their leading space), or fixed slices for very long text."""
    if len(text) > 4 * STREAM_PIECE_CHARS:
        return [text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)]
    return re.findall(r"\s*\S+", text) or [text]


def large_text(size: int) -> str:
    return ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]


def _data(obj: object) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def _named(event: str, obj: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(obj) + b"\n\n"


def _typed(name: str, content: bool = False, /, **fields: Any) -> Event:
    """An `event: name` whose data repeats the name as `type` (Anthropic, Responses API)."""
    return Event(_named(name, {"type": name, **fields}), content)


# --- OpenAI chat completions and legacy completions -------------------------------------------


def chat_json(model: str, text: str, usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    message["annotations"] = []
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chat_stream(model: str, text: str, usage: dict[str, Any], include_usage: bool) -> list[Event]:
    base = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body = {**base, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return _data(body)

    events = [Event(chunk({"role": "assistant", "content": "", "refusal": None}))]
    events += [Event(chunk({"content": piece}), content=True) for piece in split_text(text)]
    events.append(Event(chunk({}, "stop")))
    if include_usage:
        events.append(Event(_data({**base, "choices": [], "usage": usage})))
    events.append(Event(b"data: [DONE]\n\n"))
    return events


def completions_json(model: str, text: str, usage: dict[str, Any]) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def completions_stream(
    model: str, text: str, usage: dict[str, Any], include_usage: bool
) -> list[Event]:
    base = {"id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time())}
    base["model"] = model

    def chunk(piece: str, finish: str | None) -> bytes:
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
        body = {**base, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return _data(body)

    events = [Event(chunk(piece, None), content=True) for piece in split_text(text)]
    events.append(Event(chunk("", "stop")))
    if include_usage:
        events.append(Event(_data({**base, "choices": [], "usage": usage})))
    events.append(Event(b"data: [DONE]\n\n"))
    return events


# --- OpenAI embeddings ------------------------------------------------------------------------


def embeddings_json(model: str, body: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs else 1
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], int):
        count = 1  # a single input given as token ids
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and 0 < dims <= 4096 else EMBEDDING_DIMENSIONS
    data = []
    for index in range(count):
        vector = [round(((index + 1) * (i + 1)) % 17 / 17 - 0.5, 6) for i in range(dims)]
        if body.get("encoding_format") == "base64":
            raw = struct.pack(f"<{dims}f", *vector)
            data.append(
                {"object": "embedding", "index": index, "embedding": base64.b64encode(raw).decode()}
            )
        else:
            data.append({"object": "embedding", "index": index, "embedding": vector})
    return {"object": "list", "data": data, "model": model, "usage": usage}


# --- OpenAI Responses API ---------------------------------------------------------------------


def _response_obj(
    model: str, rid: str, status: str, output: list[Any], usage: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
    }


def _responses_items(
    text: str, usage: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    details = usage.get("output_tokens_details") or {}
    reasoning = []
    if details.get("reasoning_tokens"):
        reasoning = [{"id": new_id("rs_"), "type": "reasoning", "summary": []}]
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {
        "id": new_id("msg_"),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    return reasoning, message


def responses_json(model: str, text: str, usage: dict[str, Any]) -> dict[str, Any]:
    reasoning, message = _responses_items(text, usage)
    return _response_obj(model, new_id("resp_"), "completed", [*reasoning, message], usage)


def responses_stream(model: str, text: str, usage: dict[str, Any]) -> list[Event]:
    rid = new_id("resp_")
    reasoning, message = _responses_items(text, usage)
    at = len(reasoning)
    where = {"item_id": message["id"], "output_index": at, "content_index": 0}
    part = message["content"][0]
    numbers = itertools.count()

    def event(name: str, content: bool = False, /, **fields: Any) -> Event:
        return _typed(name, content, sequence_number=next(numbers), **fields)

    opening = _response_obj(model, rid, "in_progress", [], None)
    events = [event("response.created", response=opening)]
    events.append(event("response.in_progress", response=opening))
    for index, item in enumerate(reasoning):
        events.append(event("response.output_item.added", output_index=index, item=item))
        events.append(event("response.output_item.done", output_index=index, item=item))
    pending = {**message, "status": "in_progress", "content": []}
    events.append(event("response.output_item.added", output_index=at, item=pending))
    events.append(event("response.content_part.added", **where, part={**part, "text": ""}))
    for piece in split_text(text):
        events.append(event("response.output_text.delta", True, **where, delta=piece, logprobs=[]))
    events.append(event("response.output_text.done", **where, text=text, logprobs=[]))
    events.append(event("response.content_part.done", **where, part=part))
    events.append(event("response.output_item.done", output_index=at, item=message))
    final = _response_obj(model, rid, "completed", [*reasoning, message], usage)
    events.append(event("response.completed", response=final))
    return events


# --- Anthropic Messages -----------------------------------------------------------------------


def _message_obj(model: str, content: list[Any], stop: str | None, usage: Any) -> dict[str, Any]:
    return {
        "id": new_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def messages_json(model: str, text: str, usage: dict[str, Any]) -> dict[str, Any]:
    return _message_obj(model, [{"type": "text", "text": text}], "end_turn", usage)


def messages_stream(
    model: str, text: str, start_usage: dict[str, Any], delta_usage: dict[str, Any]
) -> list[Event]:
    events = [
        _typed("message_start", message=_message_obj(model, [], None, start_usage)),
        _typed("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _typed("ping"),
    ]
    for piece in split_text(text):
        delta = {"type": "text_delta", "text": piece}
        events.append(_typed("content_block_delta", True, index=0, delta=delta))
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    events.append(_typed("content_block_stop", index=0))
    events.append(_typed("message_delta", delta=stop, usage=delta_usage))
    events.append(_typed("message_stop"))
    return events


# --- Choosing by API --------------------------------------------------------------------------


def json_reply(
    api: str, model: str, text: str, usage: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """The non-streamed answer for `api`; `usage` is keyed like DEFAULT_USAGE."""
    if api == "chat":
        return chat_json(model, text, usage["chat"])
    if api == "completions":
        return completions_json(model, text, usage["completions"])
    if api == "embeddings":
        return embeddings_json(model, body, usage["embeddings"])
    if api == "responses":
        return responses_json(model, text, usage["responses"])
    if api == "messages":
        return messages_json(model, text, usage["messages"])
    return dict(usage["count_tokens"])


def stream_reply(
    api: str, model: str, text: str, usage: dict[str, Any], body: dict[str, Any]
) -> list[Event]:
    """The SSE events for `api` (chat, completions, responses or messages)."""
    options = body.get("stream_options")
    include = isinstance(options, dict) and options.get("include_usage") is True
    if api == "chat":
        return chat_stream(model, text, usage["chat"], include)
    if api == "completions":
        return completions_stream(model, text, usage["completions"], include)
    if api == "responses":
        return responses_stream(model, text, usage["responses"])
    start, delta = usage["messages_stream_start"], usage["messages_stream_delta"]
    return messages_stream(model, text, start, delta)


# --- Errors -----------------------------------------------------------------------------------


def mask_key(key: str) -> str:
    """OpenAI-style masked key: 'sk-abc*****wxyz'; never the whole key."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def openai_error(
    status: int,
    *,
    api_key: str | None = None,
    model: str = "",
    kind: str = "rate_limit",
    message: str | None = None,
) -> dict[str, Any]:
    def err(message: str, type_: str, code: str | None) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    if message is not None:
        return err(message, "server_error" if status >= 500 else "invalid_request_error", None)
    if status == 401:
        if not api_key:
            return err(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        return err(
            f"Incorrect API key provided: {mask_key(api_key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 429 and kind == "quota":
        return err(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if status == 429:
        return err(
            f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 403:  # the project may not use the model: about the request, not the key
        msg = f"Project `proj_fake` does not have access to model `{model}`"
        return err(msg, "invalid_request_error", "model_not_found")
    if status == 404:
        msg = f"The model `{model}` does not exist or you do not have access to it."
        return err(msg, "invalid_request_error", "model_not_found")
    if status == 503:
        return err(
            "The server is overloaded or not ready yet.", "server_error", "server_is_overloaded"
        )
    if status >= 500:
        return err(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    return err(f"Fake upstream error {status}.", "invalid_request_error", None)


ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(status: int, request_id: str, message: str | None = None) -> dict[str, Any]:
    fallback = ("api_error", "Internal server error") if status >= 500 else ANTHROPIC_ERRORS[400]
    type_, default_message = ANTHROPIC_ERRORS.get(status, fallback)
    message = default_message if message is None else message
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}


def midstream_error(api: str, sequence_number: int) -> bytes:
    if api == "messages":
        overloaded = {"type": "overloaded_error", "message": "Overloaded"}
        return _named("error", {"type": "error", "error": overloaded})
    message = "The server had an error while processing your request. Sorry about that!"
    if api == "responses":
        body: dict[str, Any] = {"type": "error", "code": "server_error", "message": message}
        return _named("error", {**body, "param": None, "sequence_number": sequence_number})
    return _data(
        {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    )


# --- Headers ----------------------------------------------------------------------------------


def _rfc3339(seconds: int) -> str:
    return _rfc3339_at(int(time.time()) + seconds)


@functools.lru_cache(maxsize=64)
def _rfc3339_at(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provider_headers(provider: str, request_id: str) -> list[tuple[str, str]]:
    if provider == "anthropic":
        return [
            ("request-id", request_id),
            ("anthropic-organization-id", "00000000-0000-4000-8000-00000000fa4e"),
            ("anthropic-ratelimit-requests-limit", "4000"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
            ("anthropic-ratelimit-requests-reset", _rfc3339(1)),
            ("anthropic-ratelimit-tokens-limit", "2000000"),
            ("anthropic-ratelimit-tokens-remaining", "1999000"),
            ("anthropic-ratelimit-tokens-reset", _rfc3339(1)),
        ]
    return [
        ("x-request-id", request_id),
        ("openai-organization", "org-fake"),
        ("openai-processing-ms", "12"),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "29999000"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "2ms"),
    ]


def rate_limited_headers(provider: str, request_id: str, retry_after: int) -> list[tuple[str, str]]:
    if provider == "anthropic":
        return [
            ("request-id", request_id),
            ("retry-after", str(retry_after)),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", _rfc3339(retry_after)),
            ("anthropic-ratelimit-tokens-limit", "40000"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", _rfc3339(retry_after)),
        ]
    return [
        ("x-request-id", request_id),
        ("retry-after", str(retry_after)),
        ("x-ratelimit-limit-requests", "3"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", f"{retry_after}s"),
        ("x-ratelimit-limit-tokens", "40000"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", f"{retry_after}s"),
    ]
