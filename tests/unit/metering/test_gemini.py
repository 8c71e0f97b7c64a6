"""Gemini metering: generateContent bodies, both stream framings, errors and countTokens.

Payloads 15 and 16 are providers.md §1.12's; the rest vary them.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.metering import stream as stream_module
from addon.metering.gemini import GeminiEvents
from addon.metering.sse import SseEvent
from addon.metering.stream_state import StreamState
from addon.metering.usage import MeterResult, Usage
from addon.providers.wire import parse_response, stream_meter

MODEL = "gemini-2.5-flash"
SSE = "text/event-stream"
JSON = "application/json; charset=UTF-8"


def candidate(*texts: str, finish: str | None = None, **part: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": t} for t in texts] + ([part] if part else [])
    out: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        out["finishReason"] = finish
    return out


def response(*candidates: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"candidates": list(candidates)}
    if usage is not None:
        out["usageMetadata"] = usage
    return {**out, "modelVersion": MODEL, "responseId": "fx-gemini-0015"}


PAYLOAD_15_USAGE = {
    "promptTokenCount": 2100,
    "candidatesTokenCount": 40,
    "thoughtsTokenCount": 260,
    "cachedContentTokenCount": 2048,
    "totalTokenCount": 2400,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2100}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2048}],
}
PAYLOAD_15 = response(candidate("Hello from Gemini.", finish="STOP"), usage=PAYLOAD_15_USAGE)
PAYLOAD_15_RESULT = MeterResult(
    usage=Usage(2100, 2048, 0, 0, 300, 260),
    model=MODEL,
    provider_request_id="fx-gemini-0015",
    output_text="Hello from Gemini.",
)

# Payload 16: running totals 9 → 11 → 132; the last block adds 120 thoughts and STOP.
PAYLOAD_16 = [
    response(candidate("Hel"), usage={"promptTokenCount": 7, "candidatesTokenCount": 2,
                                      "totalTokenCount": 9}),
    response(candidate('lo, "{w}" [\\]'), usage={"promptTokenCount": 7, "candidatesTokenCount": 4,
                                                 "totalTokenCount": 11}),
    response(candidate("orld \u00e9\U0001f600", finish="STOP"),
             usage={"promptTokenCount": 7, "candidatesTokenCount": 5, "thoughtsTokenCount": 120,
                    "totalTokenCount": 132}),
]  # fmt: skip
PAYLOAD_16_RESULT = MeterResult(
    usage=Usage(7, 0, 0, 0, 125, 120),
    model=MODEL,
    provider_request_id="fx-gemini-0015",
    streamed=True,
    output_text='Hello, "{w}" [\\]orld \u00e9\U0001f600',
)
INTERNAL = {"error": {"code": 500, "message": "An internal error has occurred.",
                      "status": "INTERNAL"}}  # fmt: skip


def sse(*items: Any, sep: bytes = b"\r\n\r\n") -> bytes:
    return b"".join(b"data: " + json.dumps(item).encode() + sep for item in items)


def array(*items: Any) -> bytes:
    """Gemini's framing without alt=sse: pretty-printed objects, ``[{...}\\n,\\r\\n{...}\\n]``."""
    return ("[" + "\n,\r\n".join(json.dumps(item, indent=2) for item in items) + "\n]").encode()


def raw_error(error: Any = INTERNAL) -> bytes:
    """How an error arrives in an alt=sse stream: raw multi-line JSON, not a data: line."""
    return json.dumps(error, indent=2).encode() + b"\n"


def run(
    stream: bytes, content_type: str | None, cuts: list[int] | None = None, **kwargs: Any
) -> tuple[bytes, MeterResult]:
    """Feed ``stream`` to a gemini.stream meter cut at ``cuts`` (default: byte by byte)."""
    meter = stream_meter("gemini.stream", content_type=content_type, **kwargs)
    positions = sorted(set(cuts)) if cuts is not None else list(range(1, len(stream)))
    forwarded = []
    start = 0
    for cut in [*(p for p in positions if 0 < p < len(stream)), len(stream)]:
        chunk = stream[start:cut]
        start = cut
        if not chunk:  # an empty stream: the only call is the end of message below
            continue
        assert meter.feed(chunk) is chunk  # pass-through, unchanged and at once
        forwarded.append(chunk)
    assert meter.feed(b"") == []  # nothing held back, and never a zero-length chunk
    return b"".join(forwarded), meter.result()


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- buffered bodies --------------------------------------------------------------------------


