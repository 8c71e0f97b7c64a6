"""Cutting a flow off: a hung upstream's connection closed, a stream past its caps."""

from __future__ import annotations

import asyncio
from typing import Any

from mitmproxy import ctx, http

from addon.flowstate import FlowState
from addon.options import Config
from addon.streamwatch import StreamWatch


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close a flow's server connection so a hung upstream releases the client now.

    mitmproxy has no public call for this (``flow.kill()`` is only noticed at the flow's
    next event), so this uses the proxyserver's connection handlers (``connections`` by
    client connection id, ``transports``, ``close_connection``; tests/addon/hooks/
    test_cutoff.py fails when mitmproxy renames them) and reports whether it could; the
    caller falls back to ``kill()``.
    """
    try:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(flow.client_conn.id)
        if handler is None or flow.server_conn not in handler.transports:
            return False
        handler.close_connection(flow.server_conn)
    except (AttributeError, KeyError, TypeError):
        return False
    return True


def cut(flow: http.HTTPFlow, state: FlowState) -> None:
    """End the flow now as timed out: its record says ``upstream_timeout``."""
    state.timed_out = True
    if not close_upstream(flow) and flow.killable:
        flow.kill()  # noticed by mitmproxy only when the upstream finally answers


def watch_stream(flow: http.HTTPFlow, state: FlowState, config: Config) -> None:
    """Cut the flow's streamed response off past the configured duration or idle time."""
    resp = flow.response
    if resp is None or not (config.stream_max_s or config.stream_idle_s):
        return
    inner = resp.stream
    if not callable(inner):
        return
    watch = StreamWatch(
        asyncio.get_running_loop(),
        max_s=config.stream_max_s,
        idle_s=config.stream_idle_s,
        expire=lambda: cut(flow, state),
    )
    state.watch = watch

    def feed(chunk: bytes) -> Any:
        watch.touch()
        return inner(chunk)

    resp.stream = feed
