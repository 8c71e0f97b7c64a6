"""What each provider's stream events mean for metering.

One handler per stream dialect (Gemini's is in ``gemini.py``). ``handle`` meters one complete
SSE event and returns True when the event is an OpenAI-style usage-only chunk (non-null
``usage`` and ``choices == []``), which the stream meter may strip. Usage is always the last
value the stream reported, never a sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from addon.metering.gemini import GeminiEvents
from addon.metering.normalise import (
    anthropic_usage,
    mapping,
    openai_usage,
    provider_cost,
    responses_usage,
    text,
)
from addon.metering.sse import SseEvent
from addon.metering.stream_state import StreamState


class EventHandler(Protocol):
    can_strip: bool

    def handle(self, event: SseEvent) -> bool: ...


def _first_text(obj: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        if value := text(obj, key):
            return value
    return None


class OpenAIChatEvents:
    """Chat Completions and legacy Completions streams (and OpenAI-compatible providers)."""

    can_strip = True

    def __init__(self, state: StreamState) -> None:
        self.state = state

    def handle(self, event: SseEvent) -> bool:
        if event.data is None:
            return False
        if event.data.strip() == "[DONE]":
            self.state.finished = True
            return False
        obj = self.state.load(event.data)
        if obj is None:
            if event.event == "error":
                self.state.error("stream_error:unknown")
            return False
        error = obj.get("error")
        if error or event.event == "error":
            details = error if isinstance(error, Mapping) else {}
            self.state.error(f"stream_error:{_error_code(details)}")
            self._usage(obj)  # OpenRouter ends a failed generation with its final usage here
            return False
        self.state.model = text(obj, "model") or self.state.model
        if tier := text(obj, "service_tier"):
            self.state.extras["service_tier"] = tier
        self._usage(obj)
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, Mapping):
                self._choice_text(choice)
        return obj.get("usage") is not None and choices == []

    def _usage(self, obj: Mapping[str, Any]) -> None:
        """Usage in ``obj``, the last one wins. Reported with or after an error, it is the
        provider's account of the whole exchange (``usage_final``), not a partial count."""
        usage = mapping(obj, "usage") or mapping(mapping(obj, "x_groq"), "usage")
        if not usage:
            return
        self.state.usage = openai_usage(usage)
        if self.state.error_kind is not None:
            self.state.usage_final = True
        if (cost := provider_cost(usage)) is not None:
            self.state.extras["provider_cost"] = cost

    def _choice_text(self, choice: Mapping[str, Any]) -> None:
        self.state.add_text(choice.get("text"))  # legacy completions
        delta = mapping(choice, "delta")
        for key in ("content", "refusal", "reasoning_content", "reasoning"):
            self.state.add_text(delta.get(key))
        tool_calls = delta.get("tool_calls")
        for call in tool_calls if isinstance(tool_calls, list) else ():
            if isinstance(call, Mapping):
                self.state.add_text(mapping(call, "function").get("arguments"))
        self.state.add_text(mapping(delta, "function_call").get("arguments"))


def _error_code(details: Mapping[str, Any]) -> str:
    """An OpenAI-style error's type or code; OpenRouter's code is the HTTP status number."""
    code = details.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return _first_text(details, "type") or str(code)
    return _first_text(details, "type", "code") or "unknown"


_RESPONSES_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
_RESPONSES_TEXT = {
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
}


class ResponsesEvents:
    """OpenAI Responses API streams: usage only in the terminal ``response.*`` event."""

    can_strip = False

    def __init__(self, state: StreamState) -> None:
        self.state = state

    def handle(self, event: SseEvent) -> bool:
        obj = self.state.load(event.data) if event.data is not None else None
        kind = (text(obj, "type") if obj else None) or event.event or ""
        if kind == "error":
            details = obj or {}
            nested = mapping(details, "error")
            code = _first_text(details, "code") or _first_text(nested, "code", "type")
            self.state.error(f"stream_error:{code or 'unknown'}")
        elif obj is None:
            return False
        elif kind in _RESPONSES_TEXT:
            self.state.add_text(obj.get("delta"))
        elif kind.startswith("response."):
            self._response(kind, mapping(obj, "response"))
        return False

    def _response(self, kind: str, response: Mapping[str, Any]) -> None:
        self.state.model = text(response, "model") or self.state.model
        if tier := text(response, "service_tier"):
            self.state.extras["service_tier"] = tier
        if kind not in _RESPONSES_TERMINAL:
            return
        self.state.finished = True
        if usage := mapping(response, "usage"):
            self.state.usage = responses_usage(usage)
        if kind == "response.failed":
            code = text(mapping(response, "error"), "code")
            self.state.error(f"response_failed:{code}" if code else "response_failed")
        if reason := text(mapping(response, "incomplete_details"), "reason"):
            self.state.extras["incomplete_reason"] = reason


_ANTHROPIC_TEXT = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


class AnthropicEvents:
    """Anthropic Messages streams: ``message_start`` usage, then cumulative ``message_delta``."""

    can_strip = False

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self._usage: dict[str, Any] = {}  # message_start usage, overlaid by later deltas

    def handle(self, event: SseEvent) -> bool:
        obj = self.state.load(event.data) if event.data is not None else None
        kind = (text(obj, "type") if obj else None) or event.event or ""
        if kind == "error":
            error_type = text(mapping(obj or {}, "error"), "type")
            self.state.error(f"stream_error:{error_type or 'unknown'}")
        elif obj is None or kind == "ping":
            return False
        elif kind == "message_stop":
            self.state.finished = True
        elif kind == "message_start":
            message = mapping(obj, "message")
            self.state.model = text(message, "model") or self.state.model
            self._update_usage(mapping(message, "usage"), replace=True)
        elif kind == "message_delta":
            self._update_usage(mapping(obj, "usage"), replace=False)
        elif kind == "content_block_delta":
            delta = mapping(obj, "delta")
            field = _ANTHROPIC_TEXT.get(text(delta, "type") or "")
            if field is not None:
                self.state.add_text(delta.get(field))
        return False

    def _update_usage(self, usage: Mapping[str, Any], *, replace: bool) -> None:
        if not usage:
            return
        if replace:
            self._usage = {}
        self._usage.update((k, v) for k, v in usage.items() if v is not None)
        self.state.usage = anthropic_usage(self._usage)
        if tier := text(self._usage, "service_tier"):
            self.state.extras["service_tier"] = tier


def openai_events(api: str, state: StreamState) -> EventHandler:
    """The handler of an OpenAI-style stream: the Responses API's, or the chat one."""
    if api == "openai.responses":
        return ResponsesEvents(state)
    return OpenAIChatEvents(state)


def anthropic_events(api: str, state: StreamState) -> EventHandler:
    return AnthropicEvents(state)


def gemini_events(api: str, state: StreamState) -> EventHandler:
    return GeminiEvents(state)
