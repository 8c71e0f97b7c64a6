"""Azure OpenAI through the gateway: the official AzureOpenAI client through HTTPS_PROXY to
a resource host, deployment URLs with ``api-key``, the newer ``/openai/v1/`` URLs, and a
deployment→model map for pricing."""

from __future__ import annotations

import openai
import pytest
from fakes import payloads
from integration.conftest import Stack
from integration.harness import wait_for

AZURE_REAL = "azure-REAL-key-0000000000000000000000000001"
RESOURCE = "https://tk-test.openai.azure.com"


@pytest.fixture
def azure(stack: Stack) -> Stack:
    if not any(p["provider"] == "azure" for p in stack.cli.json("providers", "list", "--json")):
        stack.cli.run(
            "providers",
            "add",
            "azure",
            "--api-key-stdin",
            "--label",
            "main",
            "--base-url",
            stack.upstream.base_url,
            "--model-map",
            "prod-mini=gpt-4o-mini",
            stdin=AZURE_REAL + "\n",
        )
        assert wait_for(lambda: stack.gateway.real_key_state("azure", "main") == "healthy")
    return stack


def _row(stack: Stack, project: str, requests: int) -> dict | None:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    return rows[0] if rows and rows[0]["requests"] == requests else None


def test_deployment_urls_with_the_azure_client(azure: Stack, monkeypatch):
    key = azure.cli.new_key("azure-classic")["key"]
    azure.openai_forward(key, monkeypatch)  # HTTPS_PROXY and the CA
    client = azure.track(
        openai.AzureOpenAI(
            api_key=key, azure_endpoint=RESOURCE, api_version="2024-10-21", max_retries=0
        )
    )
    chat = client.chat.completions.create(
        model="prod-mini", messages=[{"role": "user", "content": "hi"}]
    )
    chunks = list(
        client.chat.completions.create(
            model="prod-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chat.usage.prompt_tokens == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    assert all(c.usage is None for c in chunks)  # the injected usage chunk was stripped
    for req in azure.upstream.requests:
        assert req.path.startswith("/openai/deployments/prod-mini/chat/completions?api-version=")
        assert req.headers["api-key"] == AZURE_REAL and "authorization" not in req.headers
    row = wait_for(lambda: _row(azure, "azure-classic", 2), timeout=5)
    assert row["input_tokens"] == 2 * payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    # priced through the map: prod-mini is gpt-4o-mini, $0.0001272 a call (providers.md §4.4)
    assert row["cost_usd"] == "0.0002544"


def test_v1_urls_with_the_plain_openai_client(azure: Stack, monkeypatch):
    key = azure.cli.new_key("azure-v1")["key"]
    client = azure.openai_forward(key, monkeypatch).with_options(base_url=RESOURCE + "/openai/v1")
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.usage.total_tokens > 0
    (req,) = azure.upstream.requests
    assert req.path == "/openai/v1/chat/completions"
    assert req.headers.get("api-key") == AZURE_REAL and "authorization" not in req.headers
    assert wait_for(lambda: _row(azure, "azure-v1", 1), timeout=5)


def test_azure_aborted_stream_and_error(azure: Stack, monkeypatch):
    key = azure.cli.new_key("azure-fail")["key"]
    azure.openai_forward(key, monkeypatch)
    client = azure.track(
        openai.AzureOpenAI(
            api_key=key, azure_endpoint=RESOURCE, api_version="2024-10-21", max_retries=0
        )
    )
    azure.upstream.set_scenario("ok", delay=0.3)
    stream = client.chat.completions.create(
        model="prod-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    azure.upstream.set_scenario("status", code=429, retry_after=1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="prod-mini", messages=[{"role": "user", "content": "hi"}]
        )
    row = wait_for(lambda: _row(azure, "azure-fail", 2), timeout=5)
    assert row["error_requests"] == 2 and row["estimated_requests"] == 1


def test_a_request_for_another_resource_is_refused_and_never_carries_the_key(
    fresh_stack: Stack, monkeypatch
):
    fresh_stack.cli.run(
        "providers",
        "add",
        "azure",
        "--api-key-stdin",
        "--base-url",
        "https://tk-bound.openai.azure.com",
        stdin=AZURE_REAL + "\n",
    )
    # refused for the resource, not for want of a key: the gateway has the key
    assert wait_for(lambda: fresh_stack.gateway.real_key_state("azure", "default") == "healthy")
    key = fresh_stack.cli.new_key("azure-bound")["key"]
    fresh_stack.openai_forward(key, monkeypatch)  # HTTPS_PROXY and the CA
    client = fresh_stack.track(
        openai.AzureOpenAI(
            api_key=key,
            azure_endpoint="https://tk-other.openai.azure.com",
            api_version="2024-10-21",
            max_retries=0,
        )
    )
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(
            model="prod-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.response.headers["x-tollkeeper-error"] == "not_allowed"
    assert "tk-other.openai.azure.com" in err.value.message
    assert fresh_stack.upstream.requests == []
