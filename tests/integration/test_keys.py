"""Virtual keys at the gateway: bad keys are refused before anything is forwarded,
revocation takes effect within a second, and everything survives a restart."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest
from integration.conftest import OPENAI_REAL, Stack
from integration.harness import wait_for

MESSAGES = [{"role": "user", "content": "hi"}]


def _chat(client: openai.OpenAI):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


@pytest.mark.parametrize(
    "presented",
    [
        "tk-abcdefghij-" + "0" * 40,  # well-formed but unknown
        "tk-garbage",  # malformed
        OPENAI_REAL,  # a real provider key sent directly
        "",  # missing
    ],
    ids=["unknown", "malformed", "real-provider-key", "missing"],
)
def test_bad_keys_get_401_and_nothing_is_forwarded(stack: Stack, monkeypatch, presented):
    client = stack.openai_forward(presented or "placeholder", monkeypatch)
    if not presented:
        client.api_key = ""  # the SDK refuses an empty key at construction
        client._custom_headers = {"Authorization": ""}
    with pytest.raises(openai.AuthenticationError) as exc:
        _chat(client)
    assert exc.value.response.headers["x-tollkeeper-error"] == "invalid_key"
    assert exc.value.body["code"] == "invalid_api_key"
    assert stack.upstream.requests == []


def test_anthropic_bad_key_is_anthropic_shaped(stack: Stack, monkeypatch):
    client = stack.anthropic_reverse("tk-nope", monkeypatch)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)
    assert exc.value.body["error"]["type"] == "authentication_error"
    assert exc.value.response.headers["x-tollkeeper-error"] == "invalid_key"
    assert stack.upstream.requests == []


def test_revocation_is_enforced_within_a_second_and_other_keys_keep_working(
    stack: Stack, monkeypatch
):
    doomed = stack.cli.new_key("revoke-me")
    other = stack.cli.new_key("keep-me")
    doomed_client = stack.openai_forward(doomed["key"], monkeypatch)
    other_client = stack.openai_forward(other["key"], monkeypatch)
    _chat(doomed_client)

    stack.cli.run("keys", "revoke", doomed["id"], "--reason", "leaked")
    revoked_at = time.monotonic()

    def refused() -> bool:
        try:
            _chat(doomed_client)
        except openai.AuthenticationError as e:
            assert e.response.headers["x-tollkeeper-error"] == "invalid_key"
            return True
        return False

    assert wait_for(refused, timeout=1.0, interval=0.05)
    assert time.monotonic() - revoked_at <= 1.0
    assert _chat(other_client).usage.total_tokens > 0


def test_expired_key_is_refused(stack: Stack, monkeypatch):
    key = stack.cli.new_key("short-lived", "--expires-in", "1s")
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError):
        _chat(stack.openai_forward(key["key"], monkeypatch))
    assert stack.upstream.requests == []


def test_rotated_key_old_secret_stops_new_secret_works(stack: Stack, monkeypatch):
    key = stack.cli.new_key("rotate")
    new = stack.cli.json("keys", "rotate", key["id"], "--json")
    assert new["id"] == key["id"] and new["key"] != key["key"]
    assert wait_for(lambda: _refused(stack.openai_forward(key["key"], monkeypatch)), 2.0)
    assert _chat(stack.openai_forward(new["key"], monkeypatch)).usage.total_tokens > 0


def _refused(client: openai.OpenAI) -> bool:
    try:
        _chat(client)
    except openai.AuthenticationError:
        return True
    return False


def test_everything_survives_a_restart(fresh_stack: Stack, monkeypatch):
    s = fresh_stack
    key = s.cli.new_key("persistent")
    _chat(s.openai_forward(key["key"], monkeypatch))
    assert s.gateway.stop() == 0
    before = s.cli.usage("project")
    s.gateway.start()
    _chat(s.openai_forward(key["key"], monkeypatch))
    after = wait_for(lambda: [r for r in s.cli.usage("project") if r["requests"] == 2], timeout=5)
    assert before[0]["requests"] == 1 and after[0]["project"] == "persistent"
    providers = s.cli.json("providers", "list", "--json")
    assert {p["provider"] for p in providers} == {"openai", "anthropic"}
