"""StreamMeter: byte-identical pass-through, usage-chunk stripping, encodings, never raising."""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from typing import Any

import brotli
import pytest
from backports import zstd
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.metering import stream as stream_module
from addon.metering.stream import StreamMeter
from addon.metering.usage import MeterResult, Usage
from addon.providers.wire import stream_meter


def sse(obj: Any, event: str | None = None, sep: bytes = b"\n") -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    head = f"event: {event}{sep.decode()}" if event else ""
    return (head + f"data: {data}").encode() + sep + sep


CHAT_MODEL = "gpt-4o-mini-2024-07-18"


def chat_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> Any:
    choices = [] if delta is None else [
        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    ]  # fmt: skip
    return {
        "id": "chatcmpl-fx0003",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": CHAT_MODEL,
        "system_fingerprint": "fp_fx",
        "choices": choices,
        **extra,
    }


CHAT_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 2,
    "total_tokens": 14,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def chat_events(*, with_usage: bool, sep: bytes = b"\n") -> list[bytes]:
    """Payload 3 (include_usage: 5 chunks + [DONE]) or payload 4 (no usage keys at all)."""
    extra: dict[str, Any] = {"usage": None} if with_usage else {}
    events = [
        sse(chat_chunk({"role": "assistant", "content": ""}, **extra), sep=sep),
        sse(chat_chunk({"content": "Hello"}, **extra), sep=sep),
        sse(chat_chunk({"content": "!"}, **extra), sep=sep),
        sse(chat_chunk({}, "stop", **extra), sep=sep),
    ]
    if with_usage:
        events.append(sse(chat_chunk(None, usage=CHAT_USAGE), sep=sep))
    return [*events, sse("[DONE]", sep=sep)]


AZURE_FILTER = sse(
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
        ],
    }
)


def responses_event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, "sequence_number": 0, **fields}, event=kind)


RESPONSES_MODEL = "gpt-5-mini-2025-08-07"
RESPONSES_USAGE = {
    "input_tokens": 2048,
    "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
    "output_tokens": 180,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 2228,
}


def response_obj(status: str, usage: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": "resp_fx0009", "object": "response", "status": status,
            "model": RESPONSES_MODEL, "output": [], "usage": usage, **extra}  # fmt: skip


RESPONSES_EVENTS = [
    responses_event("response.created", response=response_obj("in_progress")),
    responses_event("response.in_progress", response=response_obj("in_progress")),
    responses_event("response.output_item.added", output_index=0, item={"type": "message"}),
    responses_event("response.content_part.added", output_index=0, content_index=0),
    responses_event("response.output_text.delta", item_id="msg_fx", delta="Hi"),
    responses_event("response.output_text.delta", item_id="msg_fx", delta=" there"),
    responses_event("response.output_text.done", item_id="msg_fx", text="Hi there"),
    responses_event("response.content_part.done", output_index=0, content_index=0),
    responses_event("response.output_item.done", output_index=0, item={"type": "message"}),
    responses_event("response.completed", response=response_obj("completed", RESPONSES_USAGE)),
]


def anthropic_event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)


ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"
ANTHROPIC_START = anthropic_event(
    "message_start",
    message={
        "id": "msg_fx0012", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [], "stop_reason": None,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 1800, "output_tokens": 1},
    },
)  # fmt: skip
ANTHROPIC_HEAD = [
    ANTHROPIC_START,
    anthropic_event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    anthropic_event("ping"),
    anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hello"}),
]
ANTHROPIC_EVENTS = [
    *ANTHROPIC_HEAD,
    anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": "!"}),
    anthropic_event("content_block_stop", index=0),
    anthropic_event(
        "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 15}
    ),
    anthropic_event("message_stop"),
]
ANTHROPIC_OVERLOADED = [
    *ANTHROPIC_HEAD,
    sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        event="error"),
]  # fmt: skip


def run(
    meter: StreamMeter, stream: bytes, cuts: list[int] | None = None, *, end: bool = True
) -> tuple[list[bytes], MeterResult]:
    """Feed ``stream`` cut at ``cuts`` (default: 7-byte chunks); return what was forwarded."""
    if cuts is None:
        cuts = list(range(7, len(stream), 7))
    chunks = []
    start = 0
    for cut in [*sorted({c for c in cuts if 0 < c < len(stream)}), len(stream)]:
        chunks.append(stream[start:cut])
        start = cut
    forwarded = [sent(meter.feed(chunk)) for chunk in chunks]
    if end:
        forwarded.append(sent(meter.feed(b"")))
    return forwarded, meter.result()


