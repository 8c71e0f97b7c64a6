"""Real-key health through a real mitmdump: only answers about the key take it out, a cooling
key comes back by itself after its backoff, and ``providers enable`` brings it back at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from integration.conftest import OPENAI_REAL, Stack, build_stack
from integration.harness import wait_for

MESSAGES = [{"role": "user", "content": "hi"}]
GEMINI_REAL = "AIza-REAL-gemini-key-000000000000000002"
FORBIDDEN = {"x-fake-scenario": "status; code=403"}  # the provider refuses this request only


@pytest.fixture(scope="module")
def quick_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway whose rejected keys are retried after 1 s (doubling) instead of 30 s."""
    tmp = tmp_path_factory.mktemp("key-health")
    yield from build_stack(tmp, extra_args=("--set", "tollkeeper_key_retry=1"))


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "quick_stack" in request.fixturenames:
        s: Stack = request.getfixturevalue("quick_stack")
        s.upstream.reset()
        s.close_clients()
        listed = s.cli.json("providers", "list", "--json")
        for p in listed:
            s.cli.run("providers", "enable", p["provider"], "--label", p["label"])
        # the next test starts once the running gateway has them back
        assert wait_for(
            lambda: all(
                s.gateway.real_key_state(p["provider"], p["label"]) == "healthy" for p in listed
            )
        )


def _chat(client: openai.OpenAI, model: str = "gpt-4o-mini", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=MESSAGES, **kw)


def _health(s: Stack, provider: str = "openai") -> dict[str, Any]:
    (item,) = [p for p in s.cli.json("providers", "list", "--json") if p["provider"] == provider]
    return dict(item["health"])


def _serves(client: openai.OpenAI) -> bool:
    try:
        return _chat(client).usage.total_tokens > 0
    except openai.APIStatusError as e:
        assert e.status_code == 503, e  # the gateway's own answer while the key is out
        return False


def test_a_403_for_one_tenants_request_does_not_lock_the_other_tenants_out(
    quick_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = quick_stack
    one = s.openai_forward(s.cli.new_key("tenant-one")["key"], monkeypatch)
    other = s.openai_forward(s.cli.new_key("tenant-two")["key"], monkeypatch)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        _chat(one, model="gpt-4o", extra_headers=FORBIDDEN)
    assert exc.value.code == "model_not_found"  # the provider's own answer, passed through
    assert "x-tollkeeper-error" not in exc.value.response.headers
    for client in (other, one, other):  # at once, and the only openai key serves them all
        assert _chat(client).usage.total_tokens > 0
    assert _health(s)["status"] == "healthy"


def test_an_anthropic_permission_error_leaves_the_key_alone(
    quick_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = quick_stack
    client = s.anthropic_forward(s.cli.new_key("claude-tenant")["key"], monkeypatch)

    def ask(**kw: Any) -> Any:
        return client.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES, **kw
        )

    with pytest.raises(anthropic.PermissionDeniedError):
        ask(extra_headers=FORBIDDEN)
    assert ask().usage.output_tokens > 0
    assert _health(s, "anthropic")["status"] == "healthy"


def test_an_invalid_key_cools_the_key_and_it_comes_back_by_itself(
    quick_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = quick_stack
    client = s.openai_forward(s.cli.new_key("rejected")["key"], monkeypatch)
    s.upstream.key_status[OPENAI_REAL] = 401  # revoked upstream: 401 invalid_api_key
    with pytest.raises(openai.AuthenticationError) as exc:
        _chat(client)
    assert exc.value.code == "invalid_api_key" and OPENAI_REAL not in exc.value.response.text
    with pytest.raises(openai.InternalServerError) as exc2:  # the key is out: the gateway says why
        _chat(client)
    response = exc2.value.response
    assert response.status_code == 503 and response.headers["x-tollkeeper-error"] == "no_real_key"
    message = response.json()["error"]["message"]
    assert "its only key is out: rejected by the provider (401 invalid_api_key)" in message
    assert int(response.headers["retry-after"]) >= 1
    assert wait_for(lambda: _health(s)["status"] == "key_rejected", timeout=5)
    assert _health(s)["last_error"] == "401 invalid_api_key"

    s.upstream.key_status.clear()  # the operator fixed the key upstream
    assert wait_for(lambda: _serves(client), timeout=15, interval=0.2)
    assert _chat(client).usage.total_tokens > 0
    assert wait_for(lambda: _health(s)["status"] == "healthy", timeout=5)
    rejected = [r for r in s.upstream.requests if r.scenario == "status"]
    assert len(rejected) == 1  # while it was out, nothing else went to the provider with it


def test_a_bad_gemini_key_on_a_streamed_request_cools_the_key(
    quick_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemini says "bad key" with a 400 API_KEY_INVALID, also to a streamGenerateContent."""
    genai = pytest.importorskip("google.genai", reason="google-genai is a test dependency")
    s = quick_stack
    if not any(p["provider"] == "gemini" for p in s.cli.json("providers", "list", "--json")):
        s.cli.add_provider("gemini", GEMINI_REAL, s.upstream.base_url)
        assert wait_for(lambda: s.gateway.real_key_state("gemini", "main") == "healthy")
    for name in list(os.environ):
        if name.startswith(("GOOGLE_", "GEMINI_")):
            monkeypatch.delenv(name)
    key = s.cli.new_key("gemini-tenant")["key"]
    s.openai_forward(key, monkeypatch)  # HTTPS_PROXY and the CA for this test
    client = s.track(genai.Client(api_key=key))
    wait_for(lambda: _health(s, "gemini")["status"] == "healthy", timeout=5)
    s.upstream.key_status[GEMINI_REAL] = 401  # the fake answers as Google does: 400
    with pytest.raises(genai.errors.ClientError) as exc:
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert exc.value.code == 400 and "API_KEY_INVALID" in str(exc.value.details)
    with pytest.raises(genai.errors.ServerError) as exc2:  # the gateway's 503: the key is out
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc2.value.code == 503 and "400 API_KEY_INVALID" in str(exc2.value.details)
    assert wait_for(lambda: _health(s, "gemini")["status"] == "key_rejected", timeout=5)


def test_enable_brings_a_rejected_key_back_at_once_in_the_running_gateway(
    fresh_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = fresh_stack  # default backoff: 30 s before the key would be tried again
    client = s.openai_forward(s.cli.new_key("enabled")["key"], monkeypatch)
    s.upstream.key_status[OPENAI_REAL] = 401
    with pytest.raises(openai.AuthenticationError):
        _chat(client)
    s.upstream.key_status.clear()
    with pytest.raises(openai.InternalServerError) as exc:
        _chat(client)
    assert int(exc.value.response.headers["retry-after"]) > 20  # it would wait on its own
    # at once: the writer may record the rejection only after this enable; it must not undo it
    s.cli.run("providers", "enable", "openai", "--label", "main")
    assert wait_for(lambda: _serves(client), timeout=5, interval=0.1)
    events = [e for e in s.cli.json("audit", "--json") if e["action"] == "real_key.enabled"]
    assert [e["target"] for e in events] == ["openai/main"]
