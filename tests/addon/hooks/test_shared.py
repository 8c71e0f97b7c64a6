"""The per-flow table and what the gateway's addons share; the order of the addons."""

from __future__ import annotations

import asyncio
import threading

from mitmproxy.test import tflow

from addon.flowstate import FlowState
from addon.hooks import Gateway
from addon.hooks.admit import Admit
from addon.hooks.lifecycle import RuntimeHost, Shutdown
from addon.hooks.meter import Meter
from addon.hooks.secrets import KeepSecrets, ScrubAnswers
from addon.hooks.shared import FlowTable, Shared
from addon.providers.registry import BUILTIN


def _state(f: tflow.HTTPFlow) -> FlowState:
    provider = BUILTIN.by_host("api.openai.com")
    assert provider is not None
    return FlowState(provider=provider, api="openai.chat", endpoint="/v1", flow=f)


def test_an_entry_lives_until_the_flow_ends():
    table = FlowTable()
    answered, failed = tflow.tflow(), tflow.tflow()
    for f in (answered, failed):
        table.add(f, _state(f))
    assert len(table) == 2 and table.get(answered) is not None
    table.response(answered)
    table.error(failed)
    assert len(table) == 0 and table.get(answered) is None
    table.error(answered)  # an error after the response: nothing left, nothing raised


def test_iterating_is_over_a_snapshot_and_done_clears():
    table = FlowTable()
    flows = [tflow.tflow() for _ in range(3)]
    for f in flows:
        table.add(f, _state(f))
    for state in table:
        table.response(state.flow)  # ending flows while walking them
    assert len(table) == 0
    table.add(flows[0], _state(flows[0]))
    table.done()
    assert len(table) == 0


async def test_registry_changes_reach_the_listeners_on_the_event_loop():
    shared, seen = Shared(), []
    shared.registry_listeners.append(lambda: seen.append(threading.current_thread()))
    shared.registry_changed()  # not running yet: nothing to call
    shared.loop = asyncio.get_running_loop()
    thread = threading.Thread(target=shared.registry_changed)
    thread.start()
    thread.join()
    await asyncio.sleep(0.05)
    assert seen == [threading.main_thread()]


def test_the_gateways_addons_run_in_the_order_their_hooks_need():
    gw = Gateway()
    kinds = [type(a) for a in gw.addons]
    assert kinds[1] is RuntimeHost  # declares the options first
    assert kinds.index(Admit) < kinds.index(ScrubAnswers) < kinds.index(Meter)
    assert kinds.index(Meter) < kinds.index(KeepSecrets)  # wraps the meter's stream
    assert gw.addons[-2] is gw.flows and kinds[-1] is Shutdown
    assert len({getattr(a, "name", None) for a in gw.addons}) == len(gw.addons)