def sent(out: bytes | list[bytes]) -> bytes:
    """The bytes mitmproxy sends for one ``feed`` return. An empty ``bytes`` would go out as a
    zero-length HTTP/1.1 chunk (the end of the body), so the meter must never return one; a
    list goes out one chunk per item, and none of them may be empty either."""
    assert out != b"", "feed returned b'' (a zero-length chunk ends an HTTP/1.1 body)"
    pieces = out if isinstance(out, list) else [out]
    assert all(pieces), f"feed returned an empty piece in {pieces!r}"
    return b"".join(pieces)


# --- usage, model and text per api -------------------------------------------------------------


def test_chat_stream_with_usage() -> None:
    _, result = run(stream_meter("openai.chat"), b"".join(chat_events(with_usage=True)))
    assert result == MeterResult(
        usage=Usage(12, 0, 0, 0, 2, 0),
        model=CHAT_MODEL,
        streamed=True,
        finished=True,
        output_text="Hello!",
    )


def test_chat_stream_without_usage_keeps_the_text() -> None:
    _, result = run(stream_meter("openai.chat"), b"".join(chat_events(with_usage=False)))
    assert result.usage is None
    assert (result.output_text, result.model, result.streamed) == ("Hello!", CHAT_MODEL, True)


def test_chat_usage_is_the_last_non_null_value_not_a_sum() -> None:
    early = {**CHAT_USAGE, "completion_tokens": 1}
    stream = b"".join([
        sse(chat_chunk({"content": "a"}, usage=early)),
        sse(chat_chunk({"content": "b"}, usage=None)),
        sse(chat_chunk(None, usage=CHAT_USAGE)),
        sse(chat_chunk({}, usage=None)),
    ])  # fmt: skip
    _, result = run(stream_meter("openai.chat"), stream)
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)


def test_azure_annotation_chunks_with_empty_model_do_not_erase_the_model() -> None:
    events = chat_events(with_usage=True)
    stream = AZURE_FILTER + b"".join(events[:-1]) + AZURE_FILTER + events[-1]
    forwarded, result = run(stream_meter("openai.chat", strip_injected_usage=True), stream)
    assert result.model == CHAT_MODEL
    assert b"".join(forwarded).count(AZURE_FILTER) == 2


def test_chat_tool_call_arguments_and_legacy_text_are_collected() -> None:
    call = {"index": 0, "id": "call_fx", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    stream = b"".join([
        sse(chat_chunk({"role": "assistant", "tool_calls": [call]})),
        sse(chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
        sse(chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})),
        sse({"id": "cmpl-fx", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
             "choices": [{"text": " legacy", "index": 0}]}),
    ])  # fmt: skip
    _, result = run(stream_meter("openai.completions"), stream)
    assert result.output_text == '{"city":"Paris"} legacy'


def test_reasoning_deltas_count_as_output_text() -> None:
    stream = b"".join([
        sse(chat_chunk({"role": "assistant", "content": None, "reasoning_content": "Think. "})),
        sse(chat_chunk({"content": None, "reasoning": "More. "})),  # OpenRouter's name
        sse(chat_chunk({"content": "Answer"})),
    ])  # fmt: skip
    _, result = run(stream_meter("openai.chat"), stream)
    assert result.output_text == "Think. More. Answer"


def test_groq_usage_in_x_groq_and_openrouter_cost_with_comments() -> None:
    groq_usage = {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}
    stream = (
        b": OPENROUTER PROCESSING\n\n"
        + sse(chat_chunk({"content": "x"}))
        + sse(chat_chunk({}, "stop", x_groq={"id": "req_fx", "usage": groq_usage}))
    )
    _, groq = run(stream_meter("openai.chat"), stream)
    assert groq.usage == Usage(30, 0, 0, 0, 9, 0)
    assert groq.extras == {}
    openrouter_usage = {
        **groq_usage,
        "cost": 0.0000303,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 6},
    }
    stream += sse(chat_chunk(None, usage=openrouter_usage))  # fmt: skip
    _, openrouter = run(stream_meter("openai.chat"), stream)
    assert openrouter.usage == Usage(30, 4, 6, 0, 9, 0)
    assert openrouter.extras == {"provider_cost": "0.0000303"}


