"""The admin listener: address parsing, the token, and its pages over a real socket."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from addon import admin
from addon.admin import AdminServer


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8089", ("127.0.0.1", 8089)),
        (":9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),  # noqa: S104 - parsing only
        ("off", None),
        ("", None),
    ],
)
def test_parse_address(text: str, address: tuple[str, int] | None) -> None:
    assert admin.parse_address(text) == address


@pytest.mark.parametrize("text", ["8089", "host:", "host:0", "host:70000", "host:x"])
def test_parse_address_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        admin.parse_address(text)


def test_loopback() -> None:
    assert admin.is_loopback("127.0.0.1") and admin.is_loopback("::1")
    assert admin.is_loopback("localhost")
    assert not admin.is_loopback("0.0.0.0")  # noqa: S104
    assert not admin.is_loopback("10.1.2.3") and not admin.is_loopback("example.com")


def test_token_is_created_0600_when_required_and_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(admin.TOKEN_ENV, raising=False)
    assert admin.load_token(tmp_path, required=False) is None
    token = admin.load_token(tmp_path, required=True)
    path = tmp_path / admin.TOKEN_FILE
    assert token and len(token) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert admin.load_token(tmp_path, required=True) == token


def test_a_token_from_the_environment_applies_on_loopback_too(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(admin.TOKEN_ENV, "from-env")
    assert admin.load_token(tmp_path, required=False) == "from-env"
    assert not (tmp_path / admin.TOKEN_FILE).exists()


class Pages:
    def __init__(self) -> None:
        self.checks = {"database": "ok"}
        self.fault = False

    def read_checks(self) -> dict[str, str]:
        if self.fault:
            raise RuntimeError("simulated")
        return dict(self.checks)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[tuple[AdminServer, Pages]]:
    pages = Pages()
    token = getattr(request, "param", None)
    srv = AdminServer(
        ("127.0.0.1", 0), token=token, checks=pages.read_checks, metrics=lambda: b"x_total 1\n"
    ).start()
    yield srv, pages
    srv.stop()


def get(srv: AdminServer, path: str, token: str | None = None) -> tuple[int, bytes, str]:
    host, port = srv.address
    req = urllib.request.Request(f"http://{host}:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read(), resp.headers["content-type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["content-type"]


def test_healthz_readyz_metrics_and_404(server) -> None:
    srv, pages = server
    assert get(srv, "/healthz")[:2] == (200, b'{"alive": true}')
    status, body, _ = get(srv, "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "checks": {"database": "ok"}}
    pages.checks["spool"] = "records wait in the spool"
    status, body, _ = get(srv, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["spool"] == "records wait in the spool"
    status, body, content_type = get(srv, "/metrics")
    assert (status, body) == (200, b"x_total 1\n") and content_type.startswith("text/plain")
    assert get(srv, "/nope")[0] == 404


def test_a_fault_answers_500_and_the_listener_stays_up(server) -> None:
    srv, pages = server
    pages.fault = True
    assert get(srv, "/readyz")[0] == 500
    assert get(srv, "/healthz")[0] == 200


@pytest.mark.parametrize("server", ["s3cret-token"], indirect=True)
def test_with_a_token_every_page_needs_it(server) -> None:
    srv, _ = server
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(srv, path)[0] == 401
        assert get(srv, path, token="wrong")[0] == 401
        assert get(srv, path, token="s3cret-token")[0] == 200


def test_a_taken_port_raises_at_construction(server) -> None:
    srv, _ = server
    with pytest.raises(OSError):
        AdminServer(srv.address, token=None, checks=dict, metrics=bytes)
