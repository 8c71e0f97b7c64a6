"""Hostile clients and upstreams, fuzzed through a real mitmdump (bounded hypothesis).

Clients send raw HTTP/1.1: bad, doubled or misplaced credentials (header and query at
once), huge headers and bodies, invalid JSON, odd paths. The OpenAI real key points at a
hostile upstream answering invalid UTF-8, truncated, endless or gigantic streams,
compression bombs, and negative, huge or non-numeric usage. After every example: a
control request (Anthropic, served by the fake provider) still succeeds, nothing reached
the upstream without a valid virtual key, every request is exactly one usage record, no
cost is negative or absurd. The gateway's RSS is sampled and printed (``-s``)."""

from __future__ import annotations

import functools
import gzip
import json
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from integration.conftest import OPENAI_REAL, Stack
from integration.harness import wait_for
from integration.hostile_upstream import (
    HostileUpstream,
    chunk,
    chunked_head,
    hostile_stack,
    http_response,
    rss_kib,
)

EXAMPLES = 40
VALID = "VALID"
# A cost above $100 for one request is absurd (the cap: 10 M tokens a field, gpt-4o-mini)
ABSURD_PICOUSD = 100 * 10**12
STATS: Counter[str] = Counter()
World = tuple[Stack, HostileUpstream, dict[str, str]]
RSS_KIB: list[int] = []


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    caps = ("--set", "tollkeeper_max_decoded_mb=1", "--set", "tollkeeper_stream_max_s=2")
    first = [_json_answer({"prompt_tokens": 1})]
    with (
        HostileUpstream(lambda seen: first, close_after_answer=True) as up,
        hostile_stack(tmp_path_factory.mktemp("fuzz-e2e"), up, *caps) as stack,
    ):
        keys = {name: stack.cli.new_key(name)["key"] for name in ("fuzz", "control")}
        ok = [("bearer", keys["fuzz"])]
        wait_for(lambda: _send(stack, _raw("/v1/chat/completions", ok)) == 200, 10)
        # the warm-up's record is stored before the first example counts the records
        assert wait_for(lambda: _records_past(stack, 1), 15), "the warm-up was not recorded"
        yield stack, up, keys
    low, high = min(RSS_KIB, default=0), max(RSS_KIB, default=0)
    print(f"\nfuzz e2e: {dict(STATS)}; gateway RSS KiB min {low} max {high}")


# --- clients ---------------------------------------------------------------------------

PRINTABLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
KEYISH = st.sampled_from(["", "tk-", "tk-abcdefghij-" + "0" * 40, "sk-proj-x", "Bearer"])
CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
PATHS = ["/v1/chat/completions", "/v1/../../x", "//", "/v1/x?%zz", "/v1/chat/completions?a=1"]


# where else a client may put a key: a path segment, a ";"-joined or percent-encoded query
# parameter, a fragment, a cookie; only keys and plain words go there (a bare "tk-" in a
# path is no key, and would be forwarded)
SMUGGLED = ["path", "semicolon", "encoded", "fragment", "cookie"]
SMUGGLED_VALUE = st.one_of(
    st.just(VALID),
    st.sampled_from(["tk-abcdefghij-" + "0" * 40, "sk-proj-x"]),
    st.text("abcxyz019", min_size=1, max_size=8),
)


@st.composite
def client_requests(draw: st.DrawFn) -> dict:
    kinds = st.sampled_from(["bearer", "x-api-key", "query", "goog", *SMUGGLED])
    places = draw(st.lists(kinds, max_size=3))
    creds = [
        draw(SMUGGLED_VALUE if p in SMUGGLED else st.one_of(st.just(VALID), KEYISH, PRINTABLE))
        for p in places
    ]
    if draw(st.booleans()):
        places, creds = ["bearer", *places], [VALID, *creds]
    body = draw(
        st.one_of(
            st.just(CHAT),
            st.binary(max_size=300),
            st.just(b"[" * 50_000 + b"]" * 50_000),
            st.just(b'{"model": 5, "stream": "yes", "max_tokens": 1e999}'),
            st.just(b'{"model": "gpt-4o-mini", "x": "' + b"a" * (3 << 20) + b'"}'),
        )
    )
    return {
        "path": draw(st.sampled_from(PATHS)),
        "creds": list(zip(places, creds, strict=True)),
        "huge": draw(st.sampled_from([0, 0, 30_000])),
        "body": body,
    }