def test_payload_15_generate_content() -> None:
    assert parse_response("gemini.generate", body(PAYLOAD_15)) == PAYLOAD_15_RESULT


def test_a_safety_blocked_prompt_still_records_its_usage() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": MODEL,
    }  # fmt: skip
    result = parse_response("gemini.generate", body(blocked))
    assert result == MeterResult(
        usage=Usage(12, 0, 0, 0, 0, 0), model=MODEL, extras={"block_reason": "SAFETY"}
    )


def test_finish_reasons_other_than_stop_are_kept() -> None:
    capped = response(candidate("Hel", finish="MAX_TOKENS"), usage=PAYLOAD_15_USAGE)
    assert parse_response("gemini.generate", body(capped)).extras == {"finish_reason": "MAX_TOKENS"}


def test_thoughts_function_calls_and_every_candidate_are_output_text() -> None:
    call = {"name": "get_weather", "args": {"city": "Paris", "days": 1.5}}
    thinking = candidate(functionCall=call)
    thinking["content"]["parts"].insert(0, {"text": "Let me think. ", "thought": True})
    doc = response(thinking, {**candidate("Second."), "index": 1})
    result = parse_response("gemini.generate", body(doc))
    assert result.output_text == (
        'Let me think. {"name": "get_weather", "args": {"city": "Paris", "days": 1.5}}Second.'
    )
    assert result.usage is None


def test_tool_use_prompt_tokens_are_input() -> None:
    usage = {"promptTokenCount": 100, "toolUsePromptTokenCount": 30, "candidatesTokenCount": 5,
             "totalTokenCount": 135}  # fmt: skip
    result = parse_response("gemini.generate", body(response(usage=usage)))
    assert result.usage == Usage(130, 0, 0, 0, 5, 0)


@pytest.mark.parametrize(
    ("api", "raw", "kind"),
    [
        ("gemini.generate", {"error": {
            "code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com"}]}}, "INVALID_ARGUMENT"),
        ("gemini.generate", {"error": {"code": 429, "message": "Resource has been exhausted.",
                                       "status": "RESOURCE_EXHAUSTED"}}, "RESOURCE_EXHAUSTED"),
        ("gemini.stream", [{"error": {"code": 503, "message": "The model is overloaded.",
                                      "status": "UNAVAILABLE"}}], "UNAVAILABLE"),
        ("gemini.other", {"error": {"code": 404, "message": "Not found."}}, "404"),
        ("gemini.count_tokens", {"error": {"code": 403, "status": "PERMISSION_DENIED"}},
         "PERMISSION_DENIED"),
        ("gemini.generate", {"error": "nope"}, "error"),
    ],
)  # fmt: skip
def test_error_bodies_give_their_status_and_no_usage(api: str, raw: Any, kind: str) -> None:
    result = parse_response(api, body(raw))
    assert (result.usage, result.error_kind) == (None, kind)


def test_count_tokens_is_free_and_reports_the_count_in_extras() -> None:
    result = parse_response("gemini.count_tokens", b'{"totalTokens": 2100}')
    assert result == MeterResult(extras={"counted_input_tokens": 2100})
    # proto3 JSON leaves zero counts out
    assert parse_response("gemini.count_tokens", b"{}").extras == {"counted_input_tokens": 0}


@pytest.mark.parametrize(
    ("api", "raw"),
    [
        ("gemini.generate", b"<html>502</html>"),
        ("gemini.generate", b"[1]"),
        ("gemini.generate", body(response(usage={"promptTokenCount": "12"}))),
        ("gemini.generate", body(response(usage={"thoughtsTokenCount": -1}))),
        ("gemini.generate", body({"candidates": [{"content": "text"}]})),
        ("gemini.stream", b"not a stream"),
        ("gemini.count_tokens", b'{"totalTokens": "31"}'),
        ("gemini.count_tokens", b"[{}, {}]"),
    ],
)
def test_unreadable_bodies_are_bad_json(api: str, raw: bytes) -> None:
    assert parse_response(api, raw).error_kind == "bad_json"


