"""Stream event handlers, called directly with single events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.metering.gemini import GeminiEvents
from addon.metering.sse import SseEvent
from addon.metering.stream_events import (
    AnthropicEvents,
    EventHandler,
    OpenAIChatEvents,
    ResponsesEvents,
)
from addon.metering.stream_state import StreamState
from addon.providers.wire import wire_for


def handler_for(api: str, state: StreamState) -> EventHandler:
    """The handler the wire format of ``api`` meters its streams with."""
    return wire_for(api).stream_events(api, state)


def event(data: Any, name: str | None = None) -> SseEvent:
    text = data if isinstance(data, str) or data is None else json.dumps(data)
    return SseEvent(name, text, b"")


@pytest.mark.parametrize(
    ("chunk", "usage_only"),
    [
        ({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}, True),
        ({"choices": [], "usage": {}}, True),
        ({"choices": [], "prompt_filter_results": []}, False),  # Azure's first chunk
        ({"choices": [], "usage": None}, False),
        ({"choices": [{"delta": {}}], "usage": {"prompt_tokens": 1}}, False),
        ({"usage": {"prompt_tokens": 1}}, False),
        ({"choices": [], "x_groq": {"usage": {"prompt_tokens": 1}}}, False),
    ],
)
def test_only_a_non_null_usage_with_empty_choices_is_usage_only(
    chunk: dict[str, Any], usage_only: bool
) -> None:
    assert OpenAIChatEvents(StreamState()).handle(event(chunk)) is usage_only


def test_usage_in_a_chunk_that_also_carries_an_error_is_read_as_final() -> None:
    """OpenRouter ends a failed generation with one chunk holding both ``error`` and the
    final ``usage`` (openrouter-chat-stream-reasoning-01 in the recorded traffic)."""
    state = StreamState()
    handler = OpenAIChatEvents(state)
    handler.handle(event({"choices": [{"delta": {"content": "We need"}}]}))
    handler.handle(event({"error": {"code": 400, "message": "Token limit reached"},
                          "choices": [{"delta": {"content": ""}}],
                          "usage": {"prompt_tokens": 43, "completion_tokens": 10,
                                    "total_tokens": 53, "cost": 0}}))  # fmt: skip
    result = state.result()
    assert result.error_kind == "stream_error:400"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (43, 10)
    assert result.usage_final and result.extras["provider_cost"] == "0"


def test_usage_before_an_error_is_not_final() -> None:
    state = StreamState()
    handler = OpenAIChatEvents(state)
    handler.handle(event({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}))
    handler.handle(event({"error": {"type": "server_error"}}))
    assert state.result().error_kind == "stream_error:server_error"
    assert not state.result().usage_final


def test_done_and_dataless_events_are_ignored() -> None:
    state = StreamState()
    handler = OpenAIChatEvents(state)
    assert handler.handle(event("[DONE]")) is False
    assert handler.handle(event(None, "ping")) is False
    assert state.result().extras == {}


@pytest.mark.parametrize(
    ("handler_type", "api"),
    [(OpenAIChatEvents, "openai.chat"), (ResponsesEvents, "openai.responses"),
     (AnthropicEvents, "anthropic.messages")],
)  # fmt: skip
def test_an_error_event_that_is_not_json_still_counts(handler_type: type, api: str) -> None:
    state = StreamState()
    handler = handler_for(api, state)
    assert isinstance(handler, handler_type)
    handler.handle(event("upstream went away", "error"))
    assert state.error_kind == "stream_error:unknown"


def test_anthropic_event_type_comes_from_the_json_when_the_event_line_is_missing() -> None:
    state = StreamState()
    AnthropicEvents(state).handle(
        event({"type": "message_start", "message": {"model": "claude-x", "usage": {
            "input_tokens": 3, "output_tokens": 1}}})
    )  # fmt: skip
    assert (state.model, state.usage is not None) == ("claude-x", True)


@pytest.mark.parametrize("api", ["gemini.stream", "gemini.generate", "gemini.other"])
def test_gemini_apis_get_the_gemini_handler_which_never_strips(api: str) -> None:
    handler = handler_for(api, StreamState())
    assert isinstance(handler, GeminiEvents)
    assert handler.can_strip is False


@pytest.mark.parametrize(
    "handler_type", [OpenAIChatEvents, ResponsesEvents, AnthropicEvents, GeminiEvents]
)
def test_blank_and_comment_only_events_are_ignored(handler_type: type) -> None:
    state = StreamState()
    handler = handler_type(state)
    for raw in (b"\n", b"\r\n", b": keep-alive\n\n"):
        assert handler.handle(SseEvent(None, None, raw)) is False
    assert state.result().extras == {}