def test_chat_mid_stream_error() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error",
                       "param": None, "code": None}}  # fmt: skip
    stream = b"".join(chat_events(with_usage=True)[:2]) + sse(error)
    _, result = run(stream_meter("openai.chat"), stream)
    assert result.error_kind == "stream_error:server_error"
    assert result.usage is None
    assert result.output_text == "Hello"


def test_responses_stream() -> None:
    _, result = run(stream_meter("openai.responses"), b"".join(RESPONSES_EVENTS))
    assert result == MeterResult(
        usage=Usage(2048, 1536, 0, 0, 180, 128),
        model=RESPONSES_MODEL,
        streamed=True,
        finished=True,
        output_text="Hi there",
    )


def test_responses_usage_only_from_the_terminal_event() -> None:
    bogus = {**RESPONSES_USAGE, "input_tokens": 999_999}
    early = responses_event("response.in_progress", response=response_obj("in_progress", bogus))
    _, truncated = run(stream_meter("openai.responses"), b"".join(RESPONSES_EVENTS[:5]) + early)
    assert truncated.usage is None
    stream = b"".join(RESPONSES_EVENTS[:5]) + early + b"".join(RESPONSES_EVENTS[5:])
    _, complete = run(stream_meter("openai.responses"), stream)
    assert complete.usage == Usage(2048, 1536, 0, 0, 180, 128)


def test_responses_incomplete_and_failed_terminal_events() -> None:
    incomplete = response_obj(
        "incomplete", RESPONSES_USAGE, incomplete_details={"reason": "max_output_tokens"}
    )
    head = b"".join(RESPONSES_EVENTS[:6])
    _, result = run(
        stream_meter("openai.responses"),
        head + responses_event("response.incomplete", response=incomplete),
    )
    assert result.usage == Usage(2048, 1536, 0, 0, 180, 128)
    assert result.extras == {"incomplete_reason": "max_output_tokens"}
    failed = response_obj("failed", None, error={"code": "server_error", "message": "x"})
    _, result = run(
        stream_meter("openai.responses"), head + responses_event("response.failed", response=failed)
    )
    assert (result.usage, result.error_kind) == (None, "response_failed:server_error")


def test_responses_error_event() -> None:
    error = responses_event("error", code="rate_limit_exceeded", message="slow down", param=None)
    _, result = run(stream_meter("openai.responses"), b"".join(RESPONSES_EVENTS[:5]) + error)
    assert result.error_kind == "stream_error:rate_limit_exceeded"
    assert result.output_text == "Hi"


def test_anthropic_stream() -> None:
    _, result = run(stream_meter("anthropic.messages"), b"".join(ANTHROPIC_EVENTS))
    assert result == MeterResult(
        usage=Usage(1825, 1800, 0, 0, 15, 0),
        model=ANTHROPIC_MODEL,
        streamed=True,
        finished=True,
        output_text="Hello!",
    )


def test_anthropic_deltas_are_cumulative_never_summed() -> None:
    def delta(**usage: int) -> bytes:
        return anthropic_event("message_delta", delta={}, usage=usage)

    stream = b"".join([
        ANTHROPIC_START,
        delta(output_tokens=10),
        delta(input_tokens=25, cache_read_input_tokens=1800, output_tokens=15),
        delta(output_tokens=40, cache_creation_input_tokens=7),
    ])  # fmt: skip
    _, result = run(stream_meter("anthropic.messages"), stream)
    assert result.usage == Usage(1832, 1800, 7, 0, 40, 0)


def test_anthropic_thinking_and_tool_input_deltas_are_text() -> None:
    deltas = [{"type": "thinking_delta", "thinking": "hmm "},
              {"type": "signature_delta", "signature": "SIG"},
              {"type": "input_json_delta", "partial_json": '{"q": 1}'}]  # fmt: skip
    stream = ANTHROPIC_START + b"".join(
        anthropic_event("content_block_delta", index=0, delta=d) for d in deltas
    )
    _, result = run(stream_meter("anthropic.messages"), stream)
    assert result.output_text == 'hmm {"q": 1}'


