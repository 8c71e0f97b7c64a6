"""Anthropic's provider module: its endpoint classification."""

from __future__ import annotations

import json

import pytest

from addon.errors import NotAllowed
from addon.providers.anthropic import PROVIDER


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("POST", "/v1/messages", "anthropic.messages"),
        ("POST", "/v1/messages?beta=true", "anthropic.messages"),
        ("POST", "/v1/messages/count_tokens", "anthropic.count_tokens"),
        ("POST", "/v1/messages/batches", "anthropic.other"),
        ("GET", "/v1/messages", "anthropic.other"),
        ("GET", "/v1/models", "anthropic.other"),
        ("POST", "/v1/complete", "anthropic.other"),
        ("POST", "/messages", "anthropic.other"),
    ],
)
def test_anthropic_classification(method: str, path: str, api: str) -> None:
    assert PROVIDER.api_for(method, path) == api


def test_anthropic_answers_carry_request_id_and_errors_repeat_it() -> None:
    assert PROVIDER.request_id_header == "request-id"
    status, body, headers = PROVIDER.render_error(NotAllowed("no"))
    assert status == 403
    doc = json.loads(body)
    assert doc["error"] == {"type": "permission_error", "message": "no"}
    assert doc["request_id"] == headers["request-id"]


def test_anthropic_is_tested_with_its_version_header() -> None:
    assert PROVIDER.test_path == "/v1/models"
    assert dict(PROVIDER.test_headers) == {"anthropic-version": "2023-06-01"}
    assert not PROVIDER.injects_include_usage("anthropic.messages")
