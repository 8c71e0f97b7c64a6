"""Google Gemini through the gateway: the official google-genai SDK through HTTPS_PROXY,
the ?key= form, the streamed JSON array, and exact usage from usageMetadata."""

from __future__ import annotations

import contextlib
import json
import ssl

import httpx2 as httpx
import pytest
from fakes import payloads
from integration.conftest import Stack
from integration.harness import wait_for

genai = pytest.importorskip("google.genai", reason="google-genai is a test dependency")
types = pytest.importorskip("google.genai.types")

GEMINI_REAL = "AIza-REAL-gemini-key-000000000000000001"
MODEL = "gemini-2.5-flash"


@pytest.fixture
def gemini(stack: Stack, monkeypatch):
    if not any(p["provider"] == "gemini" for p in stack.cli.json("providers", "list", "--json")):
        stack.cli.add_provider("gemini", GEMINI_REAL, stack.upstream.base_url)
        assert wait_for(lambda: stack.gateway.real_key_state("gemini", "main") == "healthy")
    for name in list(__import__("os").environ):
        if name.startswith(("GOOGLE_", "GEMINI_")):
            monkeypatch.delenv(name)
    return stack


def _sdk(stack: Stack, key: str, monkeypatch):
    stack.openai_forward(key, monkeypatch)  # sets HTTPS_PROXY and the CA for this test
    return stack.track(genai.Client(api_key=key))


def _row(stack: Stack, project: str, requests: int) -> dict | None:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    return rows[0] if rows and rows[0]["requests"] == requests else None


def test_generate_and_stream_with_the_sdk_are_metered_exactly(gemini: Stack, monkeypatch):
    key = gemini.cli.new_key("gemini-sdk")["key"]
    client = _sdk(gemini, key, monkeypatch)
    reply = client.models.generate_content(model=MODEL, contents="hi")
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert reply.usage_metadata.prompt_token_count == payloads.GEMINI_USAGE["promptTokenCount"]
    assert chunks[-1].usage_metadata.total_token_count == payloads.GEMINI_USAGE["totalTokenCount"]
    for req in gemini.upstream.requests:
        assert req.headers["x-goog-api-key"] == GEMINI_REAL and key not in req.path
    u = payloads.GEMINI_USAGE
    row = wait_for(lambda: _row(gemini, "gemini-sdk", 2), timeout=5)
    assert row["input_tokens"] == 2 * u["promptTokenCount"]
    assert row["cached_input_tokens"] == 2 * u["cachedContentTokenCount"]
    assert row["output_tokens"] == 2 * (u["candidatesTokenCount"] + u["thoughtsTokenCount"])
    assert row["reasoning_tokens"] == 2 * u["thoughtsTokenCount"]
    assert row["cost_usd"] == "0.00165408"  # 2 x $0.00082704 (providers.md §4.4)


def test_query_key_and_json_array_stream(gemini: Stack):
    key = gemini.cli.new_key("gemini-raw")["key"]
    url = f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    ca = ssl.create_default_context(cafile=gemini.gateway.ca_cert)
    with httpx.Client(proxy=gemini.gateway.proxy_url, verify=ca, trust_env=False) as c:
        r = c.post(url, params={"key": key}, json=body)
    assert r.status_code == 200
    assert json.loads(r.text)[-1]["usageMetadata"]["totalTokenCount"] > 0
    (req,) = gemini.upstream.requests
    assert "key=" not in req.path and req.headers["x-goog-api-key"] == GEMINI_REAL
    row = wait_for(lambda: _row(gemini, "gemini-raw", 1), timeout=5)
    assert row["input_tokens"] == payloads.GEMINI_USAGE["promptTokenCount"]


def test_count_tokens_is_recorded_at_no_cost_and_bad_keys_are_refused(gemini: Stack, monkeypatch):
    key = gemini.cli.new_key("gemini-count")["key"]
    client = _sdk(gemini, key, monkeypatch)
    assert client.models.count_tokens(model=MODEL, contents="hi").total_tokens > 0
    row = wait_for(lambda: _row(gemini, "gemini-count", 1), timeout=5)
    assert row["cost_usd"] in ("0", "0.00") and row["unpriced_requests"] == 0
    bad = _sdk(gemini, "tk-not-a-key", monkeypatch)
    with pytest.raises(genai.errors.ClientError) as exc:
        bad.models.generate_content(model=MODEL, contents="hi")
    assert exc.value.code == 401
    assert len(gemini.upstream.requests) == 1


def test_mid_stream_error_and_cut_stream_are_recorded(gemini: Stack, monkeypatch):
    key = gemini.cli.new_key("gemini-errors")["key"]
    client = _sdk(gemini, key, monkeypatch)
    gemini.upstream.set_scenario("midstream_error", events=2, times=1)
    with pytest.raises(genai.errors.APIError):
        list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    gemini.upstream.set_scenario("cut", events=2, times=1)
    with contextlib.suppress(genai.errors.APIError, httpx.HTTPError):
        list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    row = wait_for(lambda: _row(gemini, "gemini-errors", 2), timeout=5)
    assert row["error_requests"] == 2 and row["estimated_requests"] == 2


def test_a_client_that_leaves_a_gemini_stream_is_billed_for_what_it_got(gemini: Stack, monkeypatch):
    key = gemini.cli.new_key("gemini-abort")["key"]
    client = _sdk(gemini, key, monkeypatch)
    gemini.upstream.set_scenario("ok", delay=0.4)
    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    next(iter(stream))
    stream.close()
    row = wait_for(lambda: _row(gemini, "gemini-abort", 1), timeout=5)
    assert row["error_requests"] == 1 and row["input_tokens"] > 0
