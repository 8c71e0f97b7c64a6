"""Hostile clients and upstreams, fuzzed through the gateway's hooks (bounded hypothesis).

For every generated request (credentials bad, doubled, in header and query; huge
headers; invalid JSON; odd paths) and upstream answer (invalid UTF-8, absurd or
non-numeric usage, truncated or gigantic streams, compression bombs), checked:
nothing is forwarded without a valid virtual key, no virtual key goes upstream, every
request ends as exactly one usage record, no cost is negative, no hook raises.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter

import pytest
from hookchain import Driven, running, seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import tflow, tutils

from addon.records import UsageDraft, finish

REAL = "sk-proj-fuzz-REAL-000000000000000000000000001"
EXAMPLES = 300


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("fuzz")
    home = tmp / "home"
    home.mkdir()
    upstreams = (("openai", "http://127.0.0.1:9/v1"), ("gemini", "http://127.0.0.1:9"))
    full = seed(tmp / "gw.db", home, project="fuzz", secret=REAL, upstreams=upstreams)
    with running(tmp / "gw.db", home, tollkeeper_max_decoded_mb=1) as (gw, _):
        drafts: list[UsageDraft] = []
        gw.runtime.writer.submit = lambda item: (  # type: ignore[method-assign]
            drafts.append(item) if isinstance(item, UsageDraft) else None
        )
        yield gw, full, drafts


KEYISH = st.sampled_from(["", "tk-", "tk-abcdefghij-" + "0" * 40, "sk-proj-x", "Bearer", "\x00"])
JUNK = st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
# Any magnitude: counts above 10 M tokens are refused by the meter (the request is then
# estimated), so no record prices past ABSURD_PICOUSD.
USAGE_VALUE = st.one_of(
    st.integers(-(10**15), 10**15),
    st.text(max_size=5),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
)
ABSURD_PICOUSD = 100 * 10**12  # $100 for one fuzzed gpt-4o-mini request


@st.composite
def requests(draw: st.DrawFn) -> dict:
    valid = "VALID"
    places = draw(st.lists(st.sampled_from(["bearer", "x-api-key", "query", "goog"]), max_size=3))
    creds = [draw(st.one_of(st.just(valid), KEYISH, JUNK)) for _ in places]
    if draw(st.booleans()):  # half of them carry the valid key where the provider wants it
        places, creds = ["bearer", *places], [valid, *creds]
    body = draw(
        st.one_of(
            st.just(b'{"model": "gpt-4o-mini", "messages": []}'),
            st.binary(max_size=200),
            st.just(b"[" * 5000 + b"]" * 5000),
            st.just(b'{"model": 5, "stream": "yes"}'),
        )
    )
    return {
        "provider": draw(st.sampled_from(["openai", "gemini"])),
        "path": draw(st.sampled_from(["/v1/chat/completions", "/v1/../../x", "//", "/v1/x?%zz"])),
        "places": places,
        "creds": creds,
        "huge": draw(st.sampled_from([0, 0, 70_000])),
        "body": body,
    }


@st.composite
def answers(draw: st.DrawFn) -> dict:
    usage = {
        "prompt_tokens": draw(USAGE_VALUE),
        "completion_tokens": draw(USAGE_VALUE),
        "total_tokens": draw(USAGE_VALUE),
    }
    kind = draw(st.sampled_from(["json", "utf8", "bomb", "stream", "truncated", "error"]))
    return {
        "kind": kind,
        "usage": usage,
        "chunks": draw(st.lists(st.binary(max_size=300), max_size=6)),
    }


def _build(req: dict, key: str) -> tflow.HTTPFlow:
    host = "api.openai.com" if req["provider"] == "openai" else "generativelanguage.googleapis.com"
    path = req["path"]
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    query = []
    for place, cred in zip(req["places"], req["creds"], strict=True):
        value = key if cred == "VALID" else cred
        if place == "bearer":
            headers.append((b"authorization", f"Bearer {value}".encode("utf-8", "surrogateescape")))
        elif place == "query":
            query.append(f"key={value}")
        else:
            name = b"x-api-key" if place == "x-api-key" else b"x-goog-api-key"
            headers.append((name, value.encode("utf-8", "surrogateescape")))
    if req["huge"]:
        headers.append((b"x-huge", b"a" * req["huge"]))
    if query:
        path += ("&" if "?" in path else "?") + "&".join(query)
    r = tutils.treq(
        host=host,
        port=443,
        scheme=b"https",
        method=b"POST",
        path=path.encode("utf-8", "surrogateescape"),
        authority=host.encode(),
        headers=tuple(headers),
        content=req["body"],
    )
    return tflow.tflow(req=r)


def _answer(ans: dict) -> tuple[object, list[bytes]]:
    usage = json.dumps({"usage": ans["usage"], "model": "gpt-4o-mini"}, default=str).encode()
    kind = ans["kind"]
    if kind == "stream":
        head = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=b"")
        return head, [b"data: " + usage + b"\n\n", *ans["chunks"], b"data: [DONE]\n\n"]
    if kind == "bomb":
        body = gzip.compress(b"\0" * (4 << 20) + REAL.encode())
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
        return tutils.tresp(headers=((b"content-encoding", b"gzip"),), content=body), pieces
    content = {
        "json": usage,
        "utf8": b'{"usage": {"prompt_tokens": 1}, "x": "\xff\xfe"}',
        "truncated": usage[: len(usage) // 2],
        "error": b'{"error": {"message": "' + REAL.encode() + b'"}}',
    }[kind]
    resp = tutils.tresp(status_code=400 if kind == "error" else 200, content=content)
    return resp, []


async def _run(gw: Driven, flow: tflow.HTTPFlow, ans: dict) -> bool:
    """Drive one flow through the hooks; returns whether it was forwarded upstream."""
    await gw.requestheaders(flow)
    if flow.response is None:
        await gw.request(flow)
    if flow.response is not None:  # rejected: answered by the gateway
        gw.responseheaders(flow)
        gw.response(flow)
        return False
    assert b"tk-" not in _http1.http1.assemble_request_head(flow.request).split(b"\r\n", 1)[1]
    flow.response, chunks = _answer(ans)
    gw.responseheaders(flow)
    stream = flow.response.stream
    if callable(stream):  # as mitmproxy does: chunks through the callable, then b""
        flow.response.data.content = None
        sent = b""
        for piece in [*chunks, b""]:
            out = stream(piece)
            assert out != b"" or piece == b"", "an empty chunk would end the body"
            sent += out if isinstance(out, bytes) else b"".join(out)
        assert REAL.encode() not in sent
        if ans["kind"] == "bomb" and sent:
            assert REAL.encode() not in gzip.decompress(sent)
    gw.response(flow)
    return True


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(req=requests(), ans=answers())
def test_hostile_requests_and_answers_never_bypass_the_meter(world, req, ans):
    gw, key, drafts = world
    flow = _build(req, key)
    before = len(drafts)
    forwarded = asyncio.run(_run(gw, flow, ans))
    mine = drafts[before:]
    assert len(mine) == 1, mine  # exactly one usage record per request
    draft = mine[0]
    presented_valid = any(c == "VALID" for c in req["creds"])
    if forwarded:  # only with the valid key, and then as exactly that key
        assert presented_valid and draft.virtual_key_id == key.split("-")[1]
    row = finish(draft, gw.runtime.prices)
    assert row.cost_picousd is None or 0 <= row.cost_picousd < ABSURD_PICOUSD
    assert all(v is None or v >= 0 for v in (row.input_tokens, row.output_tokens))
    assert REAL.encode() not in (flow.response.raw_content or b"")
    assert gw.states.get(flow.id) is None  # nothing left behind


def test_the_fuzz_counts(world):
    """Keeps the figures reported for the fuzz honest: how many flows it drove."""
    _, _, drafts = world
    kinds = Counter(d.error_kind for d in drafts)
    print(f"fuzz: {len(drafts)} requests, outcomes {dict(kinds)}")
    assert len(drafts) >= EXAMPLES
