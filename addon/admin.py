"""The admin listener: ``/healthz``, ``/readyz`` and ``/metrics`` on an address of its own.

It runs in threads of its own (``ThreadingHTTPServer``), so a scrape or a slow readiness check
never waits on, nor stalls, the proxy's event loop. Bound to loopback (the default,
``127.0.0.1:8089``) it answers anyone on the machine; bound to any other address it requires
``Authorization: Bearer <token>``, the token coming from ``$TOLLKEEPER_ADMIN_TOKEN`` or the
0600 file ``admin.token`` in the tollkeeper home (created on first use). A token set in the
environment is required on loopback too.

- ``GET /healthz``: 200 ``{"alive": true}`` while the process serves.
- ``GET /readyz``: 200 when every check passes, else 503; the body says which failed and why.
- ``GET /metrics``: the Prometheus text format (see ``addon/metrics.py``).
- ``GET /`` and ``GET /dashboard``: the usage dashboard; ``GET /dashboard.json``: its data
  (see ``addon/dashboard/view.py`` for the query parameters).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT = "127.0.0.1:8089"
TOKEN_ENV = "TOLLKEEPER_ADMIN_TOKEN"  # noqa: S105 - a variable name
TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
# serve_forever checks for a shutdown this often: stop() (and so every gateway exit) waits
# up to one interval; the stdlib default of 0.5 s made SIGTERM and SIGINT half a second slower
POLL_S = 0.05

Checks = Callable[[], dict[str, str]]  # check name -> "ok" or what is wrong
# The page's own scripts and styles are inline; nothing else may load, nor frame it.
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'; form-action 'self'"
)


class Dashboard(Protocol):
    def page(self, query: str) -> bytes: ...

    def json(self, query: str) -> bytes: ...


def parse_address(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT``), ``:PORT`` (loopback) or ``off``; raises ValueError."""
    value = value.strip()
    if value.lower() in ("", "off", "none", "false"):
        return None
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"tollkeeper_admin must be HOST:PORT or off, not {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(home: Path, *, required: bool) -> str | None:
    """The admin token: the environment's; else, when required (not on loopback), the home's
    file, created on first use."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if not required:
        return None
    path = home / TOKEN_FILE
    if path.exists() and (token := path.read_text().strip()):
        return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.warning("tollkeeper: admin listener token created in %s", path)
    return token


class AdminServer:
    def __init__(
        self,
        address: tuple[str, int],
        *,
        token: str | None,
        checks: Checks,
        metrics: Callable[[], bytes],
        dashboard: Callable[[], Dashboard | None] = lambda: None,
    ) -> None:
        handler = type("Handler", (_Handler,), {"admin": self})
        self.token, self.checks, self.metrics = token, checks, metrics
        self.dashboard = dashboard
        self._server = ThreadingHTTPServer(address, handler)  # binds now: OSError if taken
        self._server.daemon_threads = True
        self.address = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(POLL_S,),
            name="tollkeeper-admin",
            daemon=True,
        )

    def start(self) -> AdminServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token)


class _Handler(BaseHTTPRequestHandler):
    admin: AdminServer
    server_version = "tollkeeper-admin"

    def do_GET(self) -> None:
        if not self.admin.authorised(self.headers.get("authorization")):
            self._json(401, {"error": "a bearer token is required (see admin.token)"})
            return
        path, _, query = self.path.partition("?")
        try:
            if path == "/healthz":
                self._json(200, {"alive": True})
            elif path == "/readyz":
                checks = self.admin.checks()
                ready = all(v == "ok" for v in checks.values())
                self._json(200 if ready else 503, {"ready": ready, "checks": checks})
            elif path == "/metrics":
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", self.admin.metrics())
            elif path in ("/", "/dashboard", "/dashboard.json") and (
                dashboard := self.admin.dashboard()
            ):
                self._dashboard(dashboard, path, query)
            else:
                self._json(404, {"error": f"no such page: {path}"})
        except Exception:
            log.exception("tollkeeper: admin listener fault on %s", path)
            self._json(500, {"error": "internal error (see the gateway log)"})

    def _dashboard(self, dashboard: Dashboard, path: str, query: str) -> None:
        try:
            if path == "/dashboard.json":
                self._send(200, "application/json", dashboard.json(query))
                return
            body = dashboard.page(query)
        except ValueError as e:  # a bad query parameter
            self._json(400, {"error": str(e)})
            return
        self._send(200, "text/html; charset=utf-8", body, {"content-security-policy": PAGE_POLICY})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("tollkeeper admin: " + format, *args)
