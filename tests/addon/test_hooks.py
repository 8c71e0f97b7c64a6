"""The gateway's hooks called directly with mitmproxy's test helpers (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hookchain import REAL, chat_flow, running, seed
from mitmproxy import flow
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import tflow, tutils
from sqlmodel import Session

from addon.pricing.cost import format_usd
from addon.records import finish
from addon.store import realkeys_repo
from addon.store.db import open_store
from addon.vault import Vault, load_master_key


@pytest.fixture
def seeded(tmp_path: Path, tk_home: Path) -> tuple[Path, str]:
    return tmp_path / "gw.db", seed(tmp_path / "gw.db", tk_home)


def _on_the_wire(f: tflow.HTTPFlow) -> bytes:
    """The request head as mitmproxy's HTTP/1 client layer serialises it."""
    return _http1.http1.assemble_request_head(f.request)


@pytest.fixture
def gateway(seeded, tk_home):
    with running(seeded[0], tk_home, tollkeeper_admin="off") as (gw, _):
        yield gw


async def test_valid_key_is_swapped_for_a_placeholder_and_rerouted(gateway, seeded):
    f = chat_flow(seeded[1])
    await gateway.requestheaders(f)
    assert f.response is None
    assert f.request.headers["authorization"].startswith("Bearer [tollkeeper:redacted]")
    assert REAL not in str(f.request.headers)
    assert (f.request.scheme, f.request.host, f.request.port) == ("http", "127.0.0.1", 9)
    assert f"authorization: Bearer {REAL}\r\n".encode() in _on_the_wire(f)
    assert REAL.encode() not in http1.assemble_request_head(f.request)  # e.g. mitmweb export
    assert REAL not in str(f.request.headers)  # the flow itself never holds it
    f.response = tutils.tresp()
    gateway.responseheaders(f)
    assert REAL.encode() not in _on_the_wire(f)  # the placeholder is inert once answered


async def test_unknown_key_is_rejected_with_a_provider_shaped_401(gateway):
    f = chat_flow("tk-abcdefghij-" + "1" * 40)
    await gateway.requestheaders(f)
    assert f.response.status_code == 401
    assert f.response.headers["x-tollkeeper-error"] == "invalid_key"
    assert json.loads(f.response.content)["error"]["code"] == "invalid_api_key"
    assert f.marked


async def test_a_fault_while_admitting_fails_closed(gateway, seeded, monkeypatch):
    def boom(**_: object) -> str:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(gateway.runtime.vault, "resolve", boom)
    f = chat_flow(seeded[1])
    await gateway.requestheaders(f)
    assert f.response.status_code == 500
    assert f.response.headers["x-tollkeeper-error"] == "gateway_error"
    assert (
        "authorization" not in f.request.headers or REAL not in f.request.headers["authorization"]
    )
    assert REAL.encode() not in _on_the_wire(f)  # a rejected flow never gets the real key
    assert REAL not in str(f.request.headers)


async def test_a_fault_while_reading_the_body_fails_closed(gateway, seeded, monkeypatch):
    f = chat_flow(seeded[1])
    await gateway.requestheaders(f)
    monkeypatch.setattr(
        "addon.hooks.admit.auth.check_model", lambda *a: (_ for _ in ()).throw(RuntimeError("x"))
    )
    await gateway.request(f)
    assert f.response.status_code == 500
    assert REAL.encode() not in _on_the_wire(f)  # disarmed before answering


async def test_stream_request_gets_include_usage_injected(gateway, seeded):
    f = chat_flow(seeded[1], {"model": "gpt-4o-mini", "messages": [], "stream": True})
    await gateway.requestheaders(f)
    await gateway.request(f)
    assert json.loads(f.request.content)["stream_options"] == {"include_usage": True}
    assert gateway.states[f.id].injected_usage


