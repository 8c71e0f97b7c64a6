"""A real key never shows: not in the flow file (-w), the log, the database, a CLI listing,
nor the flows mitmweb serves. Flows carry a comment for mitmweb; rejected flows are marked."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from fakes.upstream import api_key
from integration.conftest import ANTHROPIC_REAL, OPENAI_REAL, build_stack
from integration.harness import GatewayProcess, free_port, wait_for
from mitmproxy import io
from websockets.sync import client as ws_client

SECRETS = (OPENAI_REAL.encode(), ANTHROPIC_REAL.encode())
MESSAGES = [{"role": "user", "content": "hi"}]


def _exercise(stack, monkeypatch) -> str:
    key = stack.cli.new_key("secrets")["key"]
    oa = stack.openai_forward(key, monkeypatch)
    oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    stack.anthropic_forward(key, monkeypatch).messages.create(
        model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES
    )
    stack.upstream.key_status[OPENAI_REAL] = 401  # the provider echoes (a masked) key back
    with pytest.raises(openai.AuthenticationError):
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        stack.openai_forward("tk-wrong", monkeypatch).models.list()
    return key


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_flow_file_log_database_and_listings_hold_no_real_key(tmp_path: Path, monkeypatch):
    flows, har = tmp_path / "flows.mitm", tmp_path / "flows.har"
    verbose = ("--set", "termlog_verbosity=debug", "--set", "flow_detail=4")
    gen = build_stack(tmp_path, extra_args=("-w", str(flows), "--set", f"hardump={har}", *verbose))
    stack = next(gen)
    try:
        _exercise(stack, monkeypatch)
        wait_for(lambda: len(stack.cli.usage("project")) >= 2, timeout=5)
    finally:
        stack.gateway.stop()
        next(gen, None)

    assert "authorization: Bearer [tollkeeper:redacted] openai/main ~" in stack.gateway.log()
    for f in [flows, har, stack.gateway.log_path, *_files_under(tmp_path / "home")]:
        data = f.read_bytes()
        for secret in SECRETS:
            assert secret not in data, f"real key found in {f}"
    listing = (
        stack.cli.run("providers", "list").stdout
        + stack.cli.run("providers", "list", "--json").stdout
    )
    assert OPENAI_REAL not in listing and ANTHROPIC_REAL not in listing

    with flows.open("rb") as f:
        saved = list(io.FlowReader(f).stream())
    assert len(saved) == 5
    metered = [fl for fl in saved if fl.marked == ":moneybag:"]
    rejected = [fl for fl in saved if fl.response and fl.response.status_code == 401]
    assert len(metered) == 4 and len(rejected) == 2
    for fl in metered:
        assert fl.comment.startswith("secrets · "), fl.comment
        auth = fl.request.headers.get("authorization") or fl.request.headers.get("x-api-key")
        assert "[tollkeeper:redacted]" in auth
    gateway_reject = [fl for fl in rejected if "x-tollkeeper-error" in fl.response.headers]
    assert len(gateway_reject) == 1 and gateway_reject[0].marked == ":no_entry:"
    assert "rejected (invalid_key)" in gateway_reject[0].comment


def test_mitmweb_shows_comments_and_no_real_key(tmp_path: Path, monkeypatch):
    web_port = free_port()
    gen = build_stack(
        tmp_path,
        program="mitmweb",
        extra_args=(
            "--set",
            f"web_port={web_port}",
            "--set",
            "web_open_browser=false",
            "--set",
            "web_password=s3cret",
        ),
    )
    stack = next(gen)
    try:
        _exercise(stack, monkeypatch)
        req = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/flows", headers={"Authorization": "Bearer s3cret"}
        )
        body = urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - loopback
    finally:
        stack.gateway.stop()
        next(gen, None)
    for secret in SECRETS:
        assert secret not in body
    flows = json.loads(body)
    comments = [f.get("comment", "") for f in flows]
    assert sum(c.startswith("secrets · ") for c in comments) == 4


def _web_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _WebPoller:
    """Polls mitmweb's REST API and listens on its websocket; counts answers with a secret."""

    def __init__(self, port: int, token: str) -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token
        self.answers = self.hits = 0
        self.in_flight_seen: set[str] = set()
        self.ws_messages = self.ws_hits = self.bodies_read = 0
        self.ws_error: Exception | None = None
        self._stop = threading.Event()
        self._ws = threading.Thread(target=self._listen, daemon=True)

    def _get(self, path: str) -> bytes:
        req = urllib.request.Request(  # noqa: S310 - loopback
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            body: bytes = resp.read()
        self.answers += 1
        self.hits += any(s in body for s in SECRETS)
        return body

    def poll_once(self) -> None:
        flows = json.loads(self._get("/flows"))
        self._get("/flows/dump")
        for fl in flows:
            if fl.get("response") is None and fl.get("error") is None:
                self.in_flight_seen.add(fl["id"])
                # mitmweb lists a flow from `requestheaders` on; until its body is read the
                # content is None and mitmweb itself answers 500 for content.data.
                if fl["request"]["contentLength"] is not None:
                    self._get(f"/flows/{fl['id']}/request/content.data")
                    self.bodies_read += 1

    def start_listening(self) -> None:
        self._ws.start()

    def stop_listening(self) -> None:
        self._stop.set()
        self._ws.join(timeout=10)

    def _listen(self) -> None:
        try:
            self._receive()
        except Exception as exc:  # reported by the test, not lost in a thread
            self.ws_error = exc

    def _receive(self) -> None:
        url = self.base.replace("http://", "ws://") + f"/updates?token={self.token}"
        with ws_client.connect(url, open_timeout=10) as ws:
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                data = message.encode() if isinstance(message, str) else message
                self.ws_messages += 1
                self.ws_hits += any(s in data for s in SECRETS)


def test_mitmweb_never_serves_a_real_key_while_requests_wait_on_a_slow_upstream(
    tmp_path: Path, monkeypatch
):
    """40 requests wait on the upstream while mitmweb's REST API and websocket are read."""
    web_port, flows, har = free_port(), tmp_path / "flows.mitm", tmp_path / "flows.har"
    gen = build_stack(
        tmp_path,
        program="mitmweb",
        extra_args=(
            *("--set", f"web_port={web_port}", "--set", "web_open_browser=false"),
            *("--set", "web_password=s3cret", "--set", "termlog_verbosity=debug"),
            *("-w", str(flows), "--set", f"hardump={har}"),
        ),
    )
    stack = next(gen)
    poller = _WebPoller(web_port, "s3cret")
    assert wait_for(lambda: _web_ready(web_port), timeout=20), "mitmweb's UI did not start"
    try:
        key = stack.cli.new_key("webpoll")["key"]
        forward = stack.openai_forward(key, monkeypatch)
        anthropic = stack.anthropic_forward(key, monkeypatch)
        reverse = openai.OpenAI(
            api_key=key, base_url=stack.gateway.reverse_url("openai") + "/v1", max_retries=0
        )
        stack.track(reverse)
        stack.upstream.set_scenario("slow", seconds=4)
        poller.start_listening()

        def call(i: int) -> None:
            if i % 4 == 3:
                anthropic.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)
            else:
                client = reverse if i % 4 == 2 else forward
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        with ThreadPoolExecutor(max_workers=40) as pool:
            futures = [pool.submit(call, i) for i in range(40)]
            while not all(f.done() for f in futures):
                poller.poll_once()
            for f in futures:
                f.result()
        poller.poll_once()
        poller.stop_listening()
    finally:
        stack.gateway.stop()
        next(gen, None)
    print(
        f"mitmweb: {poller.answers} REST answers ({poller.hits} with a real key), "
        f"{len(poller.in_flight_seen)} flows seen waiting on the upstream "
        f"({poller.bodies_read} request bodies read), "
        f"{poller.ws_messages} websocket messages ({poller.ws_hits} with a real key)"
    )
    assert poller.ws_error is None, f"mitmweb's websocket failed: {poller.ws_error!r}"
    assert len(poller.in_flight_seen) >= 20, "the polls must have seen requests in flight"
    assert poller.bodies_read >= 20, "the polls must have read bodies of requests in flight"
    assert poller.ws_messages >= 40
    assert poller.hits == 0 and poller.ws_hits == 0
    assert len(stack.upstream.requests) == 40
    for r in stack.upstream.requests:  # each got its real key, written on the wire only
        expected = ANTHROPIC_REAL if r.path.startswith("/v1/messages") else OPENAI_REAL
        assert api_key(r.headers, "anthropic" if expected == ANTHROPIC_REAL else "openai") == (
            expected
        )
    for f in [flows, har, stack.gateway.log_path]:
        data = f.read_bytes()
        assert all(s not in data for s in SECRETS), f"real key found in {f}"


def test_the_gateway_refuses_to_start_with_proxy_debug(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    gw = GatewayProcess(tmp_path, home, extra_args=("--set", "proxy_debug=true"))
    with contextlib.suppress(RuntimeError):  # it may exit before its ports accept
        gw.start()
    assert gw.proc is not None
    assert gw.proc.wait(timeout=30) != 0
    assert "proxy_debug is not allowed" in gw.log()
