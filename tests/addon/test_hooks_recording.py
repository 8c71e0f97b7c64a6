"""Hooks and usage records: no forwarding while nothing can be recorded (a provider-shaped
503), and what a shutdown records for a flow still open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import payloads
from hookchain import Driven
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from sqlmodel import Session, select

from addon.store import keys_repo, realkeys_repo
from addon.store.db import open_store
from addon.store.models import UsageRecord
from addon.vault import Vault, load_master_key

REAL = "sk-proj-unit-REAL-000000000000000000000000001"


@pytest.fixture
def gateway(tmp_path: Path, tk_home: Path):
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    engine = open_store(url)
    with Session(engine) as s:
        _, full = keys_repo.create_key(
            session=s, project="unit", policy=keys_repo.KeyPolicy(), actor="t"
        )
        realkeys_repo.add_real_key(
            session=s,
            vault=Vault(load_master_key(tk_home / "master.key")),
            provider="openai",
            label="main",
            secret=REAL,
            env_ref=None,
            base_url="http://127.0.0.1:9/v1",
            actor="t",
        )
    engine.dispose()
    gw = Driven()
    with taddons.context(gw.gateway) as tctx:
        tctx.configure(
            gw.gateway,
            tollkeeper_db=url,
            tollkeeper_home=str(tk_home),
            tollkeeper_probe_upstream=False,
        )
        gw.running()
        yield gw, full, url
        gw.done()


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
