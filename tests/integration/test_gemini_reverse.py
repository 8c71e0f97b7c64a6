"""Gemini by base URL: the google-genai SDK at the reverse listener `tollkeeper serve
--gemini-port` opens, no proxy and no CA, with http_options={'base_url': …} or the SDK's
GOOGLE_GEMINI_BASE_URL, which `tollkeeper client-env` prints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import payloads
from integration.conftest import Stack, _no_proxy_env, build_stack
from integration.harness import wait_for

genai = pytest.importorskip("google.genai", reason="google-genai is a test dependency")

GEMINI_REAL = "AIza-REAL-gemini-key-000000000000000002"
MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def gemini_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("gemini-reverse")
    for stack in build_stack(tmp, reverse=("openai", "gemini")):
        stack.cli.add_provider("gemini", GEMINI_REAL, stack.upstream.base_url)
        assert wait_for(lambda s=stack: s.gateway.real_key_state("gemini", "main") == "healthy")
        yield stack


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_env(monkeypatch)
    for name in list(os.environ):
        if name.startswith(("GOOGLE_", "GEMINI_")):
            monkeypatch.delenv(name)


def _check(stack: Stack, client, project: str) -> None:
    reply = client.models.generate_content(model=MODEL, contents="hi")
    assert reply.usage_metadata.prompt_token_count == payloads.GEMINI_USAGE["promptTokenCount"]
    (seen,) = stack.upstream.requests
    assert seen.path.endswith(f"/models/{MODEL}:generateContent")  # v1 or v1beta by SDK
    assert seen.headers["x-goog-api-key"] == GEMINI_REAL
    rows = wait_for(lambda: [r for r in stack.cli.usage() if r["project"] == project])
    assert rows and rows[0]["requests"] == 1
    assert rows[0]["input_tokens"] == payloads.GEMINI_USAGE["promptTokenCount"]


def test_the_listener_is_the_one_serve_opens(gemini_stack: Stack) -> None:
    port = gemini_stack.gateway.reverse_ports["gemini"]
    printed = gemini_stack.cli.run("serve", "--dry-run", "--gemini-port", str(port)).stdout
    (mode,) = [m for m in gemini_stack.gateway.modes if m.endswith(f":{port}")]
    assert f"--mode {mode}" in printed


def test_sdk_with_http_options_base_url(gemini_stack: Stack) -> None:
    gemini_stack.upstream.reset()
    key = gemini_stack.cli.new_key("gemini-base-url")["key"]
    base = gemini_stack.gateway.reverse_url("gemini")
    client = gemini_stack.track(genai.Client(api_key=key, http_options={"base_url": base}))
    _check(gemini_stack, client, "gemini-base-url")


def test_sdk_with_the_client_env_variable(gemini_stack: Stack, monkeypatch) -> None:
    gemini_stack.upstream.reset()
    key = gemini_stack.cli.new_key("gemini-env")["key"]
    port = str(gemini_stack.gateway.reverse_ports["gemini"])
    exported = gemini_stack.cli.json("client-env", "--json", "--gemini-port", port)
    base = exported["reverse_listeners"]["GOOGLE_GEMINI_BASE_URL"]
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", base)
    client = gemini_stack.track(genai.Client(api_key=key))
    _check(gemini_stack, client, "gemini-env")
