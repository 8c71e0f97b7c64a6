"""A request that names a provider (TLS SNI, Host) but goes elsewhere never passes unmetered."""

from __future__ import annotations

import json
import socket
import ssl
import threading

from integration.harness import free_port, wait_for


class _Listener:
    """A TCP port that only records whether anything connected to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _via_ip_with_sni(stack, port: int, sni: str, key: str) -> tuple[int, dict[str, str], bytes]:
    raw = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10)
    raw.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert b" 200 " in _read_head(raw).split(b"\r\n", 1)[0]
    ctx = ssl.create_default_context(cafile=stack.gateway.ca_cert)
    ctx.set_alpn_protocols(["http/1.1"])
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        body = json.dumps({"model": "gpt-4o-mini", "messages": []}).encode()
        tls.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = _read_head(tls)
        rest = b""
        while piece := tls.recv(65536):
            rest += piece
    status_line, *lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, head.split(b"\r\n\r\n", 1)[1] + rest


def test_connect_to_an_ip_with_a_provider_sni_is_refused_and_recorded(stack):
    key = stack.cli.new_key("misdirected")["key"]
    listener = _Listener()
    try:
        status, headers, body = _via_ip_with_sni(stack, listener.port, "api.openai.com", key)
    finally:
        listener.close()
    assert status == 403 and headers["x-tollkeeper-error"] == "not_allowed"
    assert "by its host name" in json.loads(body)["error"]["message"]
    assert listener.connections == 0  # never tunnelled, never forwarded
    rows = wait_for(lambda: stack.cli.usage("provider"), timeout=5)  # recorded, not lost
    assert [(r["provider"], r["requests"], r["error_requests"]) for r in rows] == [
        ("openai", 1, 1)
    ], rows
