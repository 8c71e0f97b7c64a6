"""Cutting flows off. ``close_upstream`` reaches into mitmproxy's proxyserver (its
``connections``, a handler's ``transports`` and ``close_connection``): these tests use
mitmproxy's own classes, so a rename there fails them."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.connection import ConnectionState, Server
from mitmproxy.proxy import mode_specs, server
from mitmproxy.test import taddons, tflow

from addon.flowstate import FlowState
from addon.hooks.cutoff import close_upstream, cut, watch_stream
from addon.providers.registry import BUILTIN


async def _stream_pair() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    return reader, writer, theirs


async def test_close_upstream_closes_the_flows_server_connection_in_mitmproxy():
    proxyserver = Proxyserver()
    with taddons.context(proxyserver) as tctx:
        reader, writer, peer = await _stream_pair()
        handler = server.SimpleConnectionHandler(
            reader, writer, tctx.options, mode_specs.ProxyMode.parse("regular"), {}
        )
        up_reader, up_writer, up_peer = await _stream_pair()
        upstream = Server(address=("upstream.test", 443))
        upstream.state = ConnectionState.OPEN
        task = asyncio.ensure_future(asyncio.Event().wait())  # the connection's reader task
        handler.transports[upstream] = server.ConnectionIO(task, up_reader, up_writer)
        f = tflow.tflow()
        f.client_conn, f.server_conn = handler.client, upstream
        with proxyserver.register_connection(handler.client.id, handler):
            assert close_upstream(f)
            assert upstream.state is ConnectionState.CLOSED
            await asyncio.sleep(0)
            assert task.cancelled()
            other = tflow.tflow()  # a flow of no connection the proxy knows
            assert not close_upstream(other)
        for w in (writer, up_writer):
            w.close()
            await w.wait_closed()
        for sock in (peer, up_peer):
            sock.close()


def test_close_upstream_says_when_it_could_not():
    with taddons.context():  # no proxyserver addon at all
        assert not close_upstream(tflow.tflow())


def _caps(*, max_s: float = 0, idle: float = 0) -> Any:
    """The two fields of ``options.Config`` that ``watch_stream`` reads."""
    return SimpleNamespace(stream_max_s=max_s, stream_idle_s=idle)


def _state() -> FlowState:
    provider = BUILTIN.by_host("api.openai.com")
    assert provider is not None
    return FlowState(provider=provider, api="openai.chat", endpoint="/v1/chat/completions")


def test_cut_marks_the_flow_timed_out_and_kills_it():
    with taddons.context(Proxyserver()):
        f, state = tflow.tflow(), _state()
        cut(f, state)
        assert state.timed_out and f.error is not None


async def test_a_stream_past_its_idle_time_is_cut():
    f, state = tflow.tflow(resp=True), _state()
    f.response.stream = lambda chunk: chunk
    config = _caps(idle=0.05)
    with taddons.context(Proxyserver()):
        watch_stream(f, state, config)
        assert state.watch is not None
        assert f.response.stream(b"x") == b"x"  # touched: idle time starts again
        await asyncio.sleep(0.3)
        assert state.timed_out
        state.stop_timers()


def test_without_caps_or_a_stream_nothing_is_watched():
    f, state = tflow.tflow(resp=True), _state()
    watch_stream(f, state, _caps())
    assert state.watch is None
    watch_stream(f, state, _caps(max_s=5))  # not streamed
    assert state.watch is None
