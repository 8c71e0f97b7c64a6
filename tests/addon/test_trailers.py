"""mitmproxy's HTTP/1 layer reads a chunked message with trailers instead of crashing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.connection import Client
from mitmproxy.proxy import events
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import RequestEndOfMessage, _http1
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.test import taddons

from addon.trailers import TrailerPatch

REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Trailer: x-t\r\n\r\n2\r\n{}\r\n0\r\nx-t: 1\r\n\r\n"
)


@pytest.fixture
def context() -> Iterator[Context]:
    with taddons.context(Proxyserver()) as tctx:
        client = Client(peername=("127.0.0.1", 1), sockname=("127.0.0.1", 2), timestamp_start=0)
        yield Context(client, tctx.options)


def _events(context: Context) -> list[object]:
    layer = _http1.Http1Server(context)
    out = list(layer.handle_event(events.Start()))
    out += list(layer.handle_event(events.DataReceived(context.client, REQUEST)))
    return [c.event for c in out if isinstance(c, ReceiveHttp)]


def test_mitmproxy_alone_cannot_read_trailers(context: Context):
    with pytest.raises(NotImplementedError, match="trailers"):
        _events(context)


def test_with_the_patch_the_request_ends_normally(context: Context):
    patch = TrailerPatch()
    patch.install()
    try:
        received = _events(context)
    finally:
        patch.uninstall()
    assert isinstance(received[-1], RequestEndOfMessage)
    assert _http1.ChunkedReader.__name__ == "ChunkedReader"  # uninstalled
