"""Raw HTTP/1.1 helpers for talking to the fake upstream without an SDK in the way."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

from fakes.upstream import FakeUpstream


def post(
    up: FakeUpstream, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def read_response(stream: Any) -> tuple[str, dict[str, str], list[tuple[float, bytes]], bool]:
    """One response from a buffered socket file: status line, headers, timed chunks, complete?

    A content-length body comes back as one chunk; a chunked body chunk by chunk, with
    `complete` False when the connection closed before the terminating chunk.
    """
    status = stream.readline().decode().strip()
    fields = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        fields[name.strip().lower()] = value.strip()
    if "content-length" in fields:
        body = stream.read(int(fields["content-length"]))
        return status, fields, [(time.monotonic(), body)], True
    chunks: list[tuple[float, bytes]] = []
    while size_line := stream.readline():
        size = int(size_line.strip(), 16)
        if size == 0:
            stream.readline()
            return status, fields, chunks, True
        chunks.append((time.monotonic(), stream.read(size)))
        stream.read(2)
    return status, fields, chunks, False


def raw_exchange(
    up: FakeUpstream, path: str, body: dict[str, Any], headers: str = ""
) -> tuple[str, dict[str, str], list[tuple[float, bytes]], bool]:
    """Send one request on a raw socket and read the response with `read_response`."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n{headers}\r\n"
    )
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(head.encode() + data)
        with sock.makefile("rb") as stream:
            return read_response(stream)


def sse_data(chunks: list[tuple[float, bytes]]) -> list[Any]:
    out = []
    for _, chunk in chunks:
        line = next(li for li in chunk.decode().split("\n") if li.startswith("data: "))
        out.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    return out
