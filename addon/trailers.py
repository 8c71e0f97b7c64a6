"""HTTP/1 messages with trailers are read without them instead of hanging the client.

mitmproxy 12's HTTP/1 layer raises ``NotImplementedError("HTTP trailers are not
implemented yet.")`` when a chunked message (a client's request or an upstream's
response) ends with trailer fields; the exception is logged as "mitmproxy has crashed!"
and the connection is left hanging, unanswered and unrecorded. No provider API uses
trailers, so ``TrailerPatch`` makes mitmproxy's HTTP/1 layer read chunked bodies with a
reader that drops them: the message then ends normally and is answered and metered.

It rebinds ``ChunkedReader`` in ``mitmproxy.proxy.layers.http._http1`` only (where
``make_body_reader`` looks it up); tests drive mitmproxy's HTTP/1 server layer with a
request carrying trailers, so a change there fails them.
"""

from __future__ import annotations

from typing import Any

import h11
from h11._readers import ChunkedReader


class TrailerDroppingReader(ChunkedReader):
    """h11's chunked reader, with any trailer fields dropped from the end of the body."""

    def __call__(self, buf: Any) -> Any:
        event = super().__call__(buf)
        if isinstance(event, h11.EndOfMessage) and event.headers:
            return h11.EndOfMessage()
        return event


class TrailerPatch:
    """An addon: installed while loaded (mitmdump exits if mitmproxy changed that layer)."""

    name = "tollkeeper-trailers"

    def __init__(self) -> None:
        self._installed = False

    def load(self, loader: Any) -> None:
        self.install()

    def done(self) -> None:
        self.uninstall()

    def install(self) -> None:
        from mitmproxy.proxy.layers.http import _http1

        current = getattr(_http1, "ChunkedReader", None)
        if current is not ChunkedReader and current is not TrailerDroppingReader:
            raise RuntimeError("mitmproxy's HTTP/1 layer no longer reads chunks with h11")
        setattr(_http1, "ChunkedReader", TrailerDroppingReader)  # noqa: B010 - not exported
        self._installed = True

    def uninstall(self) -> None:
        from mitmproxy.proxy.layers.http import _http1

        if self._installed and getattr(_http1, "ChunkedReader", None) is TrailerDroppingReader:
            setattr(_http1, "ChunkedReader", ChunkedReader)  # noqa: B010 - not exported
        self._installed = False
