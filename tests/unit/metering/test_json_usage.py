"""Usage from buffered JSON responses, on the example payloads of providers.md §1.12."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.metering.json_usage import parse_anthropic, parse_openai
from addon.metering.usage import MeterResult, Usage
from addon.providers.wire import parse_response


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


OPENAI_CHAT: dict[str, Any] = {
    "id": "chatcmpl-fx0001",
    "object": "chat.completion",
    "created": 1_760_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi!", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
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
    },
    "service_tier": "default",
}
OPENAI_REASONING: dict[str, Any] = {
    **OPENAI_CHAT,
    "id": "chatcmpl-fx0002",
    "model": "o4-mini-2025-04-16",
    "usage": {
        "prompt_tokens": 300,
        "completion_tokens": 520,
        "total_tokens": 820,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 512},
    },
}
OPENAI_LEGACY: dict[str, Any] = {
    "id": "cmpl-fx0006",
    "object": "text_completion",
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"text": "Hello", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}
OPENAI_EMBEDDINGS: dict[str, Any] = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}
RESPONSES: dict[str, Any] = {
    "id": "resp_fx0008",
    "object": "response",
    "status": "completed",
    "model": "gpt-5-mini-2025-08-07",
    "output": [
        {"type": "reasoning", "id": "rs_fx", "summary": []},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}],
        },
    ],
    "usage": {
        "input_tokens": 2048,
        "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
        "output_tokens": 180,
        "output_tokens_details": {"reasoning_tokens": 128},
        "total_tokens": 2228,
    },
}
ANTHROPIC: dict[str, Any] = {
    "id": "msg_fx0011",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 25,
        "cache_creation_input_tokens": 1800,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 1800, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 12,
        "service_tier": "standard",
    },
}
DEEPSEEK: dict[str, Any] = {
    "id": "fx0017",
    "object": "chat.completion",
    "model": "deepseek-chat",
    "choices": [],
    "usage": {
        "prompt_tokens": 1500,
        "completion_tokens": 80,
        "total_tokens": 1580,
        "prompt_cache_hit_tokens": 1280,
        "prompt_cache_miss_tokens": 220,
    },
}


@pytest.mark.parametrize(
    ("api", "payload", "expected"),
    [
        ("openai.chat", OPENAI_CHAT, Usage(1200, 1024, 0, 0, 40, 0)),
        ("openai.chat", OPENAI_REASONING, Usage(300, 0, 0, 0, 520, 512)),
        ("openai.completions", OPENAI_LEGACY, Usage(5, 0, 0, 0, 7, 0)),
        ("openai.embeddings", OPENAI_EMBEDDINGS, Usage(8, 0, 0, 0, 0, 0)),
        ("openai.responses", RESPONSES, Usage(2048, 1536, 0, 0, 180, 128)),
        ("anthropic.messages", ANTHROPIC, Usage(1825, 0, 1800, 0, 12, 0)),
        ("openai.chat", DEEPSEEK, Usage(1500, 1280, 0, 0, 80, 0)),
    ],
    ids=["chat", "reasoning", "legacy", "embeddings", "responses", "anthropic", "deepseek"],
)
def test_example_payloads_normalise_exactly(api: str, payload: Any, expected: Usage) -> None:
    result = parse_response(api, body(payload))
    assert result.usage == expected
    assert result.model == payload["model"]
    assert result.error_kind is None
    assert result.streamed is False
    assert result.provider_request_id is None  # request ids come from headers


def test_service_tier_is_kept_for_pricing() -> None:
    assert parse_response("openai.chat", body(OPENAI_CHAT)).extras == {"service_tier": "default"}
    anthropic = parse_response("anthropic.messages", body(ANTHROPIC))
    assert anthropic.extras == {"service_tier": "standard"}


def test_anthropic_one_hour_cache_writes_and_thinking() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 500,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 300,
        "output_tokens_details": {"thinking_tokens": 250},
    }
    result = parse_response("anthropic.messages", body({**ANTHROPIC, "usage": usage}))
    assert result.usage == Usage(3510, 500, 3000, 2000, 300, 250)


def test_openai_cache_writes() -> None:
    usage = {
        "prompt_tokens": 900,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 700},
    }
    result = parse_response("openai.chat", body({**OPENAI_CHAT, "usage": usage}))
    assert result.usage == Usage(900, 100, 700, 0, 3, 0)


def test_responses_shaped_usage_on_another_openai_endpoint() -> None:
    result = parse_response("openai.other", body({"usage": RESPONSES["usage"]}))
    assert result.usage == Usage(2048, 1536, 0, 0, 180, 128)


def test_deepseek_cache_hits_yield_to_prompt_tokens_details() -> None:
    usage = {**DEEPSEEK["usage"], "prompt_tokens_details": {"cached_tokens": 1000}}
    result = parse_response("openai.chat", body({**DEEPSEEK, "usage": usage}))
    assert result.usage is not None
    assert result.usage.cached_input_tokens == 1000


def test_groq_usage_under_x_groq() -> None:
    groq = {"model": "llama-3.3-70b-versatile", "x_groq": {"id": "req_fx", "usage": {
        "prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}}  # fmt: skip
    assert parse_response("openai.chat", body(groq)).usage == Usage(30, 0, 0, 0, 9, 0)


@pytest.mark.parametrize(
    ("raw_cost", "expected"),
    [(b"0.0000303", "0.0000303"), (b"3.03e-5", "0.0000303"), (b"0", "0"), (b"1.5", "1.5")],
)
def test_openrouter_cost_is_kept_exactly_as_a_string(raw_cost: bytes, expected: str) -> None:
    payload = (
        b'{"model":"openai/gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":2,'
        b'"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"cost":'
        + raw_cost
        + b"}}"
    )
    result = parse_response("openai.chat", payload)
    assert result.extras["provider_cost"] == expected
    assert result.usage == Usage(10, 0, 0, 0, 2, 0)


def test_count_tokens_is_free_and_reports_the_count_in_extras() -> None:
    result = parse_response("anthropic.count_tokens", b'{"input_tokens": 2095}')
    assert result == MeterResult(usage=None, extras={"counted_input_tokens": 2095})


def test_openai_responses_input_tokens_is_a_free_count() -> None:
    body = b'{"input_tokens": 16, "object": "response.input_tokens"}'
    result = parse_response("openai.count_tokens", body)
    assert result == MeterResult(usage=None, extras={"counted_input_tokens": 16})


@pytest.mark.parametrize(
    ("api", "payload", "kind"),
    [
        (
            "openai.chat",
            {"error": {"message": "Incorrect API key provided: sk-…1234.",
                       "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
            "invalid_api_key",
        ),
        (
            "openai.chat",
            {"error": {"message": "quota", "type": "insufficient_quota",
                       "param": None, "code": "insufficient_quota"}},
            "insufficient_quota",
        ),
        (
            "openai.responses",
            {"error": {"message": "The server had an error", "type": "server_error",
                       "param": None, "code": None}},
            "server_error",
        ),
        (
            "anthropic.messages",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
             "request_id": "req_fx"},
            "overloaded_error",
        ),
        (
            "anthropic.count_tokens",
            {"type": "error", "error": {"type": "authentication_error",
                                        "message": "invalid x-api-key"}},
            "authentication_error",
        ),
        ("openai.other", {"error": "model not found"}, "error"),
    ],
)  # fmt: skip
def test_provider_error_bodies_give_their_kind_and_no_usage(
    api: str, payload: Any, kind: str
) -> None:
    result = parse_response(api, body(payload))
    assert result.usage is None
    assert result.error_kind == kind


def test_a_body_without_usage_is_not_an_error() -> None:
    result = parse_response("openai.chat", body({"model": "gpt-4o", "choices": []}))
    assert result == MeterResult(model="gpt-4o")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        body(OPENAI_CHAT)[:-7],  # truncated
        b"[1, 2]",
        b'"usage"',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        body({"model": "m", "usage": {"prompt_tokens": "12"}}),
        body({"model": "m", "usage": {"prompt_tokens": -1}}),
        body({"model": "m", "usage": {"prompt_tokens": True}}),
        body({"model": "m", "usage": {"prompt_tokens": 1.5}}),
        body({"model": "m", "usage": [1, 2]}),
        body({"model": "m", "usage": {"prompt_tokens_details": "x"}}),
    ],
)
def test_unreadable_bodies_are_bad_json(raw: bytes) -> None:
    assert parse_response("openai.chat", raw).error_kind == "bad_json"


def test_count_tokens_without_a_count_is_bad_json() -> None:
    assert parse_response("anthropic.count_tokens", b"{}").error_kind == "bad_json"


def test_integral_floats_are_accepted_as_counts() -> None:
    raw = b'{"usage": {"prompt_tokens": 12.0, "completion_tokens": 3}}'
    assert parse_response("openai.chat", raw).usage == Usage(12, 0, 0, 0, 3, 0)


APIS = [
    "openai.chat",
    "openai.completions",
    "openai.embeddings",
    "openai.responses",
    "openai.other",
    "anthropic.messages",
    "anthropic.count_tokens",
    "anthropic.other",
    "gemini.generate",
    "gemini.stream",
    "gemini.count_tokens",
    "gemini.other",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
USAGE_KEYS = st.sampled_from(
    ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cost",
     "prompt_tokens_details", "cache_creation", "cache_read_input_tokens", "cached_tokens",
     "promptTokenCount", "thoughtsTokenCount", "totalTokenCount", "content", "parts",
     "blockReason", "status", "code"]
)  # fmt: skip


@given(api=st.sampled_from(APIS), raw=st.binary())
def test_never_raises_on_arbitrary_bytes(api: str, raw: bytes) -> None:
    assert isinstance(parse_response(api, raw), MeterResult)


@given(
    api=st.sampled_from(APIS),
    doc=st.dictionaries(
        st.sampled_from(
            [
                "usage",
                "model",
                "error",
                "type",
                "x_groq",
                "input_tokens",
                "usageMetadata",
                "candidates",
                "promptFeedback",
                "totalTokens",
            ]
        ),
        JSON_VALUES | st.dictionaries(USAGE_KEYS, JSON_VALUES, max_size=4),
        max_size=4,
    ),
)
def test_never_raises_on_arbitrary_shapes(api: str, doc: dict[str, Any]) -> None:
    result = parse_response(api, body(doc))
    assert result.error_kind is None or isinstance(result.error_kind, str)


def test_each_format_has_its_own_reader() -> None:
    """The wire formats dispatch here: OpenAI-style and Anthropic-style bodies."""
    assert parse_openai("openai.chat", body(OPENAI_CHAT)) == parse_response(
        "openai.chat", body(OPENAI_CHAT)
    )
    assert (
        parse_anthropic("anthropic.messages", body(ANTHROPIC)).usage
        == parse_response("anthropic.messages", body(ANTHROPIC)).usage
    )
    counted = parse_anthropic("anthropic.count_tokens", b'{"input_tokens": 4}')
    assert counted.extras == {"counted_input_tokens": 4}
