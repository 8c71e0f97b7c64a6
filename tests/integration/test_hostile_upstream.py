"""A hostile upstream (a real key's base URL) answers with the key echoed back, bombs and
trailers: the client never sees the key, and every request is answered and recorded."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from integration.conftest import OPENAI_REAL, Stack
from integration.harness import wait_for
from integration.hostile_upstream import (
    Answer,
    HostileUpstream,
    Seen,
    chunk,
    chunked_head,
    gzip_zeros,
    hostile_stack,
    http_response,
    rss_kib,
)

SECRET = OPENAI_REAL.encode()
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, HostileUpstream]]:
    with (
        HostileUpstream(lambda seen: [http_response(b"{}")]) as up,
        hostile_stack(tmp_path_factory.mktemp("hostile"), up) as stack,
    ):
        wait_for(lambda: _answered(stack), timeout=10)
        yield stack, up


def _answered(stack: Stack) -> bool:
    key = stack.cli.new_key("probe")["key"]
    return _post(stack, key).status_code == 200


def _post(stack: Stack, key: str, body: bytes | None = None, **headers: str) -> httpx.Response:
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json", **headers}
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.post(url, content=body or json.dumps(CHAT).encode(), headers=head)


def _echo_key(seen: Seen) -> bytes:
    return (seen.header("authorization") or "").removeprefix("Bearer ").encode()


def test_a_key_echoed_in_headers_location_and_a_gzip_body_is_scrubbed(hostile):
    stack, up = hostile
    key = stack.cli.new_key("echo")["key"]

    def answer(seen: Seen) -> list[bytes]:
        echoed = _echo_key(seen)
        body = gzip.compress(b'{"error": {"message": "bad key ' + echoed + b'"}}')
        hdrs = (
            ("content-encoding", "gzip"),
            ("content-type", "application/json"),
            ("location", "https://evil.example/?k=" + echoed.decode()),
            ("x-echo-" + echoed.decode(), echoed.decode()),
        )
        return [http_response(body, status=400, headers=hdrs)]  # 401 would bench the key

    up.answer = answer
    resp = _post(stack, key)
    raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in resp.headers.multi_items())
    assert resp.status_code == 400
    assert SECRET not in raw and SECRET not in resp.content
    assert b"[tollkeeper:redacted]" in resp.content and "redacted" in resp.headers["location"]
    assert _echo_key(up.seen[-1]) == SECRET  # the upstream did get the real key


@pytest.mark.parametrize(
    ("encoding", "asks_usage"),
    [(None, False), ("gzip", True), ("gzip", False)],
    ids=["plain", "gzip", "gzip-decoded-to-strip-usage"],
)
def test_a_key_echoed_in_a_stream_split_across_chunks_is_scrubbed(hostile, encoding, asks_usage):
    stack, up = hostile
    key = stack.cli.new_key("echo-stream")["key"]

    def answer(seen: Seen) -> list[bytes]:
        data = b'data: {"choices": [{"delta": {"content": "' + _echo_key(seen) + b'"}}]}\n\n'
        data += b"data: [DONE]\n\n"
        hdrs = [("content-type", "text/event-stream")]
        if encoding:
            data = gzip.compress(data)
            hdrs.append(("content-encoding", encoding))
        pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
        body = [p for c in pieces for p in (chunk(c), b"")]  # b"": a pause between chunks
        return [chunked_head(headers=tuple(hdrs)), *body, b"0\r\n\r\n"]

    up.answer = answer
    request = {**CHAT, "stream": True}
    if asks_usage:  # nothing to strip: a compressed stream goes out as it came
        request["stream_options"] = {"include_usage": True}
    body = json.dumps(request).encode()
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with (
        httpx.Client(timeout=30, trust_env=False) as client,
        client.stream("POST", url, content=body, headers=head) as resp,
    ):
        got = b"".join(resp.iter_raw())
        kept = encoding if asks_usage else None  # to strip the usage chunk it is decoded
        assert resp.headers.get("content-encoding") == kept
    if kept is None:  # plain bytes: the key is replaced, the stream goes on
        assert SECRET not in got
        assert b"[tollkeeper:redacted]" in got and got.endswith(b"data: [DONE]\n\n")
    else:  # compressed bytes go out as they came, so the stream is cut before the key
        decoded = zlib.decompressobj(wbits=31).decompress(got)
        assert SECRET not in decoded and not decoded.endswith(b"data: [DONE]\n\n")


def test_a_request_with_trailers_is_answered_and_recorded(hostile):
    stack, up = hostile
    up.answer = lambda seen: [http_response(b"{}", headers=(("content-type", "application/json"),))]
    key = stack.cli.new_key("trailers")["key"]
    body = json.dumps(CHAT).encode()

    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + key.encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: x-t\r\n\r\n" + chunk(body) + b"0\r\nx-t: 1\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    rows = wait_for(
        lambda: [r for r in stack.cli.usage("project") if r["project"] == "trailers"], timeout=5
    )
    assert rows and rows[0]["requests"] == 1


def test_deeply_nested_request_json_is_forwarded_not_a_gateway_fault(hostile):
    stack, up = hostile
    up.answer = lambda seen: [http_response(b'{"error": {"message": "bad json"}}', status=400)]
    key = stack.cli.new_key("deep")["key"]
    resp = _post(
        stack, key, b'{"model": "gpt-4o-mini", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    )
    assert resp.status_code == 400 and "x-tollkeeper-error" not in resp.headers


def _endless(event_gap_pauses: int, events: int | None) -> Answer:
    """An SSE stream that sends ``events`` events (None: forever), pausing between them."""

    def answer(seen: Seen) -> Iterator[bytes]:
        yield chunked_head(headers=(("content-type", "text/event-stream"),))
        n = 0
        while events is None or n < events:
            yield chunk(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
            yield from [b""] * event_gap_pauses
            n += 1
        while True:  # then silence, never the end of the body
            yield b""

    return answer


@pytest.mark.parametrize(("name", "answer"), [("endless", (1, None)), ("quiet", (1, 1))])
def test_an_endless_or_silent_stream_is_cut_off_and_recorded(tmp_path: Path, name, answer):
    caps = ("--set", "tollkeeper_stream_max_s=3", "--set", "tollkeeper_stream_idle_s=1")
    with HostileUpstream(_endless(*answer)) as up, hostile_stack(tmp_path, up, *caps) as stack:
        wait_for(lambda: _answered_at_all(stack), timeout=20)
        key = stack.cli.new_key(name)["key"]
        got = _stream(stack, key)
        assert got.count(b"data: ") >= 1  # what was sent before the cut arrived
        kinds = wait_for(lambda: _error_kinds(stack, name), timeout=10)
        assert kinds == ["upstream_timeout"], kinds  # cut by the gateway, not the client


def _answered_at_all(stack: Stack) -> bool:
    """The new key is loaded: a request reaches the upstream (and is cut off in time)."""
    key = stack.cli.new_key("probe")["key"]
    return _stream(stack, key).count(b"data: ") >= 1


def _stream(stack: Stack, key: str) -> bytes:
    body = json.dumps({**CHAT, "stream": True}).encode()
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    got, give_up = b"", time.monotonic() + 60  # a guard against a stream never cut
    with (
        httpx.Client(timeout=30, trust_env=False) as client,
        client.stream("POST", url, content=body, headers=head) as resp,
        contextlib.suppress(httpx.HTTPError),  # the cut may surface as a protocol error
    ):
        for piece in resp.iter_raw():
            got += piece
            if time.monotonic() > give_up:
                break
    return got


def _error_kinds(stack: Stack, project: str) -> list[str]:
    db = sqlite3.connect(stack.gateway.home / "tollkeeper.db")
    try:
        query = "select error_kind from usage_records where project = ?"
        return [row[0] for row in db.execute(query, (project,))]
    finally:
        db.close()


def test_a_gzip_bomb_reaches_the_client_whole_in_bounded_memory_and_is_estimated(hostile):
    stack, up = hostile
    bomb = gzip_zeros(1024)  # 1 GiB of zeros, about 1 MiB compressed
    hdrs = (("content-encoding", "gzip"), ("content-type", "application/json"))
    up.answer = lambda seen: [http_response(bomb, headers=hdrs)]
    pid = stack.gateway.proc.pid
    before = rss_kib(pid)
    key = stack.cli.new_key("bomb")["key"]
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with (
        httpx.Client(timeout=60, trust_env=False) as client,
        client.stream("POST", url, content=json.dumps(CHAT).encode(), headers=head) as resp,
    ):
        got = b"".join(resp.iter_raw())
    after = rss_kib(pid)
    print(f"gzip bomb: gateway RSS {before // 1024} MiB before, {after // 1024} MiB after")
    assert got == bomb  # every byte, as the upstream sent it
    assert after - before < 256 * 1024, (before, after)  # not the 1 GiB it decodes to
    kinds = wait_for(lambda: _error_kinds(stack, "bomb"), timeout=10)
    assert kinds == ["response_over_cap"]
