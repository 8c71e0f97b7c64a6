"""Admit alone: which flows it takes, the key swap and reroute, the policy, fail-closed."""

from __future__ import annotations

import json

import pytest
from hookchain import REAL, chat_flow
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import tflow

from addon.errors import NotAllowed
from addon.hooks.admit import Admit, reject


def _wire(f: tflow.HTTPFlow) -> bytes:
    return _http1.http1.assemble_request_head(f.request)


async def test_a_valid_key_is_swapped_for_a_placeholder_and_the_flow_rerouted(env):
    f = chat_flow(env.key)
    await env.part(Admit).requestheaders(f)
    state = env.gw.gateway.flows.get(f)
    assert f.response is None and state is not None and state.key is not None
    assert state.key.project == "unit" and state.api == "openai.chat"
    assert f.request.headers["authorization"].startswith("Bearer [tollkeeper:redacted]")
    assert (f.request.scheme, f.request.host, f.request.port) == ("http", "127.0.0.1", 9)
    assert f"authorization: Bearer {REAL}\r\n".encode() in _wire(f)
    assert REAL.encode() not in http1.assemble_request_head(f.request)
    assert f.metadata["tollkeeper"]["project"] == "unit"


@pytest.mark.parametrize("why", ["answered", "errored", "not live"])
async def test_a_flow_that_is_over_or_not_live_is_left_alone(env, why):
    f = chat_flow(env.key)
    if why == "answered":
        f.response = tflow.tresp()
    elif why == "errored":
        f.error = tflow.terr()
    else:
        f.live = False
    await env.part(Admit).requestheaders(f)
    assert env.gw.gateway.flows.get(f) is None
    assert "tollkeeper" not in f.metadata


async def test_a_host_that_is_no_provider_passes_untouched(env):
    f = chat_flow(env.key)
    f.request.host = f.request.host_header = "example.org"
    f.client_conn.sni = "example.org"
    before = f.request.copy()
    await env.part(Admit).requestheaders(f)
    assert env.gw.gateway.flows.get(f) is None and f.response is None
    assert f.request.headers == before.headers and f.request.host == "example.org"


async def test_a_request_that_names_a_provider_but_goes_elsewhere_is_refused(env):
    f = chat_flow(env.key)
    f.request.host = "203.0.113.9"
    f.client_conn.sni = "api.openai.com"
    await env.part(Admit).requestheaders(f)
    assert f.response is not None and f.response.status_code == 403
    assert "connect to the provider by its host name" in f.response.text
    assert env.gw.gateway.flows.get(f).rejected is not None


async def test_without_a_runtime_nothing_is_admitted(env):
    admit = env.part(Admit)
    runtime, admit.shared.runtime = admit.shared.runtime, None
    try:
        f = chat_flow(env.key)
        await admit.requestheaders(f)
        assert env.gw.gateway.flows.get(f) is None and f.response is None
    finally:
        admit.shared.runtime = runtime


async def test_an_unknown_key_gets_a_provider_shaped_401(env):
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    await env.part(Admit).requestheaders(f)
    assert f.response.status_code == 401
    assert json.loads(f.response.content)["error"]["code"] == "invalid_api_key"
    assert f.marked == ":no_entry:" and "invalid_key" in f.comment


async def test_a_fault_while_admitting_answers_500_and_never_forwards(env, monkeypatch):
    monkeypatch.setattr(env.gw.runtime.vault, "resolve", lambda **_: 1 / 0)
    f = chat_flow(env.key)
    await env.part(Admit).requestheaders(f)
    assert f.response.status_code == 500
    assert f.response.headers["x-tollkeeper-error"] == "gateway_error"
    assert REAL.encode() not in _wire(f)


async def test_request_reads_the_model_and_injects_include_usage_into_a_stream(env):
    f = chat_flow(env.key, {"model": "gpt-4o", "messages": [], "stream": True, "user": "u-9"})
    admit = env.part(Admit)
    await admit.requestheaders(f)
    await admit.request(f)
    state = env.gw.gateway.flows.get(f)
    assert (state.model, state.end_user, state.injected_usage) == ("gpt-4o", "u-9", True)
    assert json.loads(f.request.content)["stream_options"] == {"include_usage": True}
    assert state.forwarded and state.forwarded_at is not None


