"""Real-key health as the hooks keep it: what an answer says about the key steers the next
request; a trial request that ends without an answer frees the key for the next one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hookchain import REAL, Driven, running, seed
from mitmproxy import flow as mflow
from mitmproxy.test import tflow, tutils

from addon.pool import Policy, Pool


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def seeded(tmp_path: Path, tk_home: Path) -> tuple[Path, str]:
    return tmp_path / "gw.db", seed(tmp_path / "gw.db", tk_home)


@pytest.fixture
def gateway(seeded: tuple[Path, str], tk_home: Path) -> Iterator[Driven]:
    with running(seeded[0], tk_home) as (gw, _):
        yield gw


def _flow(key: str) -> tflow.HTTPFlow:
    req = tutils.treq(
        host="api.openai.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=b"/v1/chat/completions",
        authority=b"api.openai.com",
        headers=((b"authorization", f"Bearer {key}".encode()),),
        content=json.dumps({"model": "gpt-4o", "messages": []}).encode(),
    )
    return tflow.tflow(req=req)


def _error_body(code: str, message: str) -> bytes:
    err = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return json.dumps({"error": err}).encode()


async def _send(gw: Driven, key: str) -> tflow.HTTPFlow:
    f = _flow(key)
    await gw.requestheaders(f)
    if f.response is None:
        await gw.request(f)
    return f


def _answer(gw: Driven, f: tflow.HTTPFlow, status: int, body: bytes) -> None:
    f.response = tutils.tresp(status_code=status, content=body)
    f.response.headers["content-type"] = "application/json"
    gw.responseheaders(f)
    gw.response(f)


async def test_a_403_model_not_found_leaves_the_key_serving(gateway: Driven, seeded) -> None:
    key = seeded[1]
    f = await _send(gateway, key)
    _answer(gateway, f, 403, _error_body("model_not_found", "Project `p` may not use `gpt-4o`"))
    for _ in range(3):
        assert (await _send(gateway, key)).response is None  # forwarded with the same key


async def test_an_invalid_key_answer_takes_the_key_out_and_the_503_says_why(
    gateway: Driven, seeded
) -> None:
    key = seeded[1]
    f = await _send(gateway, key)
    _answer(gateway, f, 401, _error_body("invalid_api_key", f"Incorrect API key: {REAL[:8]}…"))
    refused = await _send(gateway, key)
    assert refused.response is not None and refused.response.status_code == 503
    message = json.loads(refused.response.content or b"")["error"]["message"]
    assert "rejected by the provider (401 invalid_api_key), next try in 30 s" in message
    assert refused.response.headers["retry-after"] == "30"


async def test_a_trial_that_ends_in_an_error_frees_the_key_for_the_next_request(
    gateway: Driven, seeded
) -> None:
    assert gateway.runtime is not None
    clock = Clock()
    gateway.runtime.pool = Pool(Policy(), clock)
    key = seeded[1]
    f = await _send(gateway, key)
    _answer(gateway, f, 401, _error_body("invalid_api_key", "Incorrect API key provided"))
    clock.now += timedelta(seconds=30)
    trial = await _send(gateway, key)
    assert trial.response is None  # the one trial request
    busy = await _send(gateway, key)
    assert busy.response is not None and busy.response.status_code == 503
    assert "a trial request is in flight" in (busy.response.text or "")
    gateway.response(busy)
    trial.error = mflow.Error("server connection to 127.0.0.1:9 failed")
    gateway.error(trial)  # upstream unreachable: nothing was said about the key
    assert (await _send(gateway, key)).response is None
