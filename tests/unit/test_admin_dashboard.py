"""The admin listener's dashboard routes, over a real socket, with a stand-in dashboard."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from unit.test_admin import get

from addon.admin import AdminServer


class FakeDashboard:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def page(self, query: str) -> bytes:
        self.queries.append(query)
        if "bucket=week" in query:
            raise ValueError("bucket must be day or hour")
        return b"<!doctype html><p>page</p>"

    def json(self, query: str) -> bytes:
        self.queries.append(query)
        return b'{"totals": {}}'


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[AdminServer, FakeDashboard]]:
    dash = FakeDashboard()
    srv = AdminServer(
        ("127.0.0.1", 0),
        token=getattr(request, "param", None),
        checks=dict,
        metrics=bytes,
        dashboard=lambda: dash,
    ).start()
    yield srv, dash
    srv.stop()


def csp(srv: AdminServer, path: str) -> str:
    host, port = srv.address
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
        return str(resp.headers["content-security-policy"])


def test_the_page_and_its_data_with_their_query(served) -> None:
    srv, dash = served
    status, body, content_type = get(srv, "/dashboard?project=a&bucket=hour")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert content_type == "text/html; charset=utf-8"
    assert get(srv, "/")[0] == 200
    status, body, content_type = get(srv, "/dashboard.json?key=k1")
    assert status == 200 and json.loads(body) == {"totals": {}}
    assert content_type == "application/json"
    assert dash.queries == ["project=a&bucket=hour", "", "key=k1"]
    assert "default-src 'none'" in csp(srv, "/dashboard")  # its scripts are its own, inline


def test_a_bad_query_is_a_400_with_the_reason(served) -> None:
    srv, _ = served
    status, body, _ = get(srv, "/dashboard?bucket=week")
    assert status == 400 and json.loads(body) == {"error": "bucket must be day or hour"}


@pytest.mark.parametrize("served", ["s3cret-token"], indirect=True)
def test_the_dashboard_needs_the_token_like_every_page(served) -> None:
    srv, dash = served
    for path in ("/", "/dashboard", "/dashboard.json"):
        assert get(srv, path)[0] == 401
        assert get(srv, path, token="wrong")[0] == 401
        assert get(srv, path, token="s3cret-token")[0] == 200
    assert len(dash.queries) == 3


def test_without_a_runtime_there_is_no_dashboard() -> None:
    srv = AdminServer(("127.0.0.1", 0), token=None, checks=dict, metrics=bytes).start()
    try:
        assert get(srv, "/dashboard")[0] == 404
    finally:
        srv.stop()
