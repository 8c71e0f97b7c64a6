"""Annotate alone: the mitmweb comment of an answered, a failed and a rejected flow."""

from __future__ import annotations

from hookchain import CHAT, answer, chat_flow
from mitmproxy.test import tflow

from addon.hooks.admit import Admit
from addon.hooks.annotate import Annotate, comment
from addon.hooks.meter import Meter
from addon.metering.usage import Usage


async def _admitted(env) -> tflow.HTTPFlow:
    f = chat_flow(env.key)
    await env.part(Admit).requestheaders(f)
    await env.part(Admit).request(f)
    return f


async def test_an_answered_flow_shows_project_model_tokens_and_its_records_cost(env):
    f = await _admitted(env)
    answer(f, CHAT)
    env.part(Meter).response(f)
    env.part(Annotate).response(f)
    assert f.comment.startswith("unit · gpt-4o-mini · 11 in / 7 out · $")
    assert f.marked == ":moneybag:"


async def test_a_flow_that_failed_upstream_is_marked_with_why(env):
    f = await _admitted(env)
    f.error = tflow.terr("Server disconnected.")
    env.part(Meter).error(f)
    env.part(Annotate).error(f)
    assert (
        f.comment
        == "tollkeeper: upstream_disconnected · unit · gpt-4o-mini · usage: estimated later"
    )
    assert f.marked == ":warning:"


async def test_a_rejected_flow_keeps_the_comment_of_its_rejection(env):
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    await env.part(Admit).requestheaders(f)
    before = f.comment
    env.part(Meter).response(f)
    env.part(Annotate).response(f)
    assert f.comment == before and "rejected (invalid_key)" in before


async def test_flows_it_does_not_annotate(env):
    annotate = env.part(Annotate)
    stranger = chat_flow(env.key)
    answer(stranger, CHAT)
    annotate.response(stranger)
    stranger.error = tflow.terr()
    annotate.error(stranger)
    f = await _admitted(env)  # not yet ended: nothing to say
    annotate.error(f)
    assert stranger.comment == "" and f.comment == ""


async def test_without_a_record_the_comment_says_estimated_later(env):
    f = await _admitted(env)
    state = env.gw.gateway.flows.get(f)
    state.ended_as = "answered"
    env.part(Annotate).response(f)
    assert f.comment == "unit · gpt-4o-mini · usage: estimated later"


def test_comment_names_cached_tokens_and_an_unpriced_model():
    from addon.flowstate import FlowState
    from addon.providers.registry import BUILTIN

    state = FlowState(provider=BUILTIN.by_host("api.openai.com"), api="openai.chat", endpoint="/v1")
    usage = Usage(input_tokens=10, output_tokens=2, cached_input_tokens=4)
    assert comment(state, "m", usage, None) == "? · m · 10 in / 2 out · 4 cached · unpriced"
    assert comment(state, None, None, 1_500_000) == "? · ? · $0.0000015"
