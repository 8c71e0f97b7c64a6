"""On the wire, as real clients use the gateway: one client, one kept-alive connection, several
calls in a row — over HTTP/1.1 and HTTP/2, through a reverse listener and the forward proxy.

The client must get exactly the upstream's stream bytes (minus an injected usage chunk it did
not ask for), correctly framed whatever way the upstream split them (one event per chunk, cut
mid-event, close-delimited), and the next call on the same connection must still work. The
upstream must see exactly one request per call (an SDK that silently retries a poisoned
connection makes the provider serve and bill a request twice) and each call must end as exactly
one usage record carrying the upstream's numbers.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from fakes import payloads
from integration.conftest import Stack, _no_proxy_env
from integration.harness import wait_for

genai = pytest.importorskip("google.genai", reason="google-genai is a test dependency")
types = pytest.importorskip("google.genai.types")

GEMINI_REAL = "AIza-REAL-gemini-key-000000000000000003"
GEMINI_HOST = "https://generativelanguage.googleapis.com"
CHAT = payloads.OPENAI_CHAT_USAGE
RESPONSES = payloads.OPENAI_RESPONSES_USAGE
ANTHROPIC_INPUT = 25 + 1800  # input + cache writes (the gateway's convention)
MESSAGES = [{"role": "user", "content": "hello"}]


@dataclass(frozen=True)
class Transport:
    name: str
    forward: bool  # through HTTPS_PROXY-style CONNECT, else a reverse listener
    http2: bool
    tls: bool  # TLS between the client and the gateway (always when forwarding)

    @property
    def http_version(self) -> str:
        return "HTTP/2" if self.http2 else "HTTP/1.1"


TRANSPORTS = [
    Transport("reverse-http1", forward=False, http2=False, tls=False),
    Transport("reverse-tls-http2", forward=False, http2=True, tls=True),
    Transport("forward-http1", forward=True, http2=False, tls=True),
    Transport("forward-http2", forward=True, http2=True, tls=True),
]


class Wire:
    """One HTTP client through the gateway that notes the version and connection of every
    response it gets."""

    def __init__(self, stack: Stack, transport: Transport) -> None:
        self.stack, self.transport = stack, transport
        self.seen: list[tuple[str, Any]] = []
        self.client = stack.track(
            httpx.Client(
                http1=not transport.http2,
                http2=transport.http2,
                verify=ssl.create_default_context(cafile=stack.gateway.ca_cert),
                proxy=stack.gateway.proxy_url if transport.forward else None,
                trust_env=False,
                timeout=20,
                event_hooks={"response": [self._saw]},
            )
        )

    def _saw(self, response: httpx.Response) -> None:
        self.seen.append((response.http_version, response.extensions.get("network_stream")))

    def base(self, provider: str) -> str:
        if self.transport.forward:
            return {
                "openai": "https://api.openai.com/v1",
                "anthropic": "https://api.anthropic.com",
                "gemini": GEMINI_HOST,
            }[provider]
        url = self.stack.gateway.reverse_url(provider) + ("/v1" if provider == "openai" else "")
        return url.replace("http://", "https://") if self.transport.tls else url

    def assert_reused(self, streamed: list[bool], origins: list[str] | None = None) -> None:
        """Every call came on the connection of the call before to the same origin wherever
        the client could keep it: always over HTTP/2; over HTTP/1.1 after an answer the
        client read to its end.
        (The sync openai SDK closes a stream at ``[DONE]`` without reading the chunked
        terminator, so over HTTP/1.1 it drops that connection itself, with or without a
        gateway.) A connection the gateway left unusable shows as a call that failed or was
        retried, or as a new connection after a complete answer."""
        assert len(self.seen) == len(streamed), self.seen
        assert {version for version, _ in self.seen} == {self.transport.http_version}
        assert all(stream is not None for _, stream in self.seen)
        origins = origins or [""] * len(streamed)
        changed = []
        for i in range(1, len(self.seen)):
            before = [j for j in range(i) if origins[j] == origins[i]]
            if not before:
                continue
            j = before[-1]
            reusable = self.transport.http2 or not streamed[j]
            if reusable and self.seen[i][1] is not self.seen[j][1]:
                changed.append(i)
        assert not changed, f"call(s) {changed} came on a new connection"


def records(stack: Stack, project: str, n: int) -> list[dict[str, Any]]:
    def fetch() -> list[dict[str, Any]]:
        con = sqlite3.connect(stack.workdir / "home" / "tollkeeper.db")
        con.row_factory = sqlite3.Row
        try:
            sql = "select * from usage_records where project = ? order by id"
            rows = [dict(r) for r in con.execute(sql, (project,))]
        finally:
            con.close()
        return rows if len(rows) >= n else []

    rows = wait_for(fetch, timeout=10)
    assert len(rows) == n, rows
    return rows


def assert_exact(row: dict[str, Any], input_tokens: int, output_tokens: int) -> None:
    assert row["status_code"] == 200, row
    assert row["error_kind"] is None, row
    assert not row["estimated"], row
    assert (row["input_tokens"], row["output_tokens"]) == (input_tokens, output_tokens), row


@pytest.fixture
def gemini(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    if not any(p["provider"] == "gemini" for p in stack.cli.json("providers", "list", "--json")):
        stack.cli.add_provider("gemini", GEMINI_REAL, stack.upstream.base_url)
        assert wait_for(lambda: stack.gateway.real_key_state("gemini", "main") == "healthy")
    for name in list(__import__("os").environ):
        if name.startswith(("GOOGLE_", "GEMINI_")):
            monkeypatch.delenv(name)
    return stack


# --- official SDKs, several calls on one connection ---------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_openai_sdk_stream_plain_stream_on_one_connection(
    stack: Stack, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    wire = Wire(stack, transport)
    project = f"wire-openai-{transport.name}"
    client = stack.track(
        openai.OpenAI(
            api_key=stack.cli.new_key(project)["key"],
            base_url=wire.base("openai"),
            http_client=wire.client,
            max_retries=2,  # the SDK default: a poisoned connection would be retried silently
        )
    )

    def stream(**kw: Any) -> list[Any]:
        return list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, **kw
            )
        )

    def text(chunks: list[Any]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    default = stream()  # no include_usage: the gateway injects it and strips the usage chunk
    assert text(default) == payloads.REPLY_TEXT
    assert all(c.usage is None for c in default)
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert plain.usage is not None and plain.usage.prompt_tokens == CHAT["prompt_tokens"]
    asked = stream(stream_options={"include_usage": True})
    assert asked[-1].usage is not None and asked[-1].usage.prompt_tokens == CHAT["prompt_tokens"]
    cut = stream(extra_headers={"x-fake-scenario": "ok; split=7"})  # events cut mid-line
    assert text(cut) == payloads.REPLY_TEXT
    assert all(c.usage is None for c in cut)
    events = list(
        client.responses.create(
            model="gpt-4.1",
            input="hi",
            stream=True,
            extra_headers={"x-fake-scenario": "ok; split=5"},
        )
    )
    assert events[-1].type == "response.completed"
    again = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.choices[0].message.content == payloads.REPLY_TEXT
    last = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert last.choices[0].message.content == payloads.REPLY_TEXT

    assert len(stack.upstream.requests) == 7  # one per call: nothing was retried
    wire.assert_reused([True, False, True, True, True, False, False])
    rows = records(stack, project, 7)
    for row in rows[:4] + rows[5:]:
        assert_exact(row, CHAT["prompt_tokens"], CHAT["completion_tokens"])
    assert_exact(rows[4], RESPONSES["input_tokens"], RESPONSES["output_tokens"])


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_anthropic_sdk_stream_plain_stream_on_one_connection(
    stack: Stack, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    wire = Wire(stack, transport)
    project = f"wire-anthropic-{transport.name}"
    client = stack.track(
        anthropic.Anthropic(
            api_key=stack.cli.new_key(project)["key"],
            base_url=wire.base("anthropic"),
            http_client=wire.client,
            max_retries=2,
        )
    )
    args: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MESSAGES}
    with client.messages.stream(**args) as first:
        assert first.get_final_text() == payloads.REPLY_TEXT
    plain = client.messages.create(**args)
    assert plain.usage.output_tokens == payloads.ANTHROPIC_MESSAGES_USAGE["output_tokens"]
    with client.messages.stream(**args, extra_headers={"x-fake-scenario": "ok; split=7"}) as cut:
        assert cut.get_final_text() == payloads.REPLY_TEXT
    again = client.messages.create(**args)
    assert again.usage.output_tokens == plain.usage.output_tokens

    assert len(stack.upstream.requests) == 4
    wire.assert_reused([True, False, True, False])
    first_row, plain_row, cut_row, again_row = records(stack, project, 4)
    assert_exact(first_row, ANTHROPIC_INPUT, 15)
    assert_exact(plain_row, ANTHROPIC_INPUT, 12)
    assert_exact(cut_row, ANTHROPIC_INPUT, 15)
    assert_exact(again_row, ANTHROPIC_INPUT, 12)


@pytest.mark.parametrize("transport", [t for t in TRANSPORTS if t.forward], ids=lambda t: t.name)
def test_gemini_sdk_stream_plain_stream_on_one_connection(
    gemini: Stack, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    wire = Wire(gemini, transport)
    project = f"wire-gemini-{transport.name}"
    client = gemini.track(
        genai.Client(
            api_key=gemini.cli.new_key(project)["key"],
            http_options=types.HttpOptions(httpx_client=wire.client),
        )
    )
    model = "gemini-2.5-flash"
    cut = types.GenerateContentConfig(
        http_options=types.HttpOptions(headers={"x-fake-scenario": "ok; split=7"})
    )
    first = list(client.models.generate_content_stream(model=model, contents="hi"))
    plain = client.models.generate_content(model=model, contents="hi")
    last = list(client.models.generate_content_stream(model=model, contents="hi", config=cut))
    again = client.models.generate_content(model=model, contents="hi")
    u = payloads.GEMINI_USAGE
    for reply in (first[-1], plain, last[-1], again):
        assert reply.usage_metadata is not None
        assert reply.usage_metadata.total_token_count == u["totalTokenCount"]
    assert "".join(c.text or "" for c in last) == payloads.REPLY_TEXT

    assert len(gemini.upstream.requests) == 4
    wire.assert_reused([True, False, True, False])
    output = u["candidatesTokenCount"] + u["thoughtsTokenCount"]
    for row in records(gemini, project, 4):
        assert_exact(row, u["promptTokenCount"], output)


# --- raw bytes: what the client receives, compared with what the upstream sent ------------------


def without_usage_chunk(body: bytes) -> bytes:
    """An OpenAI-style SSE body minus its usage-only chunk (choices == [] and a usage)."""
    events = body.split(b"\n\n")
    kept = []
    for event in events:
        data = event.removeprefix(b"data: ")
        if data.startswith(b"{"):
            obj = json.loads(data)
            if obj.get("choices") == [] and obj.get("usage") is not None:
                continue
        kept.append(event)
    return b"\n\n".join(kept)


@dataclass(frozen=True)
class Format:
    name: str
    provider: str
    path: str
    body: dict[str, Any]
    expected: Callable[[bytes], bytes] = bytes  # the client's bytes, from the upstream's
    usage: tuple[int, int] = (CHAT["prompt_tokens"], CHAT["completion_tokens"])
    byte_by_byte: bool = False  # also send the body one byte per chunk (slow: the fragile ones)
    scenario: str = "ok"

    @property
    def framings(self) -> list[str]:
        cuts = ["ok; split=1"] if self.byte_by_byte else []
        return [f.replace("ok", self.scenario, 1) for f in [*FRAMINGS, *cuts]]


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GEMINI_OUT = (
    payloads.GEMINI_USAGE["candidatesTokenCount"] + payloads.GEMINI_USAGE["thoughtsTokenCount"]
)
FORMATS = [
    Format(
        "chat-injected-usage",
        "openai",
        "/chat/completions",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        without_usage_chunk,
        byte_by_byte=True,
    ),
    Format(  # an upstream that compresses although the gateway asked for identity
        "chat-injected-usage-gzip",
        "openai",
        "/chat/completions",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        lambda sent: without_usage_chunk(gzip.decompress(sent)),
        scenario="gzip; force=1",
    ),
    Format(
        "chat-asked-usage",
        "openai",
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    Format(
        "legacy-completions",
        "openai",
        "/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream": True},
        without_usage_chunk,
        (payloads.OPENAI_COMPLETIONS_USAGE["prompt_tokens"], 16),
    ),
    Format(
        "responses",
        "openai",
        "/responses",
        {"model": "gpt-4.1", "input": "hi", "stream": True},
        usage=(RESPONSES["input_tokens"], RESPONSES["output_tokens"]),
    ),
    Format(
        "anthropic-messages",
        "anthropic",
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MESSAGES, "stream": True},
        usage=(ANTHROPIC_INPUT, 15),
    ),
    Format(
        "gemini-sse",
        "gemini",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        GEMINI_BODY,
        usage=(payloads.GEMINI_USAGE["promptTokenCount"], GEMINI_OUT),
    ),
    Format(
        "gemini-json-array",
        "gemini",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        GEMINI_BODY,
        usage=(payloads.GEMINI_USAGE["promptTokenCount"], GEMINI_OUT),
        byte_by_byte=True,
    ),
]
FRAMINGS = ["ok", "ok; split=7", "ok; framing=close", "ok; framing=close; split=5"]


def auth_headers(provider: str, key: str) -> dict[str, str]:
    if provider == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if provider == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_every_stream_format_reaches_the_client_byte_for_byte(
    gemini: Stack, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    wire = Wire(gemini, transport)
    project = f"wire-bytes-{transport.name}"
    key = gemini.cli.new_key(project)["key"]
    cases = [
        (fmt, framing)
        for fmt in FORMATS
        if transport.forward or fmt.provider != "gemini"  # no Gemini reverse listener here
        for framing in fmt.framings
    ]
    for fmt, framing in cases:
        headers = {**auth_headers(fmt.provider, key), "x-fake-scenario": framing}
        url = wire.base(fmt.provider) + fmt.path
        with wire.client.stream("POST", url, json=fmt.body, headers=headers) as response:
            assert response.status_code == 200, (fmt.name, framing, response.read())
            received = b"".join(response.iter_raw())
        sent = gemini.upstream.sent_bodies[-1]
        assert received == fmt.expected(sent), (fmt.name, framing)
        assert received, (fmt.name, framing)

    assert len(gemini.upstream.requests) == len(cases)  # one upstream request per call
    # Every body was read to its end, so one connection served every call, except that a
    # close-delimited answer to an HTTP/1.1 client can only end by closing the connection.
    closing = [not transport.http2 and "framing=close" in framing for _, framing in cases]
    wire.assert_reused(closing, [fmt.provider for fmt, _ in cases])
    rows = records(gemini, project, len(cases))
    for (fmt, framing), row in zip(cases, rows, strict=True):
        assert row["streamed"], (fmt.name, framing, row)
        assert_exact(row, *fmt.usage)