@pytest.mark.parametrize(
    "raw", [array(*PAYLOAD_16), sse(*PAYLOAD_16), sse(*PAYLOAD_16, sep=b"\n\n")]
)
def test_a_buffered_stream_is_read_like_a_streamed_one(raw: bytes) -> None:
    result = parse_response("gemini.stream", raw)
    assert result == MeterResult(**{**vars(PAYLOAD_16_RESULT), "streamed": False})


def test_a_buffered_sse_stream_with_an_error_after_content() -> None:
    result = parse_response("gemini.stream", sse(*PAYLOAD_16[:2]) + raw_error())
    assert result.error_kind == "stream_error:INTERNAL"
    assert result.usage == Usage(7, 0, 0, 0, 4, 0)


# --- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "content_type"),
    [
        (sse(*PAYLOAD_16), SSE),
        (sse(*PAYLOAD_16, sep=b"\n\n"), SSE),
        (array(*PAYLOAD_16), JSON),
        (sse(*PAYLOAD_16), None),  # sniffed
        (array(*PAYLOAD_16), None),
    ],
    ids=["sse-crlf", "sse-lf", "array", "sniffed-sse", "sniffed-array"],
)
def test_payload_16_split_at_every_byte(stream: bytes, content_type: str | None) -> None:
    forwarded, result = run(stream, content_type)
    assert forwarded == stream
    assert result == PAYLOAD_16_RESULT


def test_a_chunk_without_usage_metadata_resets_nothing() -> None:
    bare = response(candidate("!"))
    _, result = run(array(*PAYLOAD_16, bare), JSON, cuts=[])
    assert result.usage == PAYLOAD_16_RESULT.usage
    assert result.output_text.endswith("!")


def test_the_last_usage_metadata_is_the_whole_truth_never_a_sum() -> None:
    first = response(candidate("a"), usage={**PAYLOAD_15_USAGE, "candidatesTokenCount": 10,
                                            "totalTokenCount": 2370})  # fmt: skip
    # the last snapshot leaves out counts that are zero (proto3 JSON): they are 0, not the
    # earlier chunks' values (gemini-stream-stream-reasoning-05 in the recorded traffic)
    last = response(candidate("b"), usage={"promptTokenCount": 2100, "candidatesTokenCount": 40,
                                           "totalTokenCount": 2400})  # fmt: skip
    _, result = run(sse(first, first, last), SSE, cuts=[])
    assert result.usage == Usage(2100, 0, 0, 0, 40, 0)


def test_a_last_usage_metadata_without_candidates_count_means_no_candidate_tokens() -> None:
    early = response(candidate("a"), usage={"promptTokenCount": 9, "candidatesTokenCount": 3,
                                            "totalTokenCount": 12})  # fmt: skip
    last = response(candidate(""), usage={"promptTokenCount": 9, "thoughtsTokenCount": 20,
                                          "totalTokenCount": 29})  # fmt: skip
    _, result = run(array(early, last), JSON, cuts=[])
    assert result.usage == Usage(9, 0, 0, 0, 20, 20)


@pytest.mark.parametrize(
    ("stream", "content_type"),
    [
        (sse(*PAYLOAD_16[:2]) + raw_error(), SSE),
        (sse(*PAYLOAD_16[:2]) + b"data: " + body(INTERNAL) + b"\r\n\r\n", SSE),
        (sse(*PAYLOAD_16[:2]) + raw_error() + b"\r\n", SSE),
        (array(*PAYLOAD_16[:2], INTERNAL), JSON),
    ],
    ids=["raw-json", "data-line", "raw-json-blank-line", "array-element"],
)
def test_mid_stream_errors(stream: bytes, content_type: str) -> None:
    _, result = run(stream, content_type)
    assert result.error_kind == "stream_error:INTERNAL"
    assert result.usage == Usage(7, 0, 0, 0, 4, 0)  # what the stream reported before
    assert result.output_text == 'Hello, "{w}" [\\]'
    assert result.extras == {}


