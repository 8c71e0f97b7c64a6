"""Clients reach providers through the gateway with a virtual key; the provider sees only
the real key; the client gets the provider's answer; every call is recorded exactly."""

from __future__ import annotations

import pytest
from fakes import payloads
from integration.conftest import ANTHROPIC_REAL, OPENAI_REAL, Stack
from integration.harness import wait_for


def _usage_of(stack: Stack, project: str, requests: int | None = None) -> dict:
    """The project's usage row, once it counts ``requests`` requests (None: any)."""

    def row() -> list[dict]:
        rows = [r for r in stack.cli.usage("project") if r["project"] == project]
        return [r for r in rows if requests is None or r["requests"] == requests]

    rows = wait_for(row)
    assert rows, f"no usage recorded for {project}: {stack.cli.usage('project')}"
    return rows[0]


def _auth_headers(req) -> dict[str, str]:
    return {k: req.headers.get(k) for k in ("authorization", "x-api-key") if k in req.headers}


@pytest.mark.parametrize("way", ["forward", "reverse"])
def test_openai_chat_responses_and_embeddings(stack: Stack, monkeypatch, way: str) -> None:
    project = f"openai-{way}"
    key = stack.cli.new_key(project)["key"]
    client = getattr(stack, f"openai_{way}")(key, monkeypatch)

    chat = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    resp = client.responses.create(model="gpt-5-mini", input="hi")
    emb = client.embeddings.create(model="text-embedding-3-small", input="hi")

    assert chat.usage.prompt_tokens == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    assert resp.usage.input_tokens == payloads.OPENAI_RESPONSES_USAGE["input_tokens"]
    assert emb.usage.prompt_tokens == payloads.OPENAI_EMBEDDINGS_USAGE["prompt_tokens"]
    seen = stack.upstream.requests
    assert [r.path for r in seen] == ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"]
    for r in seen:
        assert _auth_headers(r) == {"authorization": f"Bearer {OPENAI_REAL}"}
        assert key not in repr(r.headers) and key.encode() not in r.body

    row = _usage_of(stack, project, requests=3)
    chat_u, resp_u = payloads.OPENAI_CHAT_USAGE, payloads.OPENAI_RESPONSES_USAGE
    emb_u = payloads.OPENAI_EMBEDDINGS_USAGE
    assert row["requests"] == 3
    assert row["input_tokens"] == (
        chat_u["prompt_tokens"] + resp_u["input_tokens"] + emb_u["prompt_tokens"]
    )
    assert row["cached_input_tokens"] == (
        chat_u["prompt_tokens_details"]["cached_tokens"]
        + resp_u["input_tokens_details"]["cached_tokens"]
    )
    assert row["output_tokens"] == chat_u["completion_tokens"] + resp_u["output_tokens"]
    assert row["reasoning_tokens"] == resp_u["output_tokens_details"]["reasoning_tokens"]
    # gpt-4o-mini $0.0001272 (providers.md §4.4) + gpt-5-mini $0.0005264 + 8 tokens embedding
    assert row["cost_usd"] == "0.00065376"


@pytest.mark.parametrize("way", ["forward", "reverse"])
def test_anthropic_messages(stack: Stack, monkeypatch, way: str) -> None:
    project = f"anthropic-{way}"
    key = stack.cli.new_key(project)["key"]
    client = getattr(stack, f"anthropic_{way}")(key, monkeypatch)

    msg = client.messages.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )

    assert msg.usage.output_tokens == payloads.ANTHROPIC_MESSAGES_USAGE["output_tokens"]
    (req,) = stack.upstream.requests
    assert _auth_headers(req) == {"x-api-key": ANTHROPIC_REAL}
    assert req.headers.get("anthropic-version")
    u = payloads.ANTHROPIC_MESSAGES_USAGE
    row = _usage_of(stack, project)
    assert row["input_tokens"] == (
        u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
    )
    assert row["cache_write_tokens"] == u["cache_creation_input_tokens"]
    assert row["output_tokens"] == u["output_tokens"]
    # claude-haiku-4-5: 25 * $1 + 1800 * $1.25 + 12 * $5 per million
    assert row["cost_usd"] == "0.002335"


def test_anthropic_accepts_x_api_key_and_forwards_only_the_real_key(stack: Stack, monkeypatch):
    import httpx2 as httpx  # the transport the SDKs use

    key = stack.cli.new_key("curl-style")["key"]
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x"}],
    }
    with httpx.Client(trust_env=False) as c:
        r = c.post(
            stack.gateway.reverse_url("anthropic") + "/v1/messages",
            json=body,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
    assert r.status_code == 200, r.text
    (req,) = stack.upstream.requests
    assert _auth_headers(req) == {"x-api-key": ANTHROPIC_REAL}


def test_streamed_chat_arrives_chunk_by_chunk_and_is_recorded(stack: Stack, monkeypatch):
    key = stack.cli.new_key("stream")["key"]
    stack.upstream.set_scenario("ok", delay=0.3)
    client = stack.openai_forward(key, monkeypatch)
    import time

    arrivals, chunks = [], []
    start = time.monotonic()
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        arrivals.append(time.monotonic() - start)
        chunks.append(chunk)
    # passed through as it arrived, not buffered: the first chunk long before the last
    assert arrivals[-1] - arrivals[0] > 0.9
    # the client did not ask for usage, so it does not get the injected usage chunk
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert stack.upstream.requests[0].json()["stream_options"] == {"include_usage": True}
    row = _usage_of(stack, "stream")
    assert row["input_tokens"] == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    assert row["output_tokens"] == payloads.OPENAI_CHAT_USAGE["completion_tokens"]
    assert row["estimated_requests"] == 0


def test_stream_client_that_asked_for_usage_gets_it(stack: Stack, monkeypatch):
    key = stack.cli.new_key("stream-usage")["key"]
    client = stack.openai_reverse(key, monkeypatch)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1200


def test_anthropic_stream_is_recorded_with_last_cumulative_usage(stack: Stack, monkeypatch):
    key = stack.cli.new_key("anthropic-stream")["key"]
    client = stack.anthropic_forward(key, monkeypatch)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        final = s.get_final_message()
    row = _usage_of(stack, "anthropic-stream")
    assert row["output_tokens"] == final.usage.output_tokens
    start = payloads.ANTHROPIC_STREAM_START_USAGE
    assert row["input_tokens"] == (
        start["input_tokens"]
        + start["cache_creation_input_tokens"]
        + start["cache_read_input_tokens"]
    )
