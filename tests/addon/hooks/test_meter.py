"""Meter alone and in the chain: one record per admitted request, whichever way it ends."""

from __future__ import annotations

import email.utils
import time

import pytest
from fakes import payloads
from hookchain import CHAT, answer, chat_flow
from mitmproxy.test import tflow

from addon.hooks.admit import Admit
from addon.hooks.meter import ANSWERED, Meter, error_kind, retry_after_seconds

SSE = ((b"content-type", b"text/event-stream"),)
USAGE = {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290}


async def _admitted(env, body=None) -> tflow.HTTPFlow:
    f = chat_flow(env.key, body)
    await env.part(Admit).requestheaders(f)
    await env.part(Admit).request(f)
    return f


async def test_a_buffered_answer_gets_one_record_with_its_usage(env):
    f = await _admitted(env)
    answer(f, CHAT, headers=((b"content-type", b"application/json"), (b"x-request-id", b"r-1")))
    meter = env.part(Meter)
    meter.responseheaders(f)
    meter.response(f)
    [draft] = env.drafts
    assert (draft.result.usage.input_tokens, draft.result.usage.output_tokens) == (11, 7)
    assert (draft.status_code, draft.provider_request_id, draft.error_kind) == (200, "r-1", None)
    state = env.gw.gateway.flows.get(f)
    assert state.ended_as == ANSWERED and state.result is draft and state.ttfb_ms is not None


async def test_a_stream_is_recorded_at_its_end_event_before_the_client_has_it(env):
    f = await _admitted(env, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    answer(f, b"", headers=SSE)
    meter = env.part(Meter)
    meter.responseheaders(f)
    events = payloads.chat_stream("gpt-4o-mini", "Hi", USAGE, True)
    for event in events[:-1]:
        f.response.stream(event.data)
    assert env.drafts == []  # the end event ([DONE]) has not come
    out = f.response.stream(events[-1].data)  # recorded before this returns the chunk
    [draft] = env.drafts
    sent = out if isinstance(out, bytes) else b"".join(out)
    assert draft.result.usage.input_tokens == 1234 and b"[DONE]" in sent
    f.response.stream(b"")
    meter.response(f)
    assert len(env.drafts) == 1 and env.gw.gateway.flows.get(f).result is draft


async def test_an_error_after_the_streams_end_event_adds_no_second_record(env):
    f = await _admitted(env, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    answer(f, b"", headers=SSE)
    meter = env.part(Meter)
    meter.responseheaders(f)
    for event in payloads.chat_stream("gpt-4o-mini", "Hi", USAGE, True):
        f.response.stream(event.data)
    f.error = tflow.terr("Client disconnected.")
    meter.error(f)
    assert len(env.drafts) == 1 and env.gw.gateway.flows.get(f).ended_as == ANSWERED


async def test_an_upstream_error_answer_is_recorded_with_its_status(env):
    f = await _admitted(env)
    answer(f, {"error": {"message": "boom", "type": "server_error"}}, status=500)
    meter = env.part(Meter)
    meter.responseheaders(f)
    meter.response(f)
    [draft] = env.drafts
    assert (draft.status_code, draft.error_kind) == (500, "upstream_500")


async def test_a_rejected_request_is_recorded_with_why(env):
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    await env.part(Admit).requestheaders(f)
    meter = env.part(Meter)
    meter.responseheaders(f)
    meter.response(f)
    [draft] = env.drafts
    assert (draft.status_code, draft.error_kind, draft.forwarded) == (401, "invalid_key", False)


async def test_an_unreachable_upstream_is_a_502_never_forwarded(env):
    f = await _admitted(env)
    f.error = tflow.terr("Server connection to ('127.0.0.1', 9) failed: refused")
    env.part(Meter).error(f)
    [draft] = env.drafts
    assert (draft.status_code, draft.error_kind, draft.forwarded) == (
        502,
        "upstream_unreachable",
        False,
    )
    assert env.gw.gateway.flows.get(f).ended_as == "upstream_unreachable"


async def test_a_fault_while_recording_still_records_the_request(env, monkeypatch):
    f = await _admitted(env)
    answer(f, CHAT)
    monkeypatch.setattr("addon.hooks.meter.parse_response", lambda *a: 1 / 0)
    env.part(Meter).response(f)
    [draft] = env.drafts
    assert (draft.error_kind, draft.status_code) == ("gateway_fault", 200)


async def test_done_records_flows_still_open_as_a_shutdown(env):
    open_flow = await _admitted(env)
    streamed = await _admitted(env, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    answer(streamed, b"", headers=SSE)
    meter = env.part(Meter)
    meter.responseheaders(streamed)
    for event in payloads.chat_stream("gpt-4o-mini", "Hi", USAGE, True):
        streamed.response.stream(event.data)  # recorded at its end event
    meter.done()
    kinds = sorted((d.request_id, d.error_kind) for d in env.drafts)
    ids = env.gw.states
    assert ("gateway_shutdown" in dict(kinds).values()) and len(kinds) == 2
    assert dict(kinds)[ids[open_flow.id].request_id] == "gateway_shutdown"


async def test_flows_it_does_not_meter(env):
    meter = env.part(Meter)
    stranger = chat_flow(env.key)
    answer(stranger, CHAT)
    meter.responseheaders(stranger)
    meter.response(stranger)
    stranger.error = tflow.terr()
    meter.error(stranger)
    assert env.drafts == []
    f = await _admitted(env)
    runtime, meter.shared.runtime = meter.shared.runtime, None
    try:
        answer(f, CHAT)
        meter.responseheaders(f)  # no runtime (between a failed start and a good one)
        meter.response(f)
    finally:
        meter.shared.runtime = runtime
    assert env.drafts == []


@pytest.mark.parametrize(
    ("msg", "responded", "kind"),
    [
        ("Client disconnected.", True, "client_disconnected"),
        ("Connection killed.", False, "killed"),
        ("Server disconnected.", True, "upstream_disconnected"),
        (
            "peer closed connection without sending complete message body",
            True,
            "upstream_disconnected",
        ),
        ("Server connection to ('x', 1) failed: [Errno 111]", False, "upstream_unreachable"),
        ("Server connection to ('x', 1) failed: [Errno 111]", True, "proxy_error"),
        ("something else", False, "proxy_error"),
    ],
)
async def test_error_kind_names_why_a_flow_ended(env, msg, responded, kind):
    f = await _admitted(env)
    assert error_kind(msg, env.gw.gateway.flows.get(f), responded=responded) == kind


async def test_a_timed_out_flow_is_an_upstream_timeout_whatever_the_message(env):
    f = await _admitted(env)
    state = env.gw.gateway.flows.get(f)
    state.timed_out = True
    assert error_kind("Client disconnected.", state, responded=False) == "upstream_timeout"


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < (retry_after_seconds({"retry-after": later}) or 0) <= 60
