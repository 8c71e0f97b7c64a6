"""Recorded provider exchanges (``../shared/realtraffic/cases``) and a loopback HTTP/1.1
server that replays them.

A :class:`Case` is one real request/response pair (see the folder's README). Its body can be
cut into pieces three ways: :func:`event_cuts` (one SSE event or one JSON-array element per
piece; for a compressed body, the compressed offsets at which each event is complete),
:func:`random_cuts` (arbitrary offsets), or not at all. :class:`ReplayUpstream` answers each
request with the response it was armed with, sending each piece as its own write (and, when
chunked, its own HTTP chunk), or close-delimited; it records every request it saw.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT.parent / "shared" / "realtraffic" / "cases"
SKIP_REASON = f"no recorded provider traffic at {CASES_DIR} (it lives outside the project)"


@dataclass(frozen=True)
class Case:
    id: str
    provider: str
    host: str
    api: str
    stream: bool
    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    client_asked_usage: bool
    status: int
    response_headers: dict[str, str]
    response_body: bytes  # as recorded: compressed where content-encoding says so
    expected: dict[str, Any]

    @property
    def content_encoding(self) -> str | None:
        return self.response_headers.get("content-encoding")

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    @property
    def plain_body(self) -> bytes:
        """The response body decompressed."""
        return decompress(self.response_body, self.content_encoding)

    @property
    def is_sse(self) -> bool:
        return "event-stream" in self.content_type


def load_case(path: Path) -> Case:
    doc = json.loads(path.read_text())
    req, resp = doc["request"], doc["response"]
    return Case(
        id=doc["id"],
        provider=doc["provider"],
        host=doc["host"],
        api=doc["api"],
        stream=bool(doc["stream"]),
        method=req["method"],
        path=req["path"],
        request_headers={k.lower(): v for k, v in req["headers"].items()},
        request_body=base64.b64decode(req["body_b64"]),
        client_asked_usage=bool(req.get("client_asked_usage")),
        status=int(resp["status"]),
        response_headers={k.lower(): v for k, v in resp["headers"].items()},
        response_body=base64.b64decode(resp["body_b64"]),
        expected=doc["expected"],
    )


def load_cases() -> list[Case]:
    """Every recorded case, sorted by id; empty when the folder is absent."""
    if not CASES_DIR.is_dir():
        return []
    return [load_case(p) for p in sorted(CASES_DIR.glob("*.json"))]


def decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, wbits=47)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"no decoder for {encoding!r} in the replay helpers")


# -- where a body may be cut -------------------------------------------------------------------


def plain_event_ends(body: bytes, sse: bool) -> list[int]:
    """Offsets just past each SSE event (its blank line) or each top-level JSON-array element
    (and its separator), in an uncompressed body."""
    return _sse_ends(body) if sse else _json_array_ends(body)


def _sse_ends(body: bytes) -> list[int]:
    ends, i = [], 0
    while i < len(body):
        found = [(body.find(sep, i), sep) for sep in (b"\r\n\r\n", b"\n\n", b"\r\r")]
        found = [(at, sep) for at, sep in found if at >= 0]
        if not found:
            break
        at, sep = min(found)
        i = at + len(sep)
        ends.append(i)
    return ends


def _json_array_ends(body: bytes) -> list[int]:
    ends, depth, in_string, escaped = [], 0, False, False
    for i, byte in enumerate(body):
        ch = chr(byte)
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 1 and ch == "}":
                ends.append(i + 1)
    return ends


def event_cuts(case: Case) -> list[int]:
    """Offsets in the recorded (maybe compressed) body that end one event each."""
    plain_ends = plain_event_ends(case.plain_body, case.is_sse)
    if case.content_encoding in (None, "", "identity"):
        return _inner(plain_ends, len(case.response_body))
    return _inner(_compressed_offsets(case, plain_ends), len(case.response_body))


def _compressed_offsets(case: Case, plain_ends: list[int]) -> list[int]:
    """For each plain offset, the first compressed offset whose bytes decode past it."""
    wbits = 47 if case.content_encoding in ("gzip", "x-gzip") else 15
    decoder = zlib.decompressobj(wbits=wbits)
    out, produced, want = [], 0, iter(plain_ends)
    target = next(want, None)
    for i in range(len(case.response_body)):
        produced += len(decoder.decompress(case.response_body[i : i + 1]))
        while target is not None and produced >= target:
            out.append(i + 1)
            target = next(want, None)
    return out


def random_cuts(size: int, rng: random.Random, pieces: int = 12) -> list[int]:
    """Up to ``pieces - 1`` arbitrary offsets inside ``size`` bytes, some one byte apart."""
    if size < 2:
        return []
    cuts = {rng.randrange(1, size) for _ in range(pieces - 1)}
    cuts |= {c + 1 for c in list(cuts)[:2] if c + 1 < size}
    return sorted(cuts)


def _inner(cuts: list[int], size: int) -> list[int]:
    return sorted({c for c in cuts if 0 < c < size})


def pieces(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at ``cuts``; never an empty piece."""
    bounds = [0, *_inner(cuts, len(body)), len(body)]
    return [body[a:b] for a, b in pairwise(bounds) if b > a]


# -- the server --------------------------------------------------------------------------------


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
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = SeenRequest(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
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

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


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
