"""When no usage record can be kept, the gateway stops forwarding (a provider-shaped 503)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow, tutils
from sqlmodel import Session

from addon.hooks import Gateway
from addon.store import keys_repo, realkeys_repo
from addon.store.db import open_store
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
    gw = Gateway()
    with taddons.context(gw) as tctx:
        tctx.configure(
            gw, tollkeeper_db=url, tollkeeper_home=str(tk_home), tollkeeper_probe_upstream=False
        )
        gw.running()
        yield gw, full
        gw.done()


def _flow(key: str) -> tflow.HTTPFlow:
    req = tutils.treq(
        host="api.openai.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=b"/v1/chat/completions",
        authority=b"api.openai.com",
        headers=((b"authorization", f"Bearer {key}".encode()),),
        content=json.dumps({"model": "gpt-4o-mini", "messages": []}).encode(),
    )
    return tflow.tflow(req=req)


async def test_requests_get_503_with_retry_after_while_nothing_can_be_recorded(gateway):
    gw, key = gateway
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
