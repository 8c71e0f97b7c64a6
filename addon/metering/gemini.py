"""Google Gemini (AI Studio) responses: ``generateContent``, ``streamGenerateContent`` and
``countTokens``.

A Gemini response, whether the body of ``generateContent`` or one chunk of a stream, is a
``GenerateContentResponse``: ``candidates[].content.parts[]``, ``usageMetadata`` (in a stream,
running totals), ``modelVersion``, ``responseId`` and, for a blocked prompt,
``promptFeedback.blockReason`` (still with usage, and no candidates). :class:`GeminiEvents`
folds them in one at a time: the last ``usageMetadata`` is the whole truth, as sent. A count it
leaves out is 0 (proto3 JSON omits zeros), even when an earlier chunk had it; a chunk without
``usageMetadata`` changes nothing.
:func:`parse_gemini` runs the same fold over a buffered body, which for ``gemini.stream`` may
be a whole JSON array or ``alt=sse`` text.

Errors are ``{"error": {"code", "message", "status"}}`` (a streamed array wraps the body in a
one-element list). The error kind is the ``status``, e.g. ``RESOURCE_EXHAUSTED``, or
``stream_error:<status>`` when it follows content. In an ``alt=sse`` stream an error arrives as
raw (multi-line) JSON instead of a ``data:`` line; the handler reads such an event's raw bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from addon.metering.normalise import (
    BAD_JSON,
    count,
    gemini_usage,
    load_json,
    mapping,
    text,
)
from addon.metering.sse import SseEvent, SseSplitter
from addon.metering.stream_state import StreamState
from addon.metering.usage import MeterResult


class GeminiEvents:
    """Gemini stream chunks (SSE events or JSON array elements) and buffered bodies."""

    can_strip = False

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self.chunks = 0  # responses read (errors not counted)

    def handle(self, event: SseEvent) -> bool:
        data = event.data
        if data is None:  # raw JSON (an error), or just blank lines, comments, a "]"
            raw = event.raw.strip()
            if not raw.startswith(b"{"):
                return False
            data = raw.decode("utf-8", errors="replace")
        obj = self.state.load(data)
        if obj is not None:
            self.read(obj)
        return False

    def read(self, obj: Mapping[str, Any]) -> None:
        """Fold one ``GenerateContentResponse`` (or error object) into the state."""
        if (error := obj.get("error")) is not None:
            kind = _error_status(error)
            if self.chunks:
                self.state.error(f"stream_error:{kind or 'unknown'}")
            else:
                self.state.error(kind or "error")
            return
        self.chunks += 1
        if metadata := mapping(obj, "usageMetadata"):
            self.state.usage = gemini_usage(metadata)  # the whole truth: an omitted count is 0
        state = self.state
        state.model = text(obj, "modelVersion") or state.model
        state.provider_request_id = text(obj, "responseId") or state.provider_request_id
        if reason := text(mapping(obj, "promptFeedback"), "blockReason"):
            state.extras["block_reason"] = reason
        candidates = obj.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            if isinstance(candidate, Mapping):
                self._candidate(candidate)

    def _candidate(self, candidate: Mapping[str, Any]) -> None:
        finish = text(candidate, "finishReason")
        if finish is not None and finish != "STOP":  # SAFETY, MAX_TOKENS, RECITATION, ...
            self.state.extras["finish_reason"] = finish
        parts = mapping(candidate, "content").get("parts")
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, Mapping):
                continue
            self.state.add_text(part.get("text"))  # answer text, and thought summaries
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                self.state.add_text(json.dumps(call, ensure_ascii=False, default=float))


def _error_status(error: object) -> str | None:
    details = error if isinstance(error, Mapping) else {}
    if status := text(details, "status"):
        return status
    code = details.get("code")
    return str(code) if isinstance(code, int) and not isinstance(code, bool) else None


def parse_gemini(api: str, body: bytes) -> MeterResult:
    """A buffered Gemini body of ``api`` (``gemini.generate``, ``gemini.stream``,
    ``gemini.count_tokens``, ``gemini.other``); see ``json_usage.parse_response``."""
    try:
        doc = load_json(body)
    except ValueError:
        return _parse_sse(body) if api == "gemini.stream" else MeterResult(error_kind=BAD_JSON)
    items = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(item, Mapping) for item in items):
        return MeterResult(error_kind=BAD_JSON)
    if api == "gemini.count_tokens":
        return _count_tokens(items)
    state = StreamState()
    handler = GeminiEvents(state)
    try:
        for item in items:
            handler.read(item)
    except ValueError:  # a usage object of the wrong shape
        return MeterResult(model=state.model, error_kind=BAD_JSON)
    return dataclasses.replace(state.result(), streamed=False)


def _parse_sse(body: bytes) -> MeterResult:
    """A whole ``alt=sse`` stream that was buffered rather than streamed."""
    state = StreamState()
    handler = GeminiEvents(state)
    splitter = SseSplitter()
    for event in splitter.feed(body) + splitter.flush():
        try:
            handler.handle(event)
        except ValueError:
            state.bad_events += 1
    if not handler.chunks and state.error_kind is None:
        return MeterResult(error_kind=BAD_JSON)
    return dataclasses.replace(state.result(), streamed=False)


def _count_tokens(items: list[Mapping[str, Any]]) -> MeterResult:
    """``{"totalTokens": N}``: free, so N goes to extras and usage stays None. proto3 JSON
    leaves out zero counts, so ``{}`` means 0."""
    if len(items) != 1:
        return MeterResult(error_kind=BAD_JSON)
    doc = items[0]
    if (error := doc.get("error")) is not None:
        return MeterResult(error_kind=_error_status(error) or "error")
    try:
        return MeterResult(extras={"counted_input_tokens": count(doc, "totalTokens")})
    except ValueError:
        return MeterResult(error_kind=BAD_JSON)
