"""Memory and event-loop load from big answers: a large plain answer is scrubbed as it
passes, 256 concurrent streams and a 1 GiB gzip bomb leave the gateway's RSS near where it
started. RSS figures are printed (run with ``-s``); the bounds asserted are generous."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from integration.conftest import OPENAI_REAL, Stack, build_stack
from integration.harness import wait_for
from integration.hostile_upstream import (
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
MIB = 1 << 20


class RssSampler:
    """The highest RSS of a process while the ``with`` block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_kib(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, HostileUpstream]]:
    with (
        HostileUpstream(lambda seen: [http_response(b"{}")]) as up,
        hostile_stack(tmp_path_factory.mktemp("evil"), up) as stack,
    ):
        probe = stack.cli.new_key("probe")["key"]
        wait_for(lambda: _post(stack, probe).status_code == 200, timeout=10)
        yield stack, up


def _post(stack: Stack, key: str) -> httpx.Response:
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with httpx.Client(timeout=60, trust_env=False) as client:
        return client.post(url, content=json.dumps(CHAT).encode(), headers=head)


def _post_raw(stack: Stack, key: str) -> bytes:
    """The answer's bytes as they came (not decoded)."""
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with (
        httpx.Client(timeout=60, trust_env=False) as client,
        client.stream("POST", url, content=json.dumps(CHAT).encode(), headers=head) as resp,
    ):
        return b"".join(resp.iter_raw())


def _big_answer(echoed: bytes, size: int) -> bytes:
    filler = b"lorem ipsum " * (size // 24)
    return (
        b'{"model": "gpt-4o-mini", "echo": "' + echoed + b'", "text": "' + filler + echoed
        + filler + b'", "usage": {"prompt_tokens": 11, "completion_tokens": 7}}'
    )  # fmt: skip


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_large_plain_answer_is_scrubbed_as_it_passes_and_metered(evil, framing):
    stack, up = evil
    project = f"big-{framing}"

    def answer(seen: Seen) -> list[bytes]:
        echoed = (seen.header("authorization") or "").removeprefix("Bearer ").encode()
        body = _big_answer(echoed, 3 * MIB)
        if framing == "content-length":
            return [http_response(body, headers=(("content-type", "application/json"),))]
        pieces = [chunk(body[i : i + 65_521]) for i in range(0, len(body), 65_521)]
        return [
            chunked_head(headers=(("content-type", "application/json"),)),
            *pieces,
            b"0\r\n\r\n",
        ]

    up.answer = answer
    resp = _post(stack, stack.cli.new_key(project)["key"])
    mark = b"[tollkeeper:redacted]"
    assert resp.status_code == 200 and SECRET not in resp.content
    assert resp.content == _big_answer(mark, 3 * MIB)
    row = wait_for(lambda: _row(stack, project), timeout=10)
    assert (row["input_tokens"], row["output_tokens"]) == (11, 7)


def _row(stack: Stack, project: str) -> dict | None:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    return rows[0] if rows and rows[0]["requests"] == 1 else None


def test_rss_during_a_1_gib_gzip_bomb_stays_bounded(evil):
    stack, up = evil
    bomb = gzip_zeros(1024)
    hdrs = (("content-encoding", "gzip"), ("content-type", "application/json"))
    up.answer = lambda seen: [http_response(bomb, headers=hdrs)]
    pid = stack.gateway.proc.pid
    before = rss_kib(pid)
    with RssSampler(pid) as sampler:
        got = _post_raw(stack, stack.cli.new_key("bomb-rss")["key"])
    after = rss_kib(pid)
    print(
        f"\n1 GiB gzip bomb: RSS before {before // 1024} MiB, peak {sampler.peak // 1024} MiB,"
        f" after {after // 1024} MiB"
    )
    assert got == bomb
    assert sampler.peak - before < 256 * 1024  # not the 1 GiB it decodes to


def test_rss_during_and_after_256_concurrent_streams(tmp_path: Path):
    gen = build_stack(tmp_path)
    stack = next(gen)
    try:
        key = stack.cli.new_key("many-streams")["key"]
        stack.upstream.set_scenario("ok", delay=0.05)  # every stream lasts a while
        pid = stack.gateway.proc.pid
        asyncio.run(_streams(stack, key, 4))  # warm: TLS contexts, tiktoken, pools
        baseline = rss_kib(pid)
        with RssSampler(pid) as sampler:
            got = asyncio.run(_streams(stack, key, 256))
        wait_for(lambda: _row_count(stack, "many-streams") == 260, timeout=30)
        after = rss_kib(pid)
        print(
            f"\n256 streams: RSS baseline {baseline // 1024} MiB, peak {sampler.peak // 1024}"
            f" MiB, after {after // 1024} MiB"
        )
        assert all(g.endswith(b"data: [DONE]\n\n") for g in got)
        assert after - baseline < 100 * 1024  # returns near its baseline
    finally:
        next(gen, None)


async def _streams(stack: Stack, key: str, n: int) -> list[bytes]:
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    head = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    body = json.dumps({**CHAT, "stream": True}).encode()
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, trust_env=False, limits=limits) as client:

        async def one() -> bytes:
            async with client.stream("POST", url, content=body, headers=head) as resp:
                return b"".join([piece async for piece in resp.aiter_raw()])

        return list(await asyncio.gather(*(one() for _ in range(n))))


def _row_count(stack: Stack, project: str) -> int:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    return int(rows[0]["requests"]) if rows else 0
