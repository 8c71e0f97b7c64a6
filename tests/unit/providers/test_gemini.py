"""Gemini's provider module: its own paths, the model in the path, its compatible API."""

from __future__ import annotations

import json

import pytest

from addon.errors import InvalidKey
from addon.metering.framing import SniffingSplitter
from addon.metering.json_array import JsonArraySplitter
from addon.metering.sse import SseSplitter
from addon.providers.gemini import PROVIDER


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1beta/openai/chat/completions", "openai.chat"),
        ("/v1beta/openai/embeddings", "openai.embeddings"),
        ("/v1beta/openai//chat/completions", "openai.chat"),
        ("/v1beta/openai/models", "openai.other"),
    ],
)
def test_gemini_openai_compatible_api_is_metered_as_openai(path: str, api: str) -> None:
    gemini = PROVIDER
    assert gemini.api_for("POST", path) == api
    assert gemini.model_in_path is not None and gemini.model_in_path(path) is None


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini.generate"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini.stream"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini.stream"),
        ("/v1beta/models/gemini-2.5-flash:countTokens", "gemini.count_tokens"),
        ("/v1beta/models", "gemini.other"),
    ],
)
def test_gemini_paths(path: str, api: str) -> None:
    gemini = PROVIDER
    assert gemini.api_for("POST", path) == api
    if api != "gemini.other":
        assert gemini.model_in_path is not None
        assert gemini.model_in_path(path) == "gemini-2.5-flash"


def test_gemini_streams_are_framed_by_their_content_type() -> None:
    framing = PROVIDER.wire.framing
    assert framing("text/event-stream") is SseSplitter
    assert framing("application/json") is JsonArraySplitter
    assert framing(None) is SniffingSplitter


def test_a_stream_generate_content_answer_is_a_stream_whatever_its_content_type() -> None:
    assert PROVIDER.wire.streamed_apis == {"gemini.stream"}


def test_gemini_never_gets_include_usage_injected() -> None:
    assert not PROVIDER.injects_include_usage("gemini.stream")
    assert not PROVIDER.injects_include_usage("openai.chat")  # its compatible API reports usage


def test_gemini_errors_carry_the_status_word() -> None:
    status, body, headers = PROVIDER.render_error(InvalidKey("no such key"))
    assert status == 401
    assert json.loads(body) == {
        "error": {"code": 401, "message": "no such key", "status": "UNAUTHENTICATED"}
    }
    assert "request-id" not in headers
    assert PROVIDER.request_id_header == "x-request-id"


def test_gemini_bodies_are_read_by_the_gemini_meter() -> None:
    result = PROVIDER.wire.parse_json("gemini.count_tokens", b'{"totalTokens": 7}')
    assert result.extras == {"counted_input_tokens": 7}
    assert PROVIDER.wire.token_apis == {"gemini.generate", "gemini.stream"}
    assert PROVIDER.wire.free_apis == {"gemini.count_tokens"}
