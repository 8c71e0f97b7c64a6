"""A provider the operator defines while the gateway runs (here: a self-hosted
OpenAI-compatible server) is metered like a built-in one."""

from __future__ import annotations

import openai
from fakes import payloads
from integration.conftest import Stack
from integration.harness import wait_for

LOCAL_REAL = "sk-local-REALkey-00000000000000000000001"


def test_a_defined_provider_is_metered_through_the_proxy(stack: Stack, monkeypatch):
    base = stack.upstream.base_url + "/v1"
    stack.cli.run("providers", "define", "vllm", "--base-url", base)
    stack.cli.add_provider("vllm", LOCAL_REAL, base, label="gpu")
    key = stack.cli.new_key("self-hosted", "--providers", "vllm")["key"]
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stack.gateway.proxy_url)  # plain http through the proxy
    client = stack.track(openai.OpenAI(api_key=key, base_url=base, max_retries=0, timeout=20))

    def served() -> bool:
        try:
            client.chat.completions.create(
                model="llama-3.1-8b", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.APIError:
            return False
        return True

    # the refresh that brings the key has brought the definition made before it
    assert wait_for(lambda: stack.gateway.real_key_state("vllm", "gpu") == "healthy")
    assert served()
    (req,) = stack.upstream.requests
    assert req.headers["authorization"] == f"Bearer {LOCAL_REAL}"
    rows = wait_for(
        lambda: [r for r in stack.cli.usage("project") if r["project"] == "self-hosted"]
    )
    assert rows[0]["input_tokens"] % payloads.OPENAI_CHAT_USAGE["prompt_tokens"] == 0
    assert rows[0]["unpriced_requests"] >= 1  # no price for a local model: unpriced, not $0
    by_provider = {r["provider"]: r for r in stack.cli.usage("provider")}
    assert "vllm" in by_provider
