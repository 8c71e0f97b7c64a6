"""KeepSecrets and ScrubAnswers alone: the placeholder disarmed, echoed keys scrubbed from
headers, buffered bodies and streams, and faults that withhold instead of leaking."""

from __future__ import annotations

import gzip

import pytest
from hookchain import CHAT, REAL, answer, chat_flow
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import tflow

from addon.hooks.admit import Admit
from addon.hooks.meter import Meter
from addon.hooks.secrets import KeepSecrets, ScrubAnswers, scrub_headers
from addon.scrubbing import MARK, PLAIN_INLINE_MAX

SSE = ((b"content-type", b"text/event-stream"),)


async def _admitted(env, body=None) -> tflow.HTTPFlow:
    f = chat_flow(env.key, body)
    await env.part(Admit).requestheaders(f)
    await env.part(Admit).request(f)
    return f


def _wire(f: tflow.HTTPFlow) -> bytes:
    return _http1.http1.assemble_request_head(f.request)


async def test_the_answers_headers_disarm_the_placeholder(env):
    f = await _admitted(env)
    assert REAL.encode() in _wire(f)  # armed while the request may still be sent
    answer(f, CHAT)
    env.part(KeepSecrets).responseheaders(f)
    assert REAL.encode() not in _wire(f)
    assert env.gw.gateway.flows.get(f).placeholder is None


async def test_a_key_echoed_in_the_answers_headers_is_replaced(env):
    f = await _admitted(env)
    answer(f, CHAT, headers=((b"x-echo", REAL.encode()), (b"location", f"/k/{REAL}".encode())))
    env.part(KeepSecrets).responseheaders(f)
    assert REAL not in str(f.response.headers)
    assert f.response.headers["x-echo"] == MARK.decode()


def test_scrub_headers_leaves_headers_alone_for_a_short_secret():
    resp = tflow.tresp(headers=((b"x-a", b"short"),))
    scrub_headers(resp, "short")
    assert resp.headers["x-a"] == "short"


async def test_a_metered_stream_is_wrapped_so_no_chunk_carries_the_key(env):
    f = await _admitted(env, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    answer(f, b"", headers=SSE)
    env.part(Meter).responseheaders(f)
    env.part(KeepSecrets).responseheaders(f)
    half = len(REAL) // 2
    out = [
        f.response.stream(f"data: {REAL[:half]}".encode()),
        f.response.stream(REAL[half:].encode()),
    ]
    out.append(f.response.stream(b""))
    sent = b"".join(o if isinstance(o, bytes) else b"".join(o) for o in out)
    assert REAL.encode() not in sent and MARK in sent


async def test_a_large_buffered_answer_is_inspected_as_it_arrives(env):
    f = await _admitted(env)
    answer(f, b"", headers=((b"content-length", str(PLAIN_INLINE_MAX + 1).encode()),))
    env.part(KeepSecrets).responseheaders(f)
    state = env.gw.gateway.flows.get(f)
    assert state.inspector is not None and callable(f.response.stream)
    assert "content-length" not in f.response.headers


async def test_a_small_buffered_answer_is_left_for_the_response_hook(env):
    f = await _admitted(env)
    answer(f, CHAT)
    env.part(KeepSecrets).responseheaders(f)
    assert env.gw.gateway.flows.get(f).inspector is None and not f.response.stream


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_a_buffered_answer_echoing_the_key_is_scrubbed_before_it_is_metered(env, encoding):
    f = await _admitted(env)
    body = b'{"echo": "%s"}' % REAL.encode()
    headers = ((b"content-type", b"application/json"),)
    if encoding:
        body, headers = gzip.compress(body), (*headers, (b"content-encoding", b"gzip"))
    answer(f, body, headers=headers)
    env.part(ScrubAnswers).response(f)
    assert REAL.encode() not in f.response.content and MARK in f.response.content


async def test_an_answer_that_cannot_be_rewritten_is_withheld(env, monkeypatch):
    from addon import scrubbing

    f = await _admitted(env)
    answer(f, b"x" * 10)
    refuse = scrubbing.BodyVerdict(refuse=True)
    monkeypatch.setattr(scrubbing, "scrub_body", lambda *a: refuse)
    env.part(ScrubAnswers).response(f)
    assert f.response.headers["x-tollkeeper-error"] == "answer_withheld"


async def test_a_fault_while_scrubbing_withholds_the_answer(env, monkeypatch):
    f = await _admitted(env)
    answer(f, b'{"echo": "%s"}' % REAL.encode())
    monkeypatch.setattr("addon.hooks.secrets.scrubbing.scrub_body", lambda *a: 1 / 0)
    env.part(ScrubAnswers).response(f)
    assert f.response.headers["x-tollkeeper-error"] == "answer_withheld"
    assert REAL.encode() not in f.response.content


async def test_a_fault_while_guarding_a_stream_kills_the_flow(env, monkeypatch):
    f = await _admitted(env, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    answer(f, b"", headers=SSE)
    env.part(Meter).responseheaders(f)
    monkeypatch.setattr("addon.hooks.secrets.scrubbed_stream", lambda *a: 1 / 0)
    env.part(KeepSecrets).responseheaders(f)
    assert f.error is not None and "killed" in f.error.msg.lower()


async def test_flows_it_does_not_guard(env):
    keep, scrub = env.part(KeepSecrets), env.part(ScrubAnswers)
    stranger = chat_flow(env.key)
    answer(stranger, CHAT)
    keep.responseheaders(stranger)  # not a provider flow: no state
    scrub.response(stranger)
    keep.response(stranger)
    keep.error(stranger)
    assert stranger.response.content == answer(chat_flow(env.key), CHAT).content
    rejected = chat_flow("tk-abcdefghij-" + "1" * 40)
    await env.part(Admit).requestheaders(rejected)
    keep.responseheaders(rejected)
    scrub.response(rejected)
    assert rejected.response.status_code == 401


async def test_done_disarms_flows_still_open_and_uninstalls_the_wire_patch(env):
    f = await _admitted(env)
    keep = env.part(KeepSecrets)
    keep.done()
    assert REAL.encode() not in _wire(f)
    keep.load(None)  # installed again for the fixture's own done
