"""Real provider traffic (``../shared/realtraffic``) through the meters, as the gateway runs
them: buffered bodies through ``parse_response``, streams through ``StreamMeter`` (one event
per chunk, and cut at offsets hypothesis picks), then the usage record ``records.finish``
builds. The client's bytes and the record must match the case."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.recorded import (
    SKIP_REASON,
    Case,
    check_record,
    event_cuts,
    expected_client_bytes,
    load_cases,
    pieces,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addon.metering.chat_tokens import GPT_OSS, chat_format
from addon.metering.estimate import encoding_for_model
from addon.metering.usage import MeterResult
from addon.pricing.table import PriceBook
from addon.providers.base import Provider
from addon.providers.registry import BUILTIN
from addon.providers.wire import BILLABLE_APIS, estimate_prompt_tokens, parse_response, stream_meter
from addon.records import UsageDraft, finish
from addon.store.rows import UsageRow, as_dict

CASES = load_cases()
pytestmark = pytest.mark.skipif(not CASES, reason=SKIP_REASON)
BOOK = PriceBook.bundled()


def ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def provider_and_api(case: Case) -> tuple[Provider, str]:
    provider = BUILTIN.by_host(case.host)
    assert provider is not None, case.host
    return provider, provider.api_for(case.method, case.path)


def is_streamed(case: Case, api: str) -> bool:
    """As ``hooks.meter.Meter.responseheaders`` decides."""
    return case.is_sse or api == "gemini.stream"


def strips_usage(case: Case) -> bool:
    """The gateway injects ``include_usage`` (and strips its chunk) for this request."""
    provider, api = provider_and_api(case)
    try:
        asked_stream = json.loads(case.request_body).get("stream") is True
    except ValueError:
        asked_stream = False
    return provider.injects_include_usage(api) and asked_stream and not case.client_asked_usage


def meter_stream(case: Case, chunks: list[bytes]) -> tuple[bytes, MeterResult]:
    _, api = provider_and_api(case)
    meter = stream_meter(
        api,
        strip_injected_usage=strips_usage(case),
        content_encoding=case.content_encoding,
        content_type=case.content_type,
    )
    out = bytearray()
    for chunk in [*chunks, b""]:
        forwarded = meter.feed(chunk)
        assert forwarded != b"", "an empty bytes would end an HTTP/1.1 chunked body"
        out += forwarded if isinstance(forwarded, bytes) else b"".join(forwarded)
    return bytes(out), meter.result()


def record(case: Case, result: MeterResult) -> UsageRow:
    """The usage record the gateway builds (``hooks.meter.Meter.response`` → ``finish``)."""
    provider, api = provider_and_api(case)
    draft = UsageDraft(
        request_id=case.id,
        created_at=datetime.now(UTC),
        provider=provider.name,
        api=api,
        endpoint=case.path.split("?", 1)[0],
        requested_model=_requested_model(case),
        status_code=case.status,
        error_kind=f"upstream_{case.status}" if case.status >= 400 else None,
        forwarded=True,
        result=result,
        request_body=case.request_body if api in BILLABLE_APIS else None,
    )
    return finish(draft, BOOK)


def _requested_model(case: Case) -> str | None:
    try:
        model = json.loads(case.request_body).get("model")
    except (ValueError, AttributeError):
        return None
    return model if isinstance(model, str) else None


BUFFERED = [c for c in CASES if not is_streamed(c, provider_and_api(c)[1])]
STREAMED = [c for c in CASES if is_streamed(c, provider_and_api(c)[1])]


@pytest.mark.parametrize("case", BUFFERED, ids=ids(BUFFERED))
def test_buffered_response_is_metered_as_recorded(case: Case) -> None:
    _, api = provider_and_api(case)
    check_record(case, as_dict(record(case, parse_response(api, case.plain_body))))


@pytest.mark.parametrize("case", STREAMED, ids=ids(STREAMED))
def test_stream_one_event_per_chunk(case: Case) -> None:
    sent, result = meter_stream(case, pieces(case.response_body, event_cuts(case)))
    assert sent == expected_client_bytes(case, stripped=strips_usage(case)), case.id
    check_record(case, as_dict(record(case, result)))


@pytest.mark.parametrize("case", STREAMED, ids=ids(STREAMED))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_stream_cut_anywhere(case: Case, data: Any) -> None:
    size = len(case.response_body)
    cuts = data.draw(st.lists(st.integers(1, max(1, size - 1)), max_size=40), label="cuts")
    sent, result = meter_stream(case, pieces(case.response_body, cuts))
    assert sent == expected_client_bytes(case, stripped=strips_usage(case)), case.id
    check_record(case, as_dict(record(case, result)))


def openai_tokenized(model: object) -> bool:
    """A model whose tokenizer tiktoken has (OpenAI's own, and gpt-oss on other servers)."""
    return isinstance(model, str) and (
        encoding_for_model(model)[2] or chat_format(model) is GPT_OSS
    )


def text_only(body: dict[str, Any]) -> bool:
    """Nothing an estimate cannot count: no image, audio or file parts, no built-in tools
    (web search, MCP…: the provider adds their results to the prompt)."""
    items = body.get("messages") or body.get("input")
    for item in items if isinstance(items, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") not in TEXT_PARTS for p in content
        ):
            return False
    return all(t.get("type") == "function" for t in body.get("tools") or [])


TEXT_PARTS = ("text", "input_text", "output_text")


def _body(case: Case) -> dict[str, Any]:
    return dict(json.loads(case.request_body))


ESTIMABLE = [
    c
    for c in CASES
    if provider_and_api(c)[1] in ("openai.chat", "openai.responses")
    and c.expected["mode"] == "exact"
    and openai_tokenized(_body(c).get("model"))
    and text_only(_body(c))
]


@pytest.mark.parametrize("case", ESTIMABLE, ids=ids(ESTIMABLE))
def test_prompt_estimate_is_within_ten_percent_of_the_provider(case: Case) -> None:
    """Chat Completions and Responses prompts of models with an OpenAI tokenizer."""
    body = _body(case)
    _, api = provider_and_api(case)
    estimate = estimate_prompt_tokens(api, body, body["model"])
    reported = case.expected["input_tokens"]
    assert abs(estimate - reported) <= reported / 10, (case.id, estimate, reported)


def test_the_recorded_cases_cover_every_framing() -> None:
    """Guards the parametrisation: a loader bug must not silently test nothing."""
    assert len(BUFFERED) + len(STREAMED) == len(CASES) >= 100
    assert any(c.content_encoding for c in STREAMED)
    assert any(not c.is_sse for c in STREAMED)  # Gemini JSON arrays
    assert sum(provider_and_api(c)[1] == "openai.chat" for c in ESTIMABLE) >= 10