@pytest.mark.parametrize(
    ("stream", "content_type"),
    [(raw_error(), SSE), (array(INTERNAL), JSON), (body(INTERNAL), JSON), (raw_error(), None)],
)
def test_an_error_before_any_content_is_the_bare_status(stream: bytes, content_type: str) -> None:
    _, result = run(stream, content_type, cuts=[])
    assert (result.error_kind, result.usage) == ("INTERNAL", None)


def test_comments_and_junk_are_ignored_or_counted() -> None:
    stream = b": keep-alive\r\n\r\n" + sse(*PAYLOAD_16) + b"data: {broken\r\n\r\n"
    _, result = run(stream, SSE, cuts=[])
    assert result.usage == PAYLOAD_16_RESULT.usage
    assert result.extras == {"bad_events": 1}
    _, result = run(b"<html>oops</html>", JSON, cuts=[])
    assert (result.usage, result.extras) == (None, {"bad_events": 1})


def test_a_cut_array_keeps_what_arrived_and_counts_the_torn_object() -> None:
    stream = array(*PAYLOAD_16)
    cut = stream.index(b'"orld')
    _, result = run(stream[:cut], JSON, cuts=[])
    assert result.usage == Usage(7, 0, 0, 0, 4, 0)
    assert result.extras == {"bad_events": 1}


def test_compressed_array_stream_is_metered_and_forwarded_unchanged() -> None:
    compressed = gzip.compress(array(*PAYLOAD_16))
    forwarded, result = run(compressed, JSON, cuts=list(range(0, len(compressed), 11)),
                            content_encoding="gzip")  # fmt: skip
    assert forwarded == compressed
    assert result == PAYLOAD_16_RESULT


def test_an_oversized_object_stops_metering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "MAX_PENDING_BYTES", 64)
    stream = array(PAYLOAD_16[0], response(candidate("x" * 200)))
    forwarded, result = run(stream, JSON, cuts=[stream.index(b"xxx") + 100])
    assert forwarded == stream
    assert result.extras == {"meter_overflow": True}


def test_the_handler_ignores_dataless_events_that_are_not_json() -> None:
    state = StreamState()
    handler = GeminiEvents(state)
    for raw in (b"\r\n", b": comment\n\n", b"\n]", b""):
        assert handler.handle(SseEvent(None, None, raw)) is False
    assert state.result() == MeterResult(streamed=True)


STREAMS = [
    (sse(*PAYLOAD_16), SSE, None),
    (array(*PAYLOAD_16), JSON, None),
    (sse(*PAYLOAD_16[:2]) + raw_error(), SSE, None),
    (array(*PAYLOAD_16[:2], INTERNAL), JSON, None),
    (array(*PAYLOAD_16), None, None),
    (gzip.compress(array(*PAYLOAD_16)), JSON, "gzip"),
    (gzip.compress(sse(*PAYLOAD_16)), SSE, "gzip"),
]


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(STREAMS), cuts=st.lists(st.integers(min_value=1, max_value=2000)))
def test_any_chunking_gives_the_same_result_and_bytes(
    case: tuple[bytes, str | None, str | None], cuts: list[int]
) -> None:
    stream, content_type, encoding = case
    whole, expected = run(stream, content_type, cuts=[], content_encoding=encoding)
    pieces, result = run(stream, content_type, cuts=cuts, content_encoding=encoding)
    assert result == expected
    assert pieces == whole == stream
    assert expected.usage is not None and expected.output_text


@settings(max_examples=200, deadline=None)
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from([SSE, JSON, None]),
    cuts=st.lists(st.integers(min_value=1, max_value=300)),
)
def test_never_raises_and_always_forwards(
    raw: bytes, content_type: str | None, cuts: list[int]
) -> None:
    forwarded, result = run(raw, content_type, cuts=cuts)
    assert forwarded == raw
    assert result.streamed