def test_anthropic_overloaded_mid_stream() -> None:
    _, result = run(stream_meter("anthropic.messages"), b"".join(ANTHROPIC_OVERLOADED))
    assert result.error_kind == "stream_error:overloaded_error"
    assert result.usage == Usage(1825, 1800, 0, 0, 1, 0)  # what message_start reported
    assert result.output_text == "Hello"


def test_truncated_stream_keeps_text_and_reports_no_usage() -> None:
    stream = b"".join(chat_events(with_usage=True))
    cut = stream.index(b'"content": "!"') + 5
    _, result = run(stream_meter("openai.chat"), stream[:cut], end=False)
    assert (result.usage, result.output_text, result.error_kind) == (None, "Hello", None)


def test_bad_events_are_counted_not_raised() -> None:
    stream = b"data: {not json\n\n" + sse(chat_chunk(None, usage={"prompt_tokens": "x"}))
    _, result = run(stream_meter("openai.chat"), stream + b"".join(chat_events(with_usage=True)))
    assert result.extras == {"bad_events": 2}
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)


# --- forwarding -----------------------------------------------------------------------------

STREAMS = {
    "openai.chat": b"".join([AZURE_FILTER, *chat_events(with_usage=True)]),
    "openai.responses": b"".join(RESPONSES_EVENTS),
    "anthropic.messages": b"".join(ANTHROPIC_EVENTS),
}


@pytest.mark.parametrize("api", sorted(STREAMS))
def test_a_stream_is_finished_only_by_its_own_end_event(api: str) -> None:
    stream = STREAMS[api]
    last_event = stream.rstrip(b"\n").rfind(b"\n\n") + 2
    _, whole = run(stream_meter(api), stream)
    _, cut = run(stream_meter(api), stream[:last_event])
    assert whole.finished
    assert not cut.finished


@pytest.mark.parametrize("api", sorted(STREAMS))
def test_pass_through_returns_each_chunk_itself_immediately(api: str) -> None:
    meter = stream_meter(api)
    stream = STREAMS[api]
    for start in range(0, len(stream), 5):
        chunk = stream[start : start + 5]
        assert meter.feed(chunk) is chunk
    assert meter.feed(b"") == []
    assert meter.result().usage is not None


def test_strip_removes_exactly_the_usage_chunk_and_keeps_the_azure_filter_chunk() -> None:
    events = chat_events(with_usage=True)
    usage_event = events[4]
    assert b'"choices": []' in usage_event and b'"usage": {' in usage_event
    stream = AZURE_FILTER + b"".join(events)
    forwarded, result = run(stream_meter("openai.chat", strip_injected_usage=True), stream)
    assert b"".join(forwarded) == stream.replace(usage_event, b"")
    assert b"".join(forwarded).startswith(AZURE_FILTER)
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)
    assert result.model == CHAT_MODEL  # not Azure's empty "" model


def test_strip_with_crlf_separators_and_the_legacy_completions_api() -> None:
    events = chat_events(with_usage=True, sep=b"\r\n")
    meter = stream_meter("openai.completions", strip_injected_usage=True)
    forwarded, result = run(meter, b"".join(events), cuts=list(range(1, 2000)))
    assert b"".join(forwarded) == b"".join(events[:4] + events[5:])
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)


def test_strip_forwards_whole_events_and_holds_back_only_the_incomplete_tail() -> None:
    events = chat_events(with_usage=True)
    meter = stream_meter("openai.chat", strip_injected_usage=True)
    first = events[0] + events[1][:10]
    assert sent(meter.feed(first)) == events[0]
    assert sent(meter.feed(events[1][10:] + events[2])) == events[1] + events[2]
    assert sent(meter.feed(events[3] + events[4][:-1])) == events[3]
    assert meter.feed(events[4][-1:]) == []  # the usage chunk, dropped: nothing to send
    assert meter.feed(events[5][:-1]) == []  # held back, and no zero-length chunk for it
    assert sent(meter.feed(b"")) == events[5][:-1]  # unterminated tail flushed at the end


