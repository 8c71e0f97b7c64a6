"""Drive the gateway's addons the way mitmproxy does: each hook through the whole chain.

``Driven`` wraps an ``addon.hooks.Gateway`` registered with ``mitmproxy.test.taddons``
(``taddons.context(gw.gateway)``); ``await gw.requestheaders(flow)`` then runs every
addon's ``requestheaders`` in order, as mitmproxy's addon manager would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mitmproxy import ctx, hooks, http
from mitmproxy.proxy.layers.http import (
    HttpErrorHook,
    HttpRequestHeadersHook,
    HttpRequestHook,
    HttpResponseHeadersHook,
    HttpResponseHook,
)
from mitmproxy.test import taddons, tflow, tutils
from sqlmodel import Session

from addon.flowstate import FlowState
from addon.hooks import Gateway
from addon.runtime import Runtime
from addon.store import keys_repo, realkeys_repo
from addon.store.db import open_store
from addon.vault import Vault, load_master_key

REAL = "sk-proj-unit-REAL-000000000000000000000000001"  # the real key ``seed`` stores
OPENAI_ONLY = (("openai", "http://127.0.0.1:9/v1"),)


def seed(
    db: Path,
    home: Path,
    *,
    project: str = "unit",
    secret: str = REAL,
    upstreams: tuple[tuple[str, str], ...] = OPENAI_ONLY,
) -> str:
    """A SQLite store at ``db`` with one virtual key of ``project`` and, per (provider,
    base URL), a real key ``main`` holding ``secret``; the virtual key's full secret."""
    engine = open_store(f"sqlite:///{db}")
    vault = Vault(load_master_key(home / "master.key"))
    with Session(engine) as s:
        _, key = keys_repo.create_key(
            session=s, project=project, policy=keys_repo.KeyPolicy(), actor="t"
        )
        for provider, base_url in upstreams:
            realkeys_repo.add_real_key(
                session=s,
                vault=vault,
                provider=provider,
                label="main",
                secret=secret,
                env_ref=None,
                base_url=base_url,
                actor="t",
            )
    engine.dispose()
    return key


@contextmanager
def running(db: Path, home: Path, **options: Any) -> Iterator[tuple[Driven, Any]]:
    """A gateway on the store at ``db``, configured (probes off, plus ``options``) and
    running in a test master; ``done`` when the block ends."""
    gw = Driven()
    with taddons.context(gw.gateway) as tctx:
        tctx.configure(
            gw.gateway,
            tollkeeper_db=f"sqlite:///{db}",
            tollkeeper_home=str(home),
            tollkeeper_probe_upstream=False,
            **options,
        )
        gw.running()
        yield gw, tctx
        gw.done()


def chat_flow(key: str, body: dict[str, Any] | None = None) -> tflow.HTTPFlow:
    """A client's chat completion request to api.openai.com with a virtual key."""
    req = tutils.treq(
        host="api.openai.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=b"/v1/chat/completions",
        authority=b"api.openai.com",
        headers=(
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
        ),
        content=json.dumps(body or {"model": "gpt-4o-mini", "messages": []}).encode(),
    )
    return tflow.tflow(req=req)


def answer(
    flow: http.HTTPFlow,
    body: bytes | dict[str, Any] = b"",
    *,
    status: int = 200,
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),),
) -> http.Response:
    """The upstream's answer on the flow (as mitmproxy has it at ``responseheaders``)."""
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    if content and not any(name == b"content-length" for name, _ in headers):
        headers = (*headers, (b"content-length", str(len(content)).encode()))
    flow.response = tutils.tresp(status_code=status, headers=http.Headers(headers), content=content)
    return flow.response


USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
CHAT = {"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini", "usage": USAGE}


class Driven:
    def __init__(self, gateway: Gateway | None = None) -> None:
        self.gateway = gateway or Gateway()

    @property
    def runtime(self) -> Runtime | None:
        return self.gateway.runtime

    @property
    def states(self) -> dict[str, FlowState]:
        """The per-flow table by flow id (a copy)."""
        return {s.flow.id: s for s in self.gateway.flows}

    async def _async(self, hook: hooks.Hook) -> None:
        await ctx.master.addons.invoke_addon(self.gateway, hook)

    def _sync(self, hook: hooks.Hook) -> None:
        ctx.master.addons.invoke_addon_sync(self.gateway, hook)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        await self._async(HttpRequestHeadersHook(flow))

    async def request(self, flow: http.HTTPFlow) -> None:
        await self._async(HttpRequestHook(flow))

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._sync(HttpResponseHeadersHook(flow))

    def response(self, flow: http.HTTPFlow) -> None:
        self._sync(HttpResponseHook(flow))

    def error(self, flow: http.HTTPFlow) -> None:
        self._sync(HttpErrorHook(flow))

    def running(self) -> None:
        self._sync(hooks.RunningHook())

    def done(self) -> None:
        self._sync(hooks.DoneHook())
