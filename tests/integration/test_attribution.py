"""Attribution through a real mitmdump: the official SDKs name an end user and tags, the
provider never sees the gateway headers, and the records, reports and the per-request log
say who and what each request was for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2 as httpx
import openai
import pytest
from integration.conftest import Stack
from integration.harness import wait_for

pytestmark = pytest.mark.integration
ATTRIBUTION = {"x-tollkeeper-user": "alice@example.com", "x-tollkeeper-tags": "chat, beta"}


def _log(stack: Stack, project: str) -> list[dict[str, Any]]:
    return list(stack.cli.json("usage", "log", "--project", project, "--format", "json"))


def _report(stack: Stack, project: str, by: str) -> dict[Any, dict[str, Any]]:
    rows = stack.cli.json("usage", "--by", by, "--project", project, "--format", "json")
    return {r[by]: r for r in rows}


def test_openai_and_anthropic_requests_are_attributed_and_the_headers_stay_here(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = "attribution"
    key = stack.cli.new_key(project)["key"]
    oai = stack.openai_forward(key, monkeypatch)
    sent: list[tuple[str, Any]] = []  # (provider request id, response) in order
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=ATTRIBUTION,
    )
    sent.append((raw.headers["x-request-id"], raw.parse()))
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="body-user"
    )
    sent.append((raw.headers["x-request-id"], raw.parse()))
    ant = stack.anthropic_reverse(key, monkeypatch)
    raw_a = ant.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=16,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-tollkeeper-user": "bob", "x-tollkeeper-tags": "chat"},
    )
    sent.append((raw_a.headers["request-id"], raw_a.parse()))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[], extra_headers={"x-tollkeeper-tags": "no spaces"}
        )
    assert refused.value.response.headers["x-tollkeeper-error"] == "invalid_attribution"

    received = stack.upstream.requests
    assert len(received) == 3  # the refused request never left the gateway
    for request in received:
        assert not [n for n in request.headers if n.lower().startswith("x-tollkeeper")]
    assert received[1].json()["user"] == "body-user"  # the body goes as the client sent it

    rows = wait_for(lambda: (r := _log(stack, project)) and len(r) == 4 and r)
    assert rows, _log(stack, project)
    rows = rows[::-1]  # oldest first, as sent
    expected = [
        ("openai", "alice@example.com", ["chat", "beta"]),
        ("openai", "body-user", []),
        ("anthropic", "bob", ["chat"]),
    ]
    for row, (provider, user, tags), (request_id, response) in zip(
        rows, expected, sent, strict=False
    ):
        assert (row["provider"], row["user"], row["tags"]) == (provider, user, tags)
        assert (row["status"], row["provider_request_id"]) == (200, request_id)
        assert row["model"] == response.model
        tokens = response.usage
        if provider == "openai":
            assert (row["input_tokens"], row["output_tokens"]) == (
                tokens.prompt_tokens,
                tokens.completion_tokens,
            )
        else:
            assert row["output_tokens"] == tokens.output_tokens
        assert row["latency_ms"] is not None and row["ttfb_ms"] is not None
        assert row["estimated"] is False
        assert row["cost_usd"] is not None
    refused_row = rows[3]
    assert (refused_row["status"], refused_row["error_kind"]) == (400, "invalid_attribution")
    assert (refused_row["user"], refused_row["tags"]) == (None, [])

    users = _report(stack, project, "user")
    assert {u: r["requests"] for u, r in users.items()} == {
        "alice@example.com": 1,
        "body-user": 1,
        "bob": 1,
        None: 1,
    }
    tags = _report(stack, project, "tag")
    assert {t: r["requests"] for t, r in tags.items()} == {"chat": 2, "beta": 1, None: 2}
    chat_cost = sum(Decimal(r["cost_usd"]) for r in rows if "chat" in r["tags"])
    assert Decimal(tags["chat"]["cost_usd"]) == chat_cost  # each tagged request, in full

    metrics = httpx.get(stack.gateway.admin_url + "/metrics", timeout=5, trust_env=False).text
    assert "alice" not in metrics and "body-user" not in metrics  # no per-user labels


def test_a_streamed_answer_is_attributed_too(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    project = "attribution-stream"
    oai = stack.openai_forward(stack.cli.new_key(project)["key"], monkeypatch)
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-tollkeeper-user": "carol", "x-tollkeeper-tags": "stream"},
    ) as response:
        request_id = response.headers["x-request-id"]
        usage = [c.usage for c in response.parse() if c.usage is not None][-1]
    assert "x-tollkeeper-user" not in stack.upstream.requests[-1].headers
    rows = wait_for(lambda: _log(stack, project))
    assert rows, "no record"
    (row,) = rows
    assert (row["user"], row["tags"], row["streamed"]) == ("carol", ["stream"], True)
    assert (row["provider_request_id"], row["status"]) == (request_id, 200)
    assert (row["input_tokens"], row["output_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["ttfb_ms"] is not None and row["ttfb_ms"] <= row["latency_ms"]
