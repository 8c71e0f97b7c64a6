"""The replay upstream and the cutting helpers, checked on a raw socket."""

from __future__ import annotations

import gzip
import random
import socket
import zlib
from collections.abc import Iterator

import pytest
from fakes.recorded import Case, event_cuts, expected_client_bytes, pieces, random_cuts
from fakes.replay import ReplayUpstream, reply_for
from fakes.wire import read_response

EVENTS = [
    b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n',
    b'data: {"choices": [{"delta": {"content": "lo"}}], "usage": null}\r\n\r\n',
    b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}\n\n',
    b"data: [DONE]\n\n",
]
SSE = b"".join(EVENTS)


def case(body: bytes, **headers: str) -> Case:
    return Case(
        id="synthetic", provider="openai", host="api.openai.com", api="chat", stream=True,
        method="POST", path="/v1/chat/completions", request_headers={}, request_body=b"{}",
        client_asked_usage=False, status=200,
        response_headers={"content-type": "text/event-stream", **headers},
        response_body=body, expected={"mode": "exact"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayUpstream]:
    with ReplayUpstream() as up:
        yield up


def send(sock: socket.socket, path: str = "/v1/chat/completions", body: bytes = b"{}") -> None:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)


def test_one_event_per_chunk_on_a_kept_alive_connection(upstream: ReplayUpstream) -> None:
    upstream.reset()
    sse = case(SSE)
    upstream.arm(reply_for(sse, event_cuts(sse)), reply_for(sse, None))
    with socket.create_connection(("127.0.0.1", upstream.port)) as sock, sock.makefile("rb") as f:
        send(sock)
        status, headers, chunks, complete = read_response(f)
        assert status == "HTTP/1.1 200 OK" and complete
        assert headers["transfer-encoding"] == "chunked"
        assert [c for _, c in chunks] == EVENTS
        send(sock, "//openai/deployments/x", b'{"a": 1}')  # the same connection
        _, headers, chunks, _ = read_response(f)
        assert headers["content-length"] == str(len(SSE)) and chunks[0][1] == SSE
    seen = upstream.requests
    assert [r.path for r in seen] == ["/v1/chat/completions", "//openai/deployments/x"]
    assert seen[1].json() == {"a": 1}


def test_cut_pieces_are_chunks_and_close_delimited_ends_with_the_connection(
    upstream: ReplayUpstream,
) -> None:
    upstream.reset()
    cuts = [1, 2, 40, 41, len(SSE) - 1]
    upstream.arm(reply_for(case(SSE), cuts), reply_for(case(SSE), cuts, close_delimited=True))
    with socket.create_connection(("127.0.0.1", upstream.port)) as sock, sock.makefile("rb") as f:
        send(sock)
        _, _, chunks, _ = read_response(f)
        assert [c for _, c in chunks] == pieces(SSE, cuts) and len(chunks) == 6
        send(sock)
        assert f.readline().startswith(b"HTTP/1.1 200")
        while f.readline() not in (b"\r\n", b""):
            pass
        assert f.read() == SSE  # read to the close
    assert len(upstream.requests) == 2


def test_an_unarmed_request_is_answered_and_counted(upstream: ReplayUpstream) -> None:
    upstream.reset()
    with socket.create_connection(("127.0.0.1", upstream.port)) as sock, sock.makefile("rb") as f:
        send(sock)
        assert read_response(f)[0].startswith("HTTP/1.1 599")
    assert len(upstream.requests) == 1


def test_event_cuts_of_a_compressed_body_each_complete_one_event() -> None:
    body = gzip.compress(SSE)
    cuts = event_cuts(case(body, **{"content-encoding": "gzip"}))
    decoder = zlib.decompressobj(wbits=47)
    seen = [decoder.decompress(piece) for piece in pieces(body, cuts)]
    ends = [len(b"".join(seen[: i + 1])) for i in range(len(seen))]
    boundaries = [len(b"".join(EVENTS[: i + 1])) for i in range(len(EVENTS))]
    assert all(any(end >= b for end in ends) for b in boundaries)
    assert b"".join(seen) == SSE


def test_event_cuts_of_a_json_array_end_each_element() -> None:
    body = b'[{"a": "}{"},\r\n{"b": [1, {"c": 2}]}\r\n]'
    gemini = case(body, **{"content-type": "application/json"})
    assert event_cuts(gemini) == [12, body.index(b"]}") + 2]  # a "}" in a string is not an end


def test_random_cuts_stay_inside_and_are_reproducible() -> None:
    cuts = random_cuts(100, random.Random("x"))
    assert cuts == random_cuts(100, random.Random("x"))
    assert all(0 < c < 100 for c in cuts) and cuts == sorted(set(cuts))
    assert b"".join(pieces(SSE, cuts)) == SSE


def test_expected_client_bytes_drop_only_the_usage_chunk_when_stripped() -> None:
    assert expected_client_bytes(case(SSE), stripped=False) == SSE
    assert expected_client_bytes(case(SSE), stripped=True) == EVENTS[0] + EVENTS[1] + EVENTS[3]
