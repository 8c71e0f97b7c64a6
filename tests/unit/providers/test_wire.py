"""From an api name to its wire format; the api sets across all formats."""

from __future__ import annotations

import pytest

from addon.metering.framing import SniffingSplitter
from addon.metering.sse import SseSplitter
from addon.providers.anthropic_style import ANTHROPIC_STYLE
from addon.providers.gemini import GEMINI_STYLE
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.wire import (
    BILLABLE_APIS,
    FORMATS,
    FREE_APIS,
    MEDIA_APIS,
    TOKEN_APIS,
    always_streams,
    prompt_text,
    stream_meter,
    wire_for,
)


@pytest.mark.parametrize(
    ("api", "wire"),
    [
        ("openai.chat", OPENAI_STYLE),
        ("openai.realtime", OPENAI_STYLE),
        ("anthropic.messages", ANTHROPIC_STYLE),
        ("gemini.stream", GEMINI_STYLE),
        ("somebody.else", OPENAI_STYLE),  # no known format: read as OpenAI's
    ],
)
def test_wire_for_reads_the_api_prefix(api: str, wire: object) -> None:
    assert wire_for(api) is wire


def test_the_built_in_formats_are_those_of_the_providers() -> None:
    assert set(FORMATS) == {"openai", "anthropic", "gemini"}


def test_api_sets_are_the_union_over_the_formats() -> None:
    assert {
        "openai.chat",
        "openai.completions",
        "openai.embeddings",
        "openai.responses",
        "anthropic.messages",
        "gemini.generate",
        "gemini.stream",
    } == TOKEN_APIS
    assert {
        "openai.moderations",
        "openai.count_tokens",
        "anthropic.count_tokens",
        "gemini.count_tokens",
    } == FREE_APIS
    assert BILLABLE_APIS == TOKEN_APIS | MEDIA_APIS
    assert "openai.images" in MEDIA_APIS


def test_only_gemini_streams_whatever_the_content_type() -> None:
    assert always_streams("gemini.stream")
    assert not always_streams("gemini.generate")
    assert not always_streams("openai.chat")


def test_prompt_text_follows_the_format() -> None:
    gemini_body = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert prompt_text("gemini.generate", gemini_body) == "hi"
    assert prompt_text("openai.embeddings", {"input": ["a", "b"]}) == "a\nb"


def test_stream_meter_takes_the_formats_framing() -> None:
    assert isinstance(stream_meter("gemini.stream")._splitter, SniffingSplitter)
    assert isinstance(
        stream_meter("openai.chat", content_type="application/json")._splitter, SseSplitter
    )