async def test_gemini_query_key_leaves_the_url_and_the_real_key_goes_in_a_header(
    gateway, seeded, tk_home
):
    from sqlmodel import Session

    from addon.store.db import open_store

    engine = open_store(f"sqlite:///{seeded[0]}")
    vault = Vault(load_master_key(tk_home / "master.key"))
    with Session(engine) as s:
        realkeys_repo.add_real_key(
            session=s,
            vault=vault,
            provider="gemini",
            label="g",
            secret="AIza-unit-REAL-0001",
            env_ref=None,
            base_url="http://127.0.0.1:9",
            actor="t",
        )
    engine.dispose()
    gateway.runtime.cache.refresh(force=True)
    req = tutils.treq(
        host="generativelanguage.googleapis.com",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=f"/v1beta/models/gemini-2.5-flash:generateContent?key={seeded[1]}&x=1".encode(),
        authority=b"generativelanguage.googleapis.com",
        headers=(),
        content=b"{}",
    )
    f = tflow.tflow(req=req)
    await gateway.requestheaders(f)
    assert f.response is None
    assert seeded[1] not in f.request.url and dict(f.request.query) == {"x": "1"}
    assert f.request.headers["x-goog-api-key"].startswith("[tollkeeper:redacted]")
    assert b"x-goog-api-key: AIza-unit-REAL-0001\r\n" in _on_the_wire(f)


async def test_a_virtual_key_in_the_query_never_goes_upstream_for_any_provider(gateway, seeded):
    f = chat_flow(seeded[1])
    f.request.path = f"/v1/chat/completions?key={seeded[1]}&api_key=x&x=1"
    f.request.headers["x-echo-me"] = seeded[1]
    await gateway.requestheaders(f)
    assert f.response is None
    assert dict(f.request.query) == {"x": "1"}
    wire = _on_the_wire(f)
    assert seeded[1].encode() not in wire and b"x-echo-me" not in wire


def _add_real(db: Path, home: Path, provider: str, label: str, secret: str, base_url: str):
    engine = open_store(f"sqlite:///{db}")
    vault = Vault(load_master_key(home / "master.key"))
    with Session(engine) as s:
        realkeys_repo.add_real_key(
            session=s,
            vault=vault,
            provider=provider,
            label=label,
            secret=secret,
            env_ref=None,
            base_url=base_url,
            actor="t",
        )
    engine.dispose()


def _azure_flow(key: str, url: str) -> tflow.HTTPFlow:
    f = chat_flow(key)
    f.request.url = url
    f.request.headers["api-key"] = key
    del f.request.headers["authorization"]
    return f


async def test_a_pool_of_two_azure_resources_sends_each_its_own_key(gateway, seeded, tk_home):
    _add_real(
        seeded[0], tk_home, "azure", "a", "azure-REAL-A-0001", "https://resa.openai.azure.com"
    )
    _add_real(
        seeded[0], tk_home, "azure", "b", "azure-REAL-B-0001", "https://resb.openai.azure.com"
    )
    gateway.runtime.cache.refresh(force=True)
    path = "/openai/deployments/d/chat/completions?api-version=2024-10-21"
    b, a = ("resb", b"azure-REAL-B-0001"), ("resa", b"azure-REAL-A-0001")
    for resource, secret in (b, b, a, a, b):  # not the pool's round-robin order
        # plain HTTP and another port as the client asked: the key goes to its base URL only
        f = _azure_flow(seeded[1], f"http://{resource}.openai.azure.com:8080{path}")
        await gateway.requestheaders(f)
        assert f.response is None
        assert (f.request.scheme, f.request.host, f.request.port) == (
            "https",
            f"{resource}.openai.azure.com",
            443,
        )
        assert b"api-key: " + secret + b"\r\n" in _on_the_wire(f)


