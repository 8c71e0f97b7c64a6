"""Only provider hosts are intercepted; anything else tunnels through undecrypted.
And the same gateway runs on PostgreSQL."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from integration.conftest import build_stack
from integration.harness import wait_for


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tunnel-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "tunnel.pem", tmp / "tunnel.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tls_through_proxy(proxy_port: int, port: int, context: ssl.SSLContext) -> None:
    """CONNECT through the proxy, then a TLS handshake; every socket closed afterwards."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as raw:
        raw.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname="127.0.0.1"):
            pass


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"not intercepted"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_other_https_hosts_tunnel_through_untouched(stack, tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/"
        # trusting ONLY the server's own certificate: this works only if mitmproxy does not
        # intercept (an intercepted connection would present a mitmproxy-signed cert)
        verify = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(proxy=stack.gateway.proxy_url, verify=verify, trust_env=False) as c:
            assert c.get(url).text == "not intercepted"
        # and trusting only mitmproxy's CA fails: the server's own certificate came through
        mitm = ssl.create_default_context(cafile=stack.gateway.ca_cert)
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls_through_proxy(stack.gateway.port, server.server_address[1], mitm)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.postgres
def test_gateway_on_postgresql_meters_and_revokes(postgres_url, tmp_path: Path, monkeypatch):
    import openai

    gen = build_stack(tmp_path, db_url=postgres_url)
    s = next(gen)
    try:
        key = s.cli.new_key("pg")
        client = s.openai_forward(key["key"], monkeypatch)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        rows = wait_for(lambda: s.cli.usage("project"), timeout=5)
        assert rows[0]["project"] == "pg" and rows[0]["input_tokens"] == 1200
        s.cli.run("keys", "revoke", key["id"])

        def refused() -> bool:
            try:
                client.models.list()
            except openai.AuthenticationError:
                return True
            return False

        assert wait_for(refused, timeout=1.0, interval=0.05)
    finally:
        s.gateway.stop()
        next(gen, None)
