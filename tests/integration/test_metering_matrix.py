"""Every API x {non-stream, stream, aborted, error} through the real proxy, and the
OpenAI-compatible providers: what is recorded equals what the upstream reported, or is
flagged as estimated when the upstream never said."""

from __future__ import annotations

import contextlib
import sqlite3

import anthropic
import openai
import pytest
from fakes import payloads
from integration.conftest import Stack
from integration.harness import wait_for

MESSAGES = [{"role": "user", "content": "tell me a story"}]


def _records(stack: Stack, project: str, n: int) -> list[dict]:
    def fetch() -> list[dict]:
        con = sqlite3.connect(stack.workdir / "home" / "tollkeeper.db")
        con.row_factory = sqlite3.Row
        rows = [
            dict(r)
            for r in con.execute(
                "select * from usage_records where project = ? order by id", (project,)
            )
        ]
        con.close()
        return rows if len(rows) >= n else []

    rows = wait_for(fetch, timeout=5)
    assert len(rows) == n, rows
    return rows


def test_legacy_completions_plain_and_streamed(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("legacy")["key"], monkeypatch)
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    chunks = list(
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True)
    )
    assert all(c.usage is None for c in chunks)  # injected usage chunk stripped
    u = payloads.OPENAI_COMPLETIONS_USAGE
    for rec in _records(stack, "legacy", 2):
        assert (rec["input_tokens"], rec["output_tokens"]) == (
            u["prompt_tokens"],
            u["completion_tokens"],
        )
        assert not rec["estimated"] and rec["cost_picousd"] is not None