def test_strip_drops_a_usage_chunk_even_as_the_unterminated_tail() -> None:
    events = chat_events(with_usage=True)[:5]
    stream = b"".join(events)[:-2]  # no final blank line
    forwarded, result = run(stream_meter("openai.chat", strip_injected_usage=True), stream)
    assert b"".join(forwarded) == b"".join(events[:4])
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)


@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream", None])
def test_content_type_only_matters_for_gemini(content_type: str | None) -> None:
    stream = STREAMS["openai.chat"]
    _, expected = run(stream_meter("openai.chat"), stream)
    _, result = run(stream_meter("openai.chat", content_type=content_type), stream)
    assert result == expected


def test_strip_is_ignored_for_apis_without_an_injected_usage_chunk() -> None:
    for api in ("anthropic.messages", "gemini.stream"):
        meter = stream_meter(api, strip_injected_usage=True)
        chunk = ANTHROPIC_EVENTS[0][:9]
        assert meter.feed(chunk) is chunk
        assert meter.result().extras == {}


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


DECOMPRESSORS = {"gzip": gzip.decompress, "zstd": zstd.decompress}
COMPRESSORS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_strip_of_a_compressed_stream_decodes_it_for_the_client(encoding: str) -> None:
    events = chat_events(with_usage=True)
    plain = b"".join(events)
    compressed = COMPRESSORS[encoding](plain)
    meter = stream_meter("openai.chat", strip_injected_usage=True, content_encoding=encoding)
    assert meter.decodes_for_client  # the hook then drops content-encoding
    forwarded, result = run(meter, compressed, cuts=list(range(3, len(compressed), 3)))
    assert b"".join(forwarded) == b"".join(events[:4] + events[5:])
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)
    assert result.extras == {"decoded_for_client": encoding}


def test_a_compressed_stream_that_needs_no_strip_passes_through_compressed() -> None:
    compressed = gzip.compress(b"".join(chat_events(with_usage=True)))
    meter = stream_meter("openai.chat", content_encoding="gzip")
    assert not meter.decodes_for_client
    forwarded, _ = run(meter, compressed)
    assert b"".join(forwarded) == compressed


def test_a_decoded_stream_still_reaches_the_client_after_metering_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "MAX_PENDING_BYTES", 64)
    events = chat_events(with_usage=True)
    plain = b"".join(events)
    meter = stream_meter("openai.chat", strip_injected_usage=True, content_encoding="gzip")
    forwarded, result = run(meter, gzip.compress(plain), cuts=list(range(5, 4000, 5)))
    assert b"".join(forwarded) == plain  # too big to meter: nothing stripped, nothing lost
    assert result.extras.get("meter_overflow")


def test_an_unknown_encoding_cannot_be_stripped_and_passes_through() -> None:
    meter = stream_meter("openai.chat", strip_injected_usage=True, content_encoding="compress")
    assert not meter.decodes_for_client
    forwarded, result = run(meter, b"\x1f\x9dnot really")
    assert b"".join(forwarded) == b"\x1f\x9dnot really"
    assert result.extras["usage_chunk_not_stripped"] is True


@pytest.mark.parametrize("encoding", sorted(COMPRESSORS))
@pytest.mark.parametrize("api", sorted(STREAMS))
def test_compressed_stream_is_metered_and_forwarded_unchanged(encoding: str, api: str) -> None:
    compressed = COMPRESSORS[encoding](STREAMS[api])
    _, expected = run(stream_meter(api), STREAMS[api])
    meter = stream_meter(api, content_encoding=encoding)
    for start in range(0, len(compressed), 11):
        chunk = compressed[start : start + 11]
        assert meter.feed(chunk) is chunk
    assert meter.feed(b"") == []
    assert meter.result() == expected
    assert expected.usage is not None


def test_raw_deflate_stream() -> None:
    compressed = raw_deflate(STREAMS["openai.chat"])
    forwarded, result = run(stream_meter("openai.chat", content_encoding="deflate"), compressed)
    assert b"".join(forwarded) == compressed
    assert result.usage == Usage(12, 0, 0, 0, 2, 0)


def test_corrupt_compressed_stream_passes_through_unmetered() -> None:
    garbage = b"\x1f\x8b\x08\x00" + b"\xff" * 40
    forwarded, result = run(stream_meter("openai.chat", content_encoding="gzip"), garbage)
    assert b"".join(forwarded) == garbage
    assert (result.usage, result.extras) == (None, {"undecodable_stream": True})