async def test_an_azure_request_for_another_resource_is_refused(gateway, seeded, tk_home):
    _add_real(
        seeded[0], tk_home, "azure", "a", "azure-REAL-A-0001", "https://resa.openai.azure.com"
    )
    gateway.runtime.cache.refresh(force=True)
    f = _azure_flow(seeded[1], "https://evil.openai.azure.com/openai/v1/chat/completions")
    await gateway.requestheaders(f)
    assert f.response.status_code == 403
    assert f.response.headers["x-tollkeeper-error"] == "not_allowed"
    assert b"azure-REAL-A-0001" not in _on_the_wire(f)


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
STREAM = [
    _sse({**CHUNK, "choices": [{"index": 0, "delta": {"content": "Hi"}}], "usage": None}),
    _sse({**CHUNK, "choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


async def _streamed_until_client_left(gateway, key: str, events: list[bytes]) -> list:
    """A stream request whose client goes away after ``events``; the drafts it submitted."""
    drafts: list = []
    gateway.runtime.writer.submit = drafts.append
    f = chat_flow(key, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    await gateway.requestheaders(f)
    await gateway.request(f)
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gateway.responseheaders(f)
    for event in events:
        f.response.stream(event)
    f.error = flow.Error("Client disconnected.")
    gateway.error(f)
    return [d for d in drafts if hasattr(d, "request_id")]


async def test_a_client_leaving_after_the_end_of_stream_is_a_complete_answer(gateway, seeded):
    (draft,) = await _streamed_until_client_left(gateway, seeded[1], STREAM)
    assert (draft.status_code, draft.error_kind, draft.aborted) == (200, None, False)
    row = finish(draft, gateway.runtime.prices)
    assert (row.input_tokens, row.output_tokens, row.estimated) == (9, 3, False)
    assert row.cost_picousd and row.cost_picousd > 0


async def test_a_stream_is_journaled_at_its_end_event_before_the_client_gets_it(gateway, seeded):
    """A client that has the whole answer has its record, even if the gateway is killed
    before the upstream's last bytes (and mitmproxy's `response` hook) come."""
    journaled: list = []
    gateway.runtime.writer.submit = journaled.append
    f = chat_flow(seeded[1], {"model": "gpt-4o-mini", "messages": [], "stream": True})
    await gateway.requestheaders(f)
    await gateway.request(f)
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gateway.responseheaders(f)
    for event in STREAM[:-1]:
        f.response.stream(event)
    assert [d for d in journaled if hasattr(d, "request_id")] == []
    f.response.stream(STREAM[-1])  # [DONE]: submitted before this chunk is handed back
    (draft,) = [d for d in journaled if hasattr(d, "request_id")]
    assert (draft.status_code, draft.aborted, draft.result.usage.output_tokens) == (200, False, 3)
    f.response.stream(b"")
    gateway.response(f)
    assert [d for d in journaled if hasattr(d, "request_id")] == [draft]  # one record
    assert f.comment.startswith("unit · gpt-4o-mini · 9 in / 3 out · $")


async def test_a_client_leaving_before_the_end_of_stream_is_an_aborted_one(gateway, seeded):
    (draft,) = await _streamed_until_client_left(gateway, seeded[1], STREAM[:2])
    assert (draft.error_kind, draft.aborted) == ("client_disconnected", True)
    assert finish(draft, gateway.runtime.prices).estimated


async def _answered(gateway, key: str, path: str, body: dict, answer: dict) -> tuple:
    """A plain request answered with ``answer``: its flow and the draft it submitted."""
    drafts: list = []
    gateway.runtime.writer.submit = drafts.append
    f = chat_flow(key, body)
    f.request.path = path
    await gateway.requestheaders(f)
    await gateway.request(f)
    content = json.dumps(answer).encode()
    headers = ((b"content-type", b"application/json"), (b"content-length", b"%d" % len(content)))
    f.response = tutils.tresp(headers=headers, content=content)  # known length: buffered
    gateway.responseheaders(f)
    gateway.response(f)
    (draft,) = [d for d in drafts if hasattr(d, "request_id")]
    return f, draft


async def test_the_mitmweb_comment_shows_the_cost_its_record_gets(gateway, seeded):
    answer = {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "usage": USAGE}
    body = {"model": "gpt-4o-mini", "messages": []}
    f, draft = await _answered(gateway, seeded[1], "/v1/chat/completions", body, answer)
    row = finish(draft, gateway.runtime.prices)
    assert row.cost_picousd and row.cost_picousd > 0
    assert f.comment == f"unit · gpt-4o-mini · 9 in / 3 out · ${format_usd(row.cost_picousd)}"


async def test_a_media_flow_is_commented_with_its_media_cost(gateway, seeded):
    """An image generation is priced per image: the comment used to say $0 (token price)."""
    body = {"model": "dall-e-3", "prompt": "cat", "size": "1024x1024", "quality": "hd", "n": 2}
    answer = {"created": 1, "data": [{"url": "https://img.example/0"}, {"url": "u"}]}
    f, draft = await _answered(gateway, seeded[1], "/v1/images/generations", body, answer)
    row = finish(draft, gateway.runtime.prices)
    assert row.cost_picousd and row.cost_picousd > 0
    assert f.comment.endswith(f"· ${format_usd(row.cost_picousd)}")


async def test_an_answer_without_usage_is_commented_as_estimated_later_not_free(gateway, seeded):
    answer = {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
    f, draft = await _answered(gateway, seeded[1], "/v1/chat/completions", body, answer)
    assert f.comment == "unit · gpt-4o-mini · usage: estimated later"
    assert finish(draft, gateway.runtime.prices).estimated


def _attributed_flow(key: str, headers: dict[str, str], body: dict | None = None) -> tflow.HTTPFlow:
    f = chat_flow(key, body)
    for name, value in headers.items():
        f.request.headers.add(name, value)
    return f


async def test_attribution_headers_never_go_upstream_and_the_header_user_wins(gateway, seeded):
    body = {"model": "gpt-4o-mini", "messages": [], "user": "from-body"}
    headers = {"X-Tollkeeper-User": "alice", "x-tollkeeper-tags": "a, b", "X-TOLLKEEPER-TAGS": "c"}
    f = _attributed_flow(seeded[1], headers, body)
    sent = f.request.raw_content
    await gateway.requestheaders(f)
    await gateway.request(f)
    assert f.response is None
    assert not any(name.lower().startswith("x-tollkeeper") for name in f.request.headers)
    state = gateway.states[f.id]
    assert (state.end_user, state.tags) == ("alice", "a,b,c")
    assert f.request.raw_content == sent  # the body's own user field is left alone


async def test_the_body_user_is_the_end_user_when_no_header_names_one(gateway, seeded):
    f = chat_flow(seeded[1], {"model": "gpt-4o-mini", "messages": [], "user": "u-42"})
    await gateway.requestheaders(f)
    await gateway.request(f)
    assert (gateway.states[f.id].end_user, gateway.states[f.id].tags) == ("u-42", "")


@pytest.mark.parametrize(
    "headers",
    [
        {"x-tollkeeper-user": "x" * 129},
        {"x-tollkeeper-user": "bad user"},
        {"x-tollkeeper-tags": ",".join(f"t{i}" for i in range(11))},
        {"x-tollkeeper-tags": 'a,"b"'},
    ],
)
async def test_a_malformed_attribution_header_gets_a_provider_shaped_400(gateway, seeded, headers):
    f = _attributed_flow(seeded[1], headers)
    await gateway.requestheaders(f)
    assert f.response.status_code == 400
    assert f.response.headers["x-tollkeeper-error"] == "invalid_attribution"
    error = json.loads(f.response.content)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_attribution")


async def test_a_stranger_with_bad_attribution_still_gets_the_401(gateway):
    f = _attributed_flow("tk-abcdefghij-" + "1" * 40, {"x-tollkeeper-user": "bad user"})
    await gateway.requestheaders(f)
    assert f.response.status_code == 401