def test_responses_stream_takes_usage_from_response_completed(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("responses-stream")["key"], monkeypatch)
    events = list(client.responses.create(model="gpt-5-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    (rec,) = _records(stack, "responses-stream", 1)
    u = payloads.OPENAI_RESPONSES_USAGE
    assert rec["input_tokens"] == u["input_tokens"] and rec["streamed"]
    assert rec["cached_input_tokens"] == u["input_tokens_details"]["cached_tokens"]
    assert rec["reasoning_tokens"] == u["output_tokens_details"]["reasoning_tokens"]
    assert rec["cost_picousd"] == 526_400_000  # $0.0005264 (providers.md §4.4)


def test_openai_mid_stream_error_is_recorded_and_estimated(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("oa-midstream")["key"], monkeypatch)
    stack.upstream.set_scenario("midstream_error", events=2)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    (rec,) = _records(stack, "oa-midstream", 1)
    assert rec["error_kind"].startswith("stream_error") and rec["estimated"]
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0  # from tiktoken


def test_anthropic_error_event_after_200_keeps_the_reported_input(stack: Stack, monkeypatch):
    client = stack.anthropic_forward(stack.cli.new_key("an-midstream")["key"], monkeypatch)
    stack.upstream.set_scenario("midstream_error", events=2)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as s,
    ):
        for _ in s:
            pass
    (rec,) = _records(stack, "an-midstream", 1)
    start = payloads.ANTHROPIC_STREAM_START_USAGE
    reported_input = (
        start["input_tokens"]
        + start["cache_creation_input_tokens"]
        + start["cache_read_input_tokens"]
    )
    assert rec["input_tokens"] == reported_input  # message_start said so: not estimated
    assert rec["error_kind"] == "stream_error:overloaded_error" and rec["estimated"]
    assert rec["output_tokens"] >= 1


def test_client_that_disconnects_mid_stream_is_billed_for_what_it_got(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("aborted")["key"], monkeypatch)
    stack.upstream.set_scenario("ok", delay=0.3)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    (rec,) = _records(stack, "aborted", 1)
    assert rec["error_kind"] == "client_disconnected" and rec["estimated"]
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0
    assert rec["cost_picousd"] is not None and rec["cost_picousd"] > 0


def test_upstream_that_cuts_a_stream_is_recorded(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("cut")["key"], monkeypatch)
    stack.upstream.set_scenario("cut", events=3)
    with contextlib.suppress(openai.APIError):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    (rec,) = _records(stack, "cut", 1)
    assert rec["error_kind"] == "upstream_disconnected", rec
    assert rec["estimated"] and rec["output_tokens"] > 0


COMPATIBLE = {
    "mistral": ("https://api.mistral.ai/v1", "mistral-small-latest"),
    "groq": ("https://api.groq.com/openai/v1", "llama-3.3-70b-versatile"),
    "deepseek": ("https://api.deepseek.com", "deepseek-chat"),
    "xai": ("https://api.x.ai/v1", "grok-3-mini"),
    "together": ("https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    "fireworks": (
        "https://api.fireworks.ai/inference/v1",
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
    ),
    "openrouter": ("https://openrouter.ai/api/v1", "openai/gpt-4o-mini"),
}


def _compatible_key(stack: Stack, name: str) -> str:
    """The real key of ``name``, added once per gateway; returns when the gateway has it."""
    real = f"sk-{name}-REAL-000000000000000000000001"
    if not any(p["provider"] == name for p in stack.cli.json("providers", "list", "--json")):
        stack.cli.add_provider(name, real, stack.upstream.base_url + "/v1")
    assert wait_for(lambda: stack.gateway.real_key_state(name, "main") == "healthy")
    return real


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_openai_compatible_providers(stack: Stack, monkeypatch, name: str):
    base, model = COMPATIBLE[name]
    real = _compatible_key(stack, name)
    client = stack.openai_forward(stack.cli.new_key(f"compat-{name}")["key"], monkeypatch)
    client = client.with_options(base_url=base)
    client.chat.completions.create(model=model, messages=MESSAGES)
    list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    for req in stack.upstream.requests:
        assert req.headers["authorization"] == f"Bearer {real}"
    recs = _records(stack, f"compat-{name}", 2)
    assert {r["provider"] for r in recs} == {name}
    plain, streamed = recs
    assert plain["input_tokens"] == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    if name != "openrouter":
        assert streamed["input_tokens"] == plain["input_tokens"] and not streamed["estimated"]
    else:  # real OpenRouter always streams usage; the fake only does when asked
        assert streamed["estimated"]
    injected = stack.upstream.requests[-1].json().get("stream_options")
    assert (injected is None) == (name == "openrouter")  # it always sends usage


def test_anthropic_count_tokens_is_free_and_an_aborted_stream_is_estimated(
    stack: Stack, monkeypatch
):
    client = stack.anthropic_forward(stack.cli.new_key("an-more")["key"], monkeypatch)
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)
    assert counted.input_tokens > 0
    stack.upstream.set_scenario("ok", delay=0.3)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as s:
        for i, _ in enumerate(s):
            if i == 3:
                break
    count, aborted = _records(stack, "an-more", 2)
    assert count["endpoint"] == "/v1/messages/count_tokens" and count["cost_picousd"] == 0
    assert (count["input_tokens"], count["estimated"]) == (0, 0)  # a count is not usage
    assert aborted["error_kind"] == "client_disconnected" and aborted["estimated"]
    assert aborted["input_tokens"] > 0


def test_responses_error_event_is_recorded(stack: Stack, monkeypatch):
    client = stack.openai_forward(stack.cli.new_key("responses-error")["key"], monkeypatch)
    stack.upstream.set_scenario("midstream_error", events=2)
    with contextlib.suppress(openai.APIError):
        list(client.responses.create(model="gpt-5-mini", input="hi", stream=True))
    (rec,) = _records(stack, "responses-error", 1)
    assert rec["error_kind"].startswith("stream_error") and rec["estimated"]


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_openai_compatible_aborted_stream_and_error(stack: Stack, monkeypatch, name: str):
    base, model = COMPATIBLE[name]
    _compatible_key(stack, name)
    project = f"compat-fail-{name}"
    client = stack.openai_forward(stack.cli.new_key(project)["key"], monkeypatch)
    client = client.with_options(base_url=base)
    stack.upstream.set_scenario("ok", delay=0.3)
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    stack.upstream.set_scenario("status", code=500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=model, messages=MESSAGES)
    aborted, failed = _records(stack, project, 2)
    assert aborted["error_kind"] == "client_disconnected" and aborted["estimated"]
    assert aborted["provider"] == name and aborted["output_tokens"] > 0
    assert (failed["status_code"], failed["error_kind"]) == (500, "upstream_500")
    assert failed["cost_picousd"] == 0 and not failed["estimated"]