def _raw(path: str, creds: list[tuple[str, str]], body: bytes = CHAT, huge: int = 0) -> bytes:
    headers = ["Host: api.openai.com", "Content-Type: application/json", "Connection: close"]
    query, fragment = [], ""
    for place, value in creds:
        if place == "bearer":
            headers.append(f"Authorization: Bearer {value}")
        elif place == "query":
            query.append(f"key={value}")
        elif place == "semicolon":
            query.append(f"alt=sse;key={value}")
        elif place == "encoded":
            query.append(f"%6Bey={value}")
        elif place == "path":
            path = f"/{value}{path}"
        elif place == "fragment":
            fragment += f"#key={value}"
        elif place == "cookie":
            headers.append(f"Cookie: session={value}")
        else:
            headers.append(f"{'x-api-key' if place == 'x-api-key' else 'x-goog-api-key'}: {value}")
    if huge:
        headers.append("X-Huge: " + "a" * huge)
    if query:
        path += ("&" if "?" in path else "?") + "&".join(query)
    path += fragment
    headers.append(f"Content-Length: {len(body)}")
    head = f"POST {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode() + body


def _send(stack: Stack, raw: bytes) -> int:
    """Send one raw request to the OpenAI reverse listener; the status (0: no answer)."""
    url = stack.gateway.reverse_url("openai")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(raw)
        try:
            while piece := s.recv(1 << 16):
                got += piece
        except OSError:
            pass
    assert OPENAI_REAL.encode() not in got
    return int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0


# --- upstreams -------------------------------------------------------------------------

USAGE_VALUE = st.one_of(
    st.integers(-(10**15), 10**15),
    st.sampled_from(["1e999999999", "-1e30", "NaN", "Infinity", '"12"', "true", "[]", "1.5"]),
    st.none(),
)


def _json_answer(usage: dict, extra: bytes = b"") -> bytes:
    body = b'{"model": "gpt-4o-mini", "usage": ' + _usage_json(usage) + extra + b"}"
    return http_response(body, headers=(("content-type", "application/json"),))


def _usage_json(usage: dict) -> bytes:
    fields = [f'"{k}": {"null" if v is None else v}' for k, v in usage.items()]
    return ("{" + ", ".join(fields) + "}").encode()


def upstream_answer(kind: str, usage: dict) -> list[bytes]:
    sse = (("content-type", "text/event-stream"),)
    event = b'data: {"choices": [], "usage": ' + _usage_json(usage) + b"}\n\n"
    if kind == "json":
        return [_json_answer(usage)]
    if kind == "utf8":
        return [_json_answer(usage, b', "x": "\xff\xfe\xc3"')]
    if kind == "truncated":
        return [_json_answer(usage)[:-20]]  # content-length says more: then the close
    if kind == "bomb":
        return [http_response(_bomb(), headers=(("content-encoding", "gzip"),))]
    if kind == "giant_event":
        return [chunked_head(headers=sse), chunk(b"data: " + b"x" * (4 << 20)), b"0\r\n\r\n"]
    if kind == "cut_stream":
        return [chunked_head(headers=sse), chunk(event[:-5])]  # then the close
    if kind == "endless":
        return [chunked_head(headers=sse), *[p for _ in range(60) for p in (chunk(event), b"")]]
    return [chunked_head(headers=sse), chunk(event), chunk(b"data: [DONE]\n\n"), b"0\r\n\r\n"]


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b"\0" * (64 << 20))  # 64 MiB, 64 times the gateway's cap here


KINDS = ["json", "utf8", "truncated", "bomb", "giant_event", "cut_stream", "endless", "stream"]


# --- checks ----------------------------------------------------------------------------


