"""From what a flow showed to one usage record: exact usage, estimates, and exact cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from addon.metering.usage import MeterResult, Usage
from addon.pricing.table import PriceBook
from addon.providers.wire import parse_response
from addon.records import UsageDraft, finish, minimal_record, price

BOOK = PriceBook.bundled()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# gpt-4o-mini list price: $0.15 input, $0.075 cached input, $0.60 output per million tokens
IN, CACHED, OUT = 150_000, 75_000, 600_000  # picodollars per token
CHAT_BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello to the world"}]}
).encode()
PROMPT_TOKENS = 5 + 7  # "Say hello to the world" in o200k_base, framed as a chat prompt
REPLY = "Hello, world! How are you today?"
REPLY_TOKENS = 9  # in o200k_base


def draft(**changes: Any) -> UsageDraft:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "created_at": T0,
        "provider": "openai",
        "api": "openai.chat",
        "endpoint": "/v1/chat/completions",
        "virtual_key_id": "abc123xyz0",
        "project": "proj",
        "real_key_label": "main",
        "requested_model": "gpt-4o-mini",
        "status_code": 200,
        "latency_ms": 420,
        "forwarded": True,
    }
    fields.update(changes)
    return UsageDraft(**fields)


def test_reported_usage_is_kept_exactly_with_its_cost() -> None:
    usage = Usage(input_tokens=1200, cached_input_tokens=1000, output_tokens=40)
    d = draft(
        result=MeterResult(usage=usage, model="gpt-4o-mini-2024-07-18"),
        request_body=CHAT_BODY,
        provider_request_id="req_abc",
        ttfb_ms=90,
    )
    r = finish(d, BOOK)
    assert (r.input_tokens, r.cached_input_tokens, r.output_tokens) == (1200, 1000, 40)
    assert r.estimated is False
    assert r.cost_picousd == 200 * IN + 1000 * CACHED + 40 * OUT
    assert r.model == "gpt-4o-mini-2024-07-18"  # as the provider reported it
    assert (r.request_id, r.created_at, r.project, r.virtual_key_id) == (
        "req-1",
        T0,
        "proj",
        "abc123xyz0",
    )
    assert (r.real_key_label, r.status_code, r.latency_ms, r.ttfb_ms) == ("main", 200, 420, 90)
    assert (r.provider, r.endpoint, r.provider_request_id) == (
        "openai",
        "/v1/chat/completions",
        "req_abc",
    )


def test_every_token_field_is_carried_over() -> None:
    usage = Usage(
        input_tokens=100,
        cached_input_tokens=10,
        cache_write_tokens=20,
        cache_write_1h_tokens=5,
        output_tokens=30,
        reasoning_tokens=7,
    )
    r = finish(
        draft(
            provider="anthropic",
            api="anthropic.messages",
            result=MeterResult(usage=usage, model="x"),
        ),
        BOOK,
    )
    assert (r.input_tokens, r.cached_input_tokens, r.cache_write_tokens) == (100, 10, 20)
    assert (r.output_tokens, r.reasoning_tokens) == (30, 7)


def test_missing_usage_on_a_forwarded_200_is_estimated_from_body_and_stream() -> None:
    d = draft(
        result=MeterResult(model="gpt-4o-mini", streamed=True, output_text=REPLY),
        request_body=CHAT_BODY,
    )
    r = finish(d, BOOK)
    assert r.estimated is True
    assert (r.input_tokens, r.output_tokens) == (PROMPT_TOKENS, REPLY_TOKENS)
    assert r.cost_picousd == PROMPT_TOKENS * IN + REPLY_TOKENS * OUT
    assert r.streamed is True


def test_no_meter_result_at_all_still_estimates_the_prompt() -> None:
    r = finish(draft(result=None, request_body=CHAT_BODY), BOOK)
    assert r.estimated is True
    assert (r.input_tokens, r.output_tokens) == (PROMPT_TOKENS, 0)
    assert r.model == "gpt-4o-mini"  # the requested model stands in
    assert r.cost_picousd == PROMPT_TOKENS * IN


def test_an_unreadable_request_body_estimates_no_prompt_tokens() -> None:
    d = draft(result=MeterResult(output_text=REPLY), request_body=b"\xff{not json")
    r = finish(d, BOOK)
    assert r.estimated is True
    assert (r.input_tokens, r.output_tokens) == (0, REPLY_TOKENS)


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 529])
def test_a_provider_error_is_not_estimated(status: int) -> None:
    d = draft(status_code=status, result=MeterResult(error_kind="x"), request_body=CHAT_BODY)
    r = finish(d, BOOK)
    assert r.estimated is False
    assert (r.input_tokens, r.output_tokens) == (0, 0)
    assert r.cost_picousd == 0  # no tokens: exactly nothing, not unpriced
    assert r.status_code == status


def test_a_request_that_never_reached_the_provider_is_not_estimated() -> None:
    d = draft(forwarded=False, status_code=401, error_kind="invalid_key", request_body=CHAT_BODY)
    r = finish(d, BOOK)
    assert (r.estimated, r.input_tokens, r.error_kind) == (False, 0, "invalid_key")


@pytest.mark.parametrize("api", ["openai.other", "anthropic.count_tokens", "anthropic.other"])
def test_free_or_unknown_endpoints_are_not_estimated(api: str) -> None:
    r = finish(draft(api=api, result=MeterResult(), request_body=CHAT_BODY), BOOK)
    assert (r.estimated, r.input_tokens, r.output_tokens) == (False, 0, 0)


def test_unknown_model_is_unpriced_not_free() -> None:
    usage = Usage(input_tokens=100, output_tokens=10)
    r = finish(draft(result=MeterResult(usage=usage, model="my-local-llama")), BOOK)
    assert r.cost_picousd is None
    assert (r.input_tokens, r.output_tokens) == (100, 10)


def test_estimated_usage_of_an_unknown_model_is_unpriced_too() -> None:
    d = draft(
        requested_model="my-local-llama",
        result=MeterResult(output_text=REPLY),
        request_body=CHAT_BODY,
    )
    r = finish(d, BOOK)
    assert r.estimated is True and r.output_tokens > 0
    assert r.cost_picousd is None


def test_aborted_stream_keeps_reported_input_and_takes_the_larger_output() -> None:
    partial = Usage(input_tokens=1200, cached_input_tokens=1000, output_tokens=1)
    d = draft(
        aborted=True,
        status_code=200,
        error_kind="client_disconnected",
        result=MeterResult(usage=partial, model="gpt-4o-mini", streamed=True, output_text=REPLY),
        request_body=CHAT_BODY,
    )
    r = finish(d, BOOK)
    assert r.estimated is True
    assert (r.input_tokens, r.cached_input_tokens) == (1200, 1000)  # reported, not estimated
    assert r.output_tokens == REPLY_TOKENS  # max(1 reported, 9 seen)
    assert r.cost_picousd == 200 * IN + 1000 * CACHED + REPLY_TOKENS * OUT
    assert r.error_kind == "client_disconnected"


def test_aborted_stream_keeps_a_reported_output_larger_than_the_estimate() -> None:
    partial = Usage(input_tokens=50, output_tokens=500, reasoning_tokens=480)
    d = draft(aborted=True, result=MeterResult(usage=partial, output_text="Hi"))
    r = finish(d, BOOK)
    assert (r.output_tokens, r.reasoning_tokens, r.estimated) == (500, 480, True)


def test_a_meter_estimate_flag_is_kept() -> None:
    usage = Usage(input_tokens=3, output_tokens=4)
    r = finish(draft(result=MeterResult(usage=usage, estimated=True)), BOOK)
    assert r.estimated is True
    assert (r.input_tokens, r.output_tokens) == (3, 4)


def test_gateway_error_kind_wins_over_the_meters() -> None:
    d = draft(status_code=502, error_kind="upstream_502", result=MeterResult(error_kind="bad_json"))
    assert finish(d, BOOK).error_kind == "upstream_502"
    d = draft(result=MeterResult(usage=Usage(), error_kind="stream_error:overloaded_error"))
    assert finish(d, BOOK).error_kind == "stream_error:overloaded_error"


def test_usage_reported_with_a_stream_error_is_kept_not_estimated() -> None:
    usage = Usage(input_tokens=43, output_tokens=10, reasoning_tokens=11)
    final = MeterResult(usage=usage, error_kind="stream_error:400", usage_final=True)
    r = finish(draft(result=final), BOOK)
    assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (43, 10, 11)
    assert not r.estimated and r.error_kind == "stream_error:400"
    partial = MeterResult(usage=usage, error_kind="stream_error:400", output_text="x" * 400)
    assert finish(draft(result=partial), BOOK).estimated


def test_extras_from_meter_and_draft_are_merged_into_json() -> None:
    d = draft(
        result=MeterResult(usage=Usage(), extras={"service_tier": "default", "n": 1}),
        extras={"n": 2, "when": T0},
    )
    extras = json.loads(finish(d, BOOK).extras_json)
    assert extras == {"service_tier": "default", "n": 2, "when": str(T0)}


def test_price_of_no_usage_is_zero_and_of_an_unknown_model_is_none() -> None:
    assert price(BOOK, "openai", "gpt-4o-mini", None) == 0
    assert price(BOOK, "openai", "my-local-llama", Usage(input_tokens=1)) is None
    assert price(BOOK, "openai", None, Usage(input_tokens=1)) is None
    assert price(BOOK, "openai", "gpt-4o-mini", Usage(input_tokens=1_000_000)) == 150_000_000_000


def test_service_tier_prices_and_1h_cache_writes_are_kept_for_reprice() -> None:
    from addon.pricing.cost import cost_picousd

    usage = Usage(input_tokens=1000, output_tokens=100)
    flex = MeterResult(usage=usage, model="gpt-5", extras={"service_tier": "flex"})
    r = finish(draft(result=flex), BOOK)
    price = BOOK.lookup("openai", "gpt-5")
    assert price is not None and price.flex is not None  # the bundled table has flex prices
    assert r.cost_picousd == cost_picousd(usage, price, service_tier="flex")
    assert r.cost_picousd != cost_picousd(usage, price)
    cached = Usage(input_tokens=2000, cache_write_tokens=1800, cache_write_1h_tokens=1800)
    r = finish(draft(result=MeterResult(usage=cached, model="claude-haiku-4-5")), BOOK)
    assert json.loads(r.extras_json)["cache_write_1h_tokens"] == 1800


def test_an_unpriced_reported_model_falls_back_to_the_mapped_model_only() -> None:
    usage = Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=40)
    reported = MeterResult(usage=usage, model="prod-mini")  # an Azure deployment name
    unmapped = finish(draft(provider="azure", requested_model="gpt-4o-mini", result=reported), BOOK)
    assert unmapped.cost_picousd is None  # a requested name alone never prices a record
    mapped = finish(
        draft(
            provider="azure",
            requested_model="prod-mini",
            mapped_model="gpt-4o-mini",
            result=reported,
        ),
        BOOK,
    )
    assert mapped.cost_picousd == 127_200_000 and mapped.model == "prod-mini"


# --- media endpoints, unmetered endpoints ----------------------------------------------

IMAGE_REQUEST = json.dumps({"model": "gpt-image-1", "prompt": "a cat", "n": 2}).encode()


def test_image_generation_is_priced_from_its_reported_tokens() -> None:
    answer = {
        "data": [{"b64_json": "x"}, {"b64_json": "y"}],
        "size": "1024x1024",
        "quality": "low",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 544,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
        },
    }
    result = parse_response("openai.images", json.dumps(answer).encode())
    d = draft(
        api="openai.images",
        endpoint="/v1/images/generations",
        requested_model="gpt-image-1",
        request_body=IMAGE_REQUEST,
        result=result,
    )
    r = finish(d, BOOK)
    assert (r.input_tokens, r.output_tokens, r.estimated) == (10, 544, False)
    assert r.cost_picousd == 10 * 5_000_000 + 544 * 40_000_000  # $5 text in, $40 image out
    media = json.loads(r.extras_json)["media"]
    assert media["images"] == 2 and media["quality"] == "low"


def test_images_without_usage_are_priced_per_image_from_request_and_answer() -> None:
    body = json.dumps({"model": "gpt-image-1-mini", "n": 3, "size": "1024x1024",
                       "quality": "medium"}).encode()  # fmt: skip
    answer = json.dumps({"data": [{"url": "u1"}, {"url": "u2"}, {"url": "u3"}]}).encode()
    d = draft(
        api="openai.images",
        requested_model="gpt-image-1-mini",
        request_body=body,
        result=parse_response("openai.images", answer),
    )
    r = finish(d, BOOK)
    assert r.cost_picousd == 3 * 11 * 10**9  # medium/1024-x-1024/gpt-image-1-mini: $0.011


def test_image_edit_model_comes_from_the_multipart_form() -> None:
    boundary = b"--b0undary"
    body = (
        boundary + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-image-1-mini\r\n'
        + boundary + b'\r\nContent-Disposition: form-data; name="size"\r\n\r\n1024x1536\r\n'
        + boundary + b'\r\nContent-Disposition: form-data; name="quality"\r\n\r\nlow\r\n'
        + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        + b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n" + boundary + b"--\r\n"
    )  # fmt: skip
    answer = json.dumps({"data": [{"b64_json": "x"}]}).encode()
    d = draft(
        api="openai.image_edits",
        endpoint="/v1/images/edits",
        requested_model=None,
        request_body=body,
        result=parse_response("openai.image_edits", answer),
    )
    r = finish(d, BOOK)
    assert r.model == "gpt-image-1-mini"
    assert r.cost_picousd == 6 * 10**9  # low/1024-x-1536/gpt-image-1-mini: $0.006


def test_transcription_is_priced_per_second_and_speech_per_character() -> None:
    verbose = json.dumps({"text": "hi", "duration": 61.5}).encode()
    t = finish(
        draft(
            api="openai.transcriptions",
            requested_model="whisper-1",
            result=parse_response("openai.transcriptions", verbose),
        ),
        BOOK,
    )
    assert t.cost_picousd == 615 * 10**7  # 61.5 s x $0.0001
    speech = json.dumps({"model": "tts-1", "input": "x" * 4096, "voice": "alloy"}).encode()
    s = finish(
        draft(
            api="openai.speech",
            requested_model="tts-1",
            request_body=speech,
            result=parse_response("openai.speech", b"ID3\x04audio"),
        ),
        BOOK,
    )
    assert s.cost_picousd == 4096 * 15 * 10**6  # $15 per 1M characters
    assert json.loads(s.extras_json)["media"] == {"kind": "speech", "characters": 4096}


def test_media_that_cannot_be_priced_is_unpriced_with_a_reason() -> None:
    text_only = finish(
        draft(
            api="openai.transcriptions",
            requested_model="whisper-1",
            result=parse_response("openai.transcriptions", b"plain transcript"),
        ),
        BOOK,
    )
    assert text_only.cost_picousd is None
    assert json.loads(text_only.extras_json)["unpriced"] == "no_media_price_for_usage"


def test_a_failed_media_request_costs_nothing() -> None:
    body = b'{"error": {"message": "no", "type": "invalid_request_error", "code": null}}'
    r = finish(
        draft(
            api="openai.images",
            status_code=400,
            request_body=IMAGE_REQUEST,
            result=parse_response("openai.images", body),
        ),
        BOOK,
    )
    assert r.cost_picousd == 0


@pytest.mark.parametrize("endpoint", ["/v1/fine_tuning/jobs", "/v1/batches", "/v1/videos"])
def test_a_paid_endpoint_without_a_meter_is_unpriced_not_free(endpoint: str) -> None:
    d = draft(api="openai.other", endpoint=endpoint, method="POST", result=MeterResult())
    r = finish(d, BOOK)
    assert r.cost_picousd is None
    assert json.loads(r.extras_json)["unpriced"] == "endpoint_not_metered"


@pytest.mark.parametrize(
    ("api", "method", "status"),
    [
        ("openai.other", "GET", 200),  # listing models, files, batches
        ("openai.other", "DELETE", 200),
        ("openai.other", "POST", 404),  # the provider refused: nothing to bill
        ("openai.moderations", "POST", 200),
        ("anthropic.count_tokens", "POST", 200),
    ],
)
def test_reads_refusals_and_free_endpoints_cost_exactly_nothing(api, method, status) -> None:
    d = draft(api=api, method=method, status_code=status, result=MeterResult())
    assert finish(d, BOOK).cost_picousd == 0


def test_an_unmetered_request_never_forwarded_costs_nothing() -> None:
    d = draft(api="openai.other", method="POST", forwarded=False, status_code=401)
    assert finish(d, BOOK).cost_picousd == 0


def test_streamed_speech_is_priced_from_the_usage_of_its_last_event() -> None:
    speech = json.dumps({"model": "gpt-4o-mini-tts", "input": "Hi", "stream_format": "sse"})
    streamed = MeterResult(usage=Usage(input_tokens=14, output_tokens=101), streamed=True)
    d = draft(
        api="openai.speech",
        requested_model="gpt-4o-mini-tts",
        request_body=speech.encode(),
        result=streamed,
    )
    r = finish(d, BOOK)
    # gpt-4o-mini-tts: $0.6 per 1M text input tokens, $12 per 1M audio output tokens
    assert r.cost_picousd == 14 * 600_000 + 101 * 12_000_000
    assert (r.input_tokens, r.output_tokens, r.streamed) == (14, 101, True)


def test_a_realtime_websocket_is_unpriced_even_though_it_is_a_get() -> None:
    d = draft(api="openai.realtime", endpoint="/v1/realtime", method="GET", status_code=101)
    r = finish(d, BOOK)
    assert r.cost_picousd is None
    assert json.loads(r.extras_json)["unpriced"] == "endpoint_not_metered"


def test_the_end_user_and_tags_reach_the_record_even_a_minimal_one() -> None:
    d = draft(end_user="alice", tags="a,b")
    row = finish(d, BOOK)
    assert (row.end_user, row.tags) == ("alice", "a,b")
    stand_in = minimal_record(d, "record_refused")
    assert (stand_in.end_user, stand_in.tags) == ("alice", "a,b")
