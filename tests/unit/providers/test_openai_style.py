"""OpenAI's wire format: classification, its meters and its error shape."""

from __future__ import annotations

import json

import pytest

from addon.errors import BudgetExceeded, InvalidKey
from addon.metering.framing import sse_framing
from addon.providers.openai_style import MEDIA_PATHS, OPENAI_STYLE, classify, openai_compatible


@pytest.mark.parametrize(("path", "api"), sorted(MEDIA_PATHS.items()))
def test_media_paths_are_classified_when_posted(path: str, api: str) -> None:
    assert classify("POST", path) == api
    assert classify("GET", path) == "openai.other"


def test_the_api_sets_do_not_overlap() -> None:
    sets = [OPENAI_STYLE.token_apis, OPENAI_STYLE.media_apis, OPENAI_STYLE.free_apis]
    assert sum(len(s) for s in sets) == len(frozenset().union(*sets))
    assert OPENAI_STYLE.billable_apis == OPENAI_STYLE.token_apis | OPENAI_STYLE.media_apis
    assert all(OPENAI_STYLE.owns(api) for s in sets for api in s)


def test_openai_streams_are_sse() -> None:
    assert OPENAI_STYLE.framing is sse_framing
    assert OPENAI_STYLE.streamed_apis == frozenset()


def test_errors_use_the_codes_openai_sdks_know() -> None:
    _, body, _ = OPENAI_STYLE.render_error(InvalidKey("x"))
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    _, body, _ = OPENAI_STYLE.render_error(BudgetExceeded("spent"))
    assert json.loads(body)["error"] == {
        "message": "spent",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }


def test_prompt_tokens_frame_chat_messages() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    text_only = OPENAI_STYLE.estimate_prompt_tokens("openai.other", chat, "gpt-4o")
    framed = OPENAI_STYLE.estimate_prompt_tokens("openai.chat", chat, "gpt-4o")
    assert framed > text_only


def test_a_compatible_provider_is_a_few_lines_of_data() -> None:
    p = openai_compatible("local", "llm.internal", "https://llm.internal/v1")
    assert p.wire is OPENAI_STYLE and p.hosts == ("llm.internal",)
    assert p.api_for("POST", "/v1/embeddings") == "openai.embeddings"
    assert p.injects_include_usage("openai.chat")