def _records(stack: Stack) -> list[tuple]:
    db = sqlite3.connect(stack.gateway.home / "tollkeeper.db")
    try:
        return list(db.execute("select request_id, cost_picousd, input_tokens from usage_records"))
    finally:
        db.close()


def _records_past(stack: Stack, n: int) -> list[tuple] | None:
    rows = _records(stack)
    return rows if len(rows) >= n else None


CLAUDE = b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}'


def _control(stack: Stack, key: str) -> None:
    """A plain request of another client, to a provider the fake serves: answered 200."""
    url = stack.gateway.reverse_url("anthropic")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    raw = (
        "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nConnection: close\r\n"
        f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
        f"content-type: application/json\r\nContent-Length: {len(CLAUDE)}\r\n\r\n"
    ).encode() + CLAUDE
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(raw)
        head = s.recv(64)
    assert head.startswith(b"HTTP/1.1 200"), head


def _check_round(world: World, before: tuple[int, int], valid: bool) -> None:
    stack, up, keys = world
    seen_before, records_before = before
    reached = up.seen[seen_before:]
    assert all(b"tk-" not in s.head for s in reached)  # no virtual key goes upstream
    assert valid or not reached, "forwarded without a valid virtual key"
    assert len(reached) <= 1
    _control(stack, keys["control"])
    # the fuzzed request and the control: exactly two new records
    rows = wait_for(lambda: _records_past(stack, records_before + 2), 15)
    assert rows is not None and len(rows) == records_before + 2, (len(rows or []), records_before)
    assert len({r[0] for r in rows}) == len(rows)
    for _, cost, tokens in rows:
        assert cost is None or 0 <= cost < ABSURD_PICOUSD, cost
        assert tokens >= 0
    RSS_KIB.append(rss_kib(stack.gateway.proc.pid))


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(req=client_requests())
@example(  # found by this test: the query stops at the "#", the key behind it went upstream
    req={
        "path": "/v1/chat/completions",
        "creds": [("bearer", VALID), ("query", "#"), ("x-api-key", VALID), ("query", VALID)],
        "huge": 0,
        "body": CHAT,
    }
)
@example(
    req={
        "path": "/v1/chat/completions",
        "creds": [("bearer", VALID), ("path", VALID)],
        "huge": 0,
        "body": CHAT,
    }
)
def test_hostile_clients_never_reach_the_upstream_without_a_valid_key(world, req):
    stack, up, keys = world
    key = keys["fuzz"]
    up.answer = lambda seen: [_json_answer({"prompt_tokens": 3, "completion_tokens": 2})]
    before = (len(up.seen), len(_records(stack)))
    creds = [(place, key if value == VALID else value) for place, value in req["creds"]]
    status = _send(stack, _raw(req["path"], creds, req["body"], req["huge"]))
    STATS[f"client:{status}"] += 1
    _check_round(world, before, valid=any(v == VALID for _, v in req["creds"]))


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    usage=st.fixed_dictionaries(
        {
            "prompt_tokens": USAGE_VALUE,
            "completion_tokens": USAGE_VALUE,
            "total_tokens": USAGE_VALUE,
        }
    ),
    stream=st.booleans(),
)
def test_hostile_upstreams_are_metered_sanely_and_the_gateway_keeps_serving(
    world, kind, usage, stream
):
    stack, up, keys = world
    key = keys["fuzz"]
    up.answer = lambda seen: upstream_answer(kind, usage)
    before = (len(up.seen), len(_records(stack)))
    body = json.dumps({**json.loads(CHAT), "stream": stream}).encode()
    status = _send(stack, _raw("/v1/chat/completions", [("bearer", key)], body))
    STATS[f"upstream:{kind}:{status}"] += 1
    _check_round(world, before, valid=True)


def test_the_fuzz_ran(world):
    """Keeps the reported figures honest: both fuzzers ran their examples."""
    clients = sum(v for k, v in STATS.items() if k.startswith("client:"))
    upstreams = sum(v for k, v in STATS.items() if k.startswith("upstream:"))
    assert clients >= EXAMPLES and upstreams >= EXAMPLES, STATS
