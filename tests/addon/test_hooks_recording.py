"""Hooks and usage records: no forwarding while nothing can be recorded (a provider-shaped
503), and what a shutdown records for a flow still open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import payloads
from hookchain import REAL, running, seed
from mitmproxy import http
from mitmproxy.test import tflow, tutils
from sqlmodel import Session, select

from addon.store.db import open_store
from addon.store.models import UsageRecord


@pytest.fixture
def gateway(tmp_path: Path, tk_home: Path):
    full = seed(tmp_path / "gw.db", tk_home)
    with running(tmp_path / "gw.db", tk_home) as (gw, _):
        yield gw, full, f"sqlite:///{tmp_path / 'gw.db'}"


def _flow(key: str, body: dict | None = None) -> tflow.HTTPFlow:
    req = tutils.treq(
        host="api.openai.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=b"/v1/chat/completions",
        authority=b"api.openai.com",
        headers=((b"authorization", f"Bearer {key}".encode()),),
        content=json.dumps(body or {"model": "gpt-4o-mini", "messages": []}).encode(),
    )
    return tflow.tflow(req=req)


async def test_requests_get_503_with_retry_after_while_nothing_can_be_recorded(gateway):
    gw, key, _ = gateway
    gw.runtime.writer.keeper.accepting = False  # what the keeper sets when spool and db fail
    flow = _flow(key)
    await gw.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 503
    assert flow.response.headers["x-tollkeeper-error"] == "not_recording"
    assert flow.response.headers["retry-after"] == "5"
    assert json.loads(flow.response.content)["error"]["type"] == "server_error"
    assert REAL not in flow.request.headers.get("authorization", "")

    gw.runtime.writer.keeper.accepting = True  # recording works again
    flow = _flow(key)
    await gw.requestheaders(flow)
    assert flow.response is None  # forwarded


async def test_a_stream_open_at_shutdown_is_recorded_with_the_usage_it_carried(gateway):
    gw, key, url = gateway
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    flow = _flow(key, {**body, "stream": True})
    await gw.requestheaders(flow)
    await gw.request(flow)
    flow.response = tutils.tresp(
        headers=http.Headers(((b"content-type", b"text/event-stream"),)), content=b""
    )
    gw.responseheaders(flow)
    assert callable(flow.response.stream)
    usage = {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290}
    events = payloads.chat_stream("gpt-4o-mini-2024-07-18", "Hello there", usage, True)
    for event in events[:-1]:  # all but [DONE]: the gateway stops mid-stream
        flow.response.stream(event.data)
    gw.done()
    engine = open_store(url)
    try:
        with Session(engine) as s:
            (row,) = s.exec(select(UsageRecord)).all()
    finally:
        engine.dispose()
    assert row.error_kind == "gateway_shutdown"
    assert (row.input_tokens, row.output_tokens) == (1234, 56)  # not a prompt estimate
