"""OpenAI's provider module: its endpoints and what it strips."""

from __future__ import annotations

import pytest

from addon.providers.openai import PROVIDER


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("post", "/v1/chat/completions", "openai.chat"),  # method case does not matter
        ("POST", "/v1/chat/completions/", "openai.chat"),  # trailing slash
        ("POST", "/v1/chat/completions?api-version=1", "openai.chat"),  # query string
        ("GET", "/v1/chat/completions", "openai.other"),  # listing stored completions
        ("GET", "/v1/models", "openai.other"),
        ("POST", "/v1/responses/resp_1/cancel", "openai.other"),
        ("DELETE", "/v1/responses/resp_1", "openai.other"),
        ("GET", "/v1/realtime?model=gpt-realtime", "openai.realtime"),  # the websocket
        ("POST", "/chat/completions", "openai.chat"),  # no /v1: still the same API name
    ],
)
def test_openai_classification_details(method: str, path: str, api: str) -> None:
    assert PROVIDER.api_for(method, path) == api


def test_openai_strips_organisation_and_project_headers() -> None:
    assert set(PROVIDER.strip_headers) >= {"openai-organization", "openai-project"}


def test_chat_and_completions_streams_get_include_usage() -> None:
    assert PROVIDER.injects_include_usage("openai.chat")
    assert PROVIDER.injects_include_usage("openai.completions")
    assert not PROVIDER.injects_include_usage("openai.responses")  # reports usage anyway
    assert PROVIDER.request_id_header == "x-request-id"
