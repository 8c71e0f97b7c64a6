"""AdminListener alone: the tollkeeper_admin option refused when bad, the listener
started when running, moved when the option changes, stopped at done."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.harness import free_port
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addon.hooks.admin_listener import AdminListener
from addon.hooks.lifecycle import RuntimeHost, Shutdown
from addon.hooks.shared import Shared


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read()


@pytest.fixture
def chain(tmp_path: Path, tk_home: Path) -> Iterator[tuple[AdminListener, taddons.context]]:
    shared = Shared()
    host, listener = RuntimeHost(shared), AdminListener(shared)
    with taddons.context(host, listener) as tctx:
        tctx.configure(
            host,
            tollkeeper_db=f"sqlite:///{tmp_path / 'gw.db'}",
            tollkeeper_home=str(tk_home),
            tollkeeper_probe_upstream=False,
        )
        yield listener, tctx
        listener.done()
        Shutdown(shared).done()


def test_a_bad_address_is_refused_at_configure(chain):
    listener, tctx = chain
    with pytest.raises(exceptions.OptionsError, match="HOST:PORT or off"):
        tctx.configure(listener, tollkeeper_admin="nowhere")


def test_the_listener_starts_when_running_and_serves_the_runtimes_checks(chain):
    listener, tctx = chain
    port = free_port()
    tctx.configure(listener, tollkeeper_admin=f"127.0.0.1:{port}")
    assert listener.server is None  # not before mitmproxy runs
    listener.running()
    assert listener.server is not None
    status, body = _get(port, "/readyz")
    assert status == 200 and json.loads(body)
    assert _get(port, "/metrics")[0] == 200


def test_a_changed_address_moves_the_listener_and_off_stops_it(chain):
    listener, tctx = chain
    first, second = free_port(), free_port()
    tctx.configure(listener, tollkeeper_admin=f"127.0.0.1:{first}")
    listener.running()
    listener.shared.loop = object()  # type: ignore[assignment]  # "running"
    before = listener.server
    tctx.configure(listener, tollkeeper_admin=f"127.0.0.1:{first}")  # the same: kept
    assert listener.server is before
    tctx.configure(listener, tollkeeper_admin=f"127.0.0.1:{second}")
    assert listener.server is not before and _get(second, "/healthz")[0] == 200
    tctx.configure(listener, tollkeeper_admin="off")
    assert listener.server is None


def test_a_port_in_use_is_a_warning_and_the_proxy_serves_on(chain, caplog):
    listener, tctx = chain
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        tctx.configure(listener, tollkeeper_admin=f"127.0.0.1:{busy.getsockname()[1]}")
        caplog.set_level(logging.WARNING)
        listener.running()
    assert listener.server is None
    assert any("admin listener" in r.getMessage() for r in caplog.records)


def test_without_a_runtime_the_checks_say_so():
    listener = AdminListener(Shared())
    assert listener._readiness() == {"runtime": "not started"}
    assert listener._metrics() == b"" and listener._dashboard() is None
