"""Anthropic's wire format: classification, meters, error shape."""

from __future__ import annotations

import json

from addon.errors import UpstreamTimeout
from addon.metering.stream_events import AnthropicEvents
from addon.metering.stream_state import StreamState
from addon.providers.anthropic_style import ANTHROPIC_STYLE, classify


def test_only_messages_is_a_token_api_and_count_tokens_is_free() -> None:
    assert classify("POST", "/v1/messages") in ANTHROPIC_STYLE.token_apis
    assert classify("POST", "/v1/messages/count_tokens") in ANTHROPIC_STYLE.free_apis
    assert ANTHROPIC_STYLE.media_apis == frozenset()
    assert ANTHROPIC_STYLE.include_usage_apis == frozenset()


def test_streams_are_read_by_the_anthropic_handler() -> None:
    handler = ANTHROPIC_STYLE.stream_events("anthropic.messages", StreamState())
    assert isinstance(handler, AnthropicEvents)


def test_buffered_answers_are_read_with_anthropic_token_semantics() -> None:
    body = b'{"model": "claude", "usage": {"input_tokens": 3, "cache_read_input_tokens": 2}}'
    usage = ANTHROPIC_STYLE.parse_json("anthropic.messages", body).usage
    assert usage is not None and (usage.input_tokens, usage.cached_input_tokens) == (5, 2)


def test_prompt_text_reads_system_and_messages() -> None:
    body = {"system": "be brief", "messages": [{"role": "user", "content": "hi"}]}
    assert ANTHROPIC_STYLE.prompt_text("anthropic.messages", body) == "be brief\nhi"


def test_a_timeout_is_a_timeout_error_with_a_fresh_request_id() -> None:
    status, body, headers = ANTHROPIC_STYLE.render_error(UpstreamTimeout("slow"))
    doc = json.loads(body)
    assert (status, doc["type"], doc["error"]["type"]) == (504, "error", "timeout_error")
    assert headers["request-id"].startswith("req_tk_")
    other = ANTHROPIC_STYLE.render_error(UpstreamTimeout("slow"))[2]["request-id"]
    assert other != headers["request-id"]
