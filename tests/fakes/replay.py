"""A loopback HTTP/1.1 server that replays recorded provider responses.

:class:`ReplayUpstream` answers each request with the next :class:`Reply` it was armed with:
the recorded status, headers and body bytes, sent with a content-length, or chunked with each
piece (see ``recorded.pieces``) its own write and its own HTTP chunk, or close-delimited with
each piece its own write. It keeps connections alive (HTTP/1.1) unless the reply is
close-delimited, and records every request it saw.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes.recorded import Case, pieces


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cuts: list[int] | None = None  # None: content-length; else each piece its own write
    close_delimited: bool = False  # no length, no chunking: the body ends when we close


def reply_for(case: Case, cuts: list[int] | None, *, close_delimited: bool = False) -> Reply:
    return Reply(case.status, case.response_headers, case.response_body, cuts, close_delimited)


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _State:
    replies: list[Reply] = field(default_factory=list)
    requests: list[SeenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each piece leaves in its own segment
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        # http.server collapses a leading "//" in self.path; the request line keeps it
        target = self.requestline.split(" ")[1]
        seen = SeenRequest(
            self.command, target, {k.lower(): v for k, v in self.headers.items()}, body
        )
        state = self.server.state
        with state.lock:
            state.requests.append(seen)
            reply = state.replies.pop(0) if state.replies else None
        if reply is None:
            reply = Reply(599, {"content-type": "text/plain"}, b"replay: not armed")
        self._send(reply)

    do_POST = do_GET = do_PUT = do_DELETE = _any

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.close_delimited:
            self.send_header("connection", "close")
            self.close_connection = True
        elif reply.cuts is None:
            self.send_header("content-length", str(len(reply.body)))
        else:
            self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        body_pieces = [reply.body] if reply.cuts is None else pieces(reply.body, reply.cuts)
        for piece in body_pieces:
            chunked = reply.cuts is not None and not reply.close_delimited
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            self.wfile.flush()
        if reply.cuts is not None and not reply.close_delimited:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class ReplayUpstream:
    """A loopback server answering each request with the next armed :class:`Reply`
    (an unarmed request gets a 599)."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def arm(self, *replies: Reply) -> None:
        with self._server.state.lock:
            self._server.state.replies.extend(replies)

    def reset(self) -> None:
        with self._server.state.lock:
            self._server.state.replies.clear()
            self._server.state.requests.clear()

    def __enter__(self) -> ReplayUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