def test_unknown_encoding_passes_through_unmetered() -> None:
    stream = STREAMS["openai.chat"]
    forwarded, result = run(stream_meter("openai.chat", content_encoding="compress"), stream)
    assert b"".join(forwarded) == stream
    assert (result.usage, result.extras) == (None, {"unmetered_encoding": "compress"})


def test_an_oversized_event_stops_metering_and_releases_held_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "MAX_PENDING_BYTES", 64)
    events = chat_events(with_usage=True)
    stream = events[0] + b"data: " + b"x" * 200 + b"\n\n" + b"".join(events[1:])
    meter = stream_meter("openai.chat", strip_injected_usage=True)
    forwarded, result = run(meter, stream)
    assert b"".join(forwarded) == stream
    assert result.extras == {"meter_overflow": True}


# --- never raising ----------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def explode(*_: object) -> bool:
    raise Boom("handler bug")


@pytest.mark.parametrize("strip", [False, True])
def test_an_internal_error_is_logged_once_and_the_bytes_still_go_through(
    strip: bool, caplog: pytest.LogCaptureFixture
) -> None:
    stream = b"".join(chat_events(with_usage=True))
    meter = stream_meter("openai.chat", strip_injected_usage=strip)
    meter.feed(stream[:3])  # strip mode now holds 3 bytes
    meter._handler.handle = explode  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.WARNING, logger="addon.metering.stream"):
        rest = [sent(meter.feed(stream[i : i + 50])) for i in range(3, len(stream), 50)]
        rest.append(sent(meter.feed(b"")))
    assert (stream[:3] if not strip else b"") + b"".join(rest) == stream
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None
    assert meter.result().extras == {"meter_error": True}


# --- chunking does not matter -----------------------------------------------------------------

CR_CHAT = b"".join(chat_events(with_usage=True, sep=b"\r")).replace(b"\r\r", b"\r\r: c\r\r", 1)
CRLF_CHAT = b"".join(chat_events(with_usage=True, sep=b"\r\n"))
CASES = st.sampled_from(
    [(api, STREAMS[api], False, None) for api in sorted(STREAMS)]
    + [
        ("openai.chat", STREAMS["openai.chat"], True, None),
        ("openai.chat", CRLF_CHAT, True, None),
        ("openai.chat", CR_CHAT, True, None),
        ("openai.chat", gzip.compress(CRLF_CHAT), False, "gzip"),
        ("openai.chat", gzip.compress(CRLF_CHAT), True, "gzip"),  # decoded for the client
        ("openai.completions", zstd.compress(STREAMS["openai.chat"]), True, "zstd"),
        ("anthropic.messages", brotli.compress(STREAMS["anthropic.messages"]), False, "br"),
        ("openai.responses", zstd.compress(STREAMS["openai.responses"]), False, "zstd"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(case=CASES, cuts=st.lists(st.integers(min_value=1, max_value=5000), max_size=40))
def test_any_chunking_gives_the_same_result_and_bytes(
    case: tuple[str, bytes, bool, str | None], cuts: list[int]
) -> None:
    api, stream, strip, encoding = case
    whole, expected = run(
        stream_meter(api, strip_injected_usage=strip, content_encoding=encoding), stream, cuts=[]
    )
    pieces, result = run(
        stream_meter(api, strip_injected_usage=strip, content_encoding=encoding), stream, cuts
    )
    assert result == expected
    assert b"".join(pieces) == b"".join(whole)
    assert expected.usage is not None
    assert expected.output_text
    if strip:  # exactly the usage-only chunk is gone (from the decoded bytes, if compressed)
        plain = DECOMPRESSORS[encoding](stream) if encoding else stream
        sep = b"\r\n\r\n" if b"\r\n\r\n" in plain else b"\n\n" if b"\n\n" in plain else b"\r\r"
        usage_only = [e for e in plain.split(sep) if b'"choices": []' in e and b'"usage": {' in e]
        assert len(usage_only) == 1
        assert b"".join(pieces) == plain.replace(usage_only[0] + sep, b"", 1)
    else:
        assert b"".join(pieces) == stream
