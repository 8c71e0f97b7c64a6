"""The real key enters only the bytes mitmproxy's client layers write, never a Request.

These drive mitmproxy's own HTTP/1 and HTTP/2 client layers: if mitmproxy stops
serialising requests through the names ``addon.keywire`` wraps, they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import pytest
from hpack import NeverIndexedHeaderTuple
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.connection import Client, Server
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import RequestHeaders, _http1, _http2, _http3
from mitmproxy.test import taddons, tutils

from addon.keywire import Secrets, WirePatch

REAL = "Bearer sk-proj-wire-REAL-0001"
MARK = "Bearer [tollkeeper:redacted] openai/main"


@pytest.fixture
def table() -> Iterator[Secrets]:
    secrets = Secrets()
    patch = WirePatch(secrets)
    patch.install()
    yield secrets
    patch.uninstall()


@pytest.fixture
def context() -> Iterator[Context]:
    with taddons.context(Proxyserver()) as tctx:
        client = Client(peername=("127.0.0.1", 1), sockname=("127.0.0.1", 2), timestamp_start=0)
        ctx = Context(client, tctx.options)
        ctx.server = Server(address=("upstream.test", 443))
        yield ctx


def _sent(layer: object, request: object) -> bytes:
    out = list(layer.handle_event(events.Start()))  # type: ignore[attr-defined]
    out += list(layer.handle_event(RequestHeaders(1, request, end_stream=True)))  # type: ignore[attr-defined]
    return b"".join(c.data for c in out if isinstance(c, commands.SendData))


def _request(placeholder: str, *, h2: bool = False, name: bytes = b"authorization"):
    req = tutils.treq(headers=((name, placeholder.encode()), (b"host", b"upstream.test")))
    if h2:
        req.http_version = "HTTP/2.0"
        req.authority = "upstream.test"
        del req.headers["host"]
    return req


def _h2_headers(data: bytes) -> list[tuple[bytes, bytes]]:
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    received = server.receive_data(data)
    return next(e.headers for e in received if isinstance(e, h2.events.RequestReceived))


def test_http1_client_layer_writes_the_real_value(table: Secrets, context: Context):
    placeholder = table.register("authorization", MARK, REAL)
    req = _request(placeholder)
    wire = _sent(_http1.Http1Client(context), req)
    assert f"authorization: {REAL}\r\n".encode() in wire
    assert placeholder.encode() not in wire
    assert req.headers["authorization"] == placeholder  # the Request never changes
    assert REAL.encode() not in http1.assemble_request_head(req)  # e.g. mitmweb's export


def test_http2_client_layer_writes_it_never_indexed(table: Secrets, context: Context):
    placeholder = table.register("authorization", MARK, REAL)
    req = _request(placeholder, h2=True)
    headers = _h2_headers(_sent(_http2.Http2Client(context), req))
    sent = [h for h in headers if h[0] == b"authorization"]
    assert sent == [(b"authorization", REAL.encode())]
    assert isinstance(sent[0], NeverIndexedHeaderTuple)
    assert req.headers["authorization"] == placeholder


def test_http3_client_layer_serialises_through_the_wrapped_name(table: Secrets, context):
    # An Http3Client needs a QUIC connection; check it looks the wrapped name up at call time
    # and that the name it finds fills the placeholder.
    assert "format_h2_request_headers" in _http3.Http3Connection._handle_event.__code__.co_names
    placeholder = table.register("authorization", MARK, REAL)
    gen = _http3.format_h2_request_headers(
        context, RequestHeaders(1, _request(placeholder, h2=True), True)
    )
    with pytest.raises(StopIteration) as done:
        next(gen)
    assert (b"authorization", REAL.encode()) in done.value.value


def test_forgotten_or_unknown_placeholders_stay_placeholders(table: Secrets, context: Context):
    placeholder = table.register("authorization", MARK, REAL)
    table.forget(placeholder)
    assert REAL.encode() not in _sent(_http1.Http1Client(context), _request(placeholder))
    forged = MARK + " ~" + "0" * 32
    assert REAL.encode() not in _sent(_http1.Http1Client(context), _request(forged))
    assert len(table) == 0


def test_a_placeholder_copied_into_another_header_is_not_filled(table: Secrets, context: Context):
    placeholder = table.register("x-api-key", "[tollkeeper:redacted] anthropic/main", "sk-ant-X")
    wire = _sent(_http1.Http1Client(context), _request(placeholder, name=b"x-echo"))
    assert b"sk-ant-X" not in wire
    headers = _h2_headers(_sent(_http2.Http2Client(context), _request(placeholder, h2=True)))
    assert (b"authorization", b"sk-ant-X") not in headers


def test_uninstall_restores_mitmproxy_and_the_newest_install_wins():
    originals = (_http1.http1, _http2.format_h2_request_headers, _http3.format_h2_request_headers)
    first, second = WirePatch(Secrets()), WirePatch(Secrets())
    first.install()
    second.install()  # e.g. the addon reloaded
    assert second.installed and not first.installed
    first.uninstall()  # the old instance's done() must not remove the new wrappers
    assert second.installed
    second.uninstall()
    now = (_http1.http1, _http2.format_h2_request_headers, _http3.format_h2_request_headers)
    assert now == originals
    assert _http1.http1 is http1


def test_the_http1_stand_in_delegates_everything_else(table: Secrets):
    assert _http1.http1.read_request_head is http1.read_request_head