async def test_request_leaves_a_stream_that_asked_for_usage_as_it_is(env):
    body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    f = chat_flow(env.key, body)
    admit = env.part(Admit)
    await admit.requestheaders(f)
    raw = f.request.content
    await admit.request(f)
    assert f.request.content == raw and not env.gw.gateway.flows.get(f).injected_usage


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"[" * 100_000])
async def test_request_with_a_body_that_is_no_object_still_goes(env, content):
    f = chat_flow(env.key)
    admit = env.part(Admit)
    await admit.requestheaders(f)
    f.request.content = content
    await admit.request(f)
    assert f.response is None and env.gw.gateway.flows.get(f).forwarded


async def test_request_skips_a_rejected_flow_and_one_without_state(env):
    admit = env.part(Admit)
    stranger = chat_flow(env.key)
    await admit.request(stranger)  # never admitted: no state, nothing to do
    assert stranger.response is None
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    await admit.requestheaders(f)
    await admit.request(f)
    assert f.response.status_code == 401 and not env.gw.gateway.flows.get(f).forwarded


async def test_a_fault_while_inspecting_the_body_answers_500(env, monkeypatch):
    admit = env.part(Admit)
    f = chat_flow(env.key)
    await admit.requestheaders(f)
    monkeypatch.setattr("addon.hooks.admit.auth.check_model", lambda *a: 1 / 0)
    await admit.request(f)
    assert f.response.status_code == 500 and REAL.encode() not in _wire(f)


async def test_the_upstream_timeout_cuts_a_flow_still_waiting(env):
    admit = env.part(Admit)
    f = chat_flow(env.key)
    await admit.requestheaders(f)
    f.live = True
    admit._timeout(f)
    assert env.gw.gateway.flows.get(f).timed_out
    answered = chat_flow(env.key)
    await admit.requestheaders(answered)
    answered.response = tflow.tresp()
    admit._timeout(answered)  # answered in time: left alone
    assert not env.gw.gateway.flows.get(answered).timed_out


async def test_reject_answers_in_the_providers_shape(env):
    f = chat_flow(env.key)
    await env.part(Admit).requestheaders(f)
    state = env.gw.gateway.flows.get(f)
    reject(f, state, NotAllowed("no"))
    assert f.response.status_code == 403 and state.rejected is not None
    assert json.loads(f.response.content)["error"]["message"] == "no"


async def test_a_request_target_with_a_fragment_is_refused_and_its_key_never_goes_on(env):
    """``?key=#&key=<virtual key>``: mitmproxy's query stops at the ``#``, so the key
    behind it would be neither seen nor removed, and would reach the provider."""
    f = chat_flow(env.key)
    f.request.path = f"/v1/chat/completions?key=#&key={env.key}"
    await env.part(Admit).requestheaders(f)
    assert f.response is not None and f.response.status_code == 400
    assert f.response.headers["x-tollkeeper-error"] == "invalid_request"
    assert "fragment" in f.response.text
    state = env.gw.gateway.flows.get(f)
    assert state is not None and state.rejected is not None
    assert state.endpoint == "/v1/chat/completions"
    assert state.secret is None  # refused before a real key was picked


async def test_a_fragment_is_refused_whatever_it_hides(env):
    """Not only a virtual key: a provider key or any parameter behind the ``#`` would go
    on unseen too."""
    f = chat_flow(env.key)
    f.request.path = "/v1/chat/completions?alt=sse#&key=AIzaSyFake0000000000000000000000000000"
    await env.part(Admit).requestheaders(f)
    assert f.response is not None and f.response.status_code == 400
    assert "fragment" in f.response.text


async def test_a_fragment_behind_no_valid_key_still_gets_the_401(env):
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    f.request.path = "/v1/chat/completions#key=whatever"
    await env.part(Admit).requestheaders(f)
    assert f.response is not None and f.response.status_code == 401
    assert env.gw.gateway.flows.get(f).endpoint == "/v1/chat/completions"


async def test_a_virtual_key_in_a_path_segment_is_refused(env):
    f = chat_flow(env.key)
    f.request.path = f"/v1/{env.key}/chat/completions"
    await env.part(Admit).requestheaders(f)
    assert f.response is not None and f.response.status_code == 400
    assert "path holds a virtual key" in f.response.text
