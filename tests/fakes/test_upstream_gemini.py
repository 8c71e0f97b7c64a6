"""The fake upstream's Gemini endpoints, checked with raw HTTP, with the gateway's own meter and
with the official google-genai SDK (when installed) pointed at it."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import payloads
from fakes.gemini_payloads import running_usage
from fakes.upstream import FakeUpstream, Headers, request_key
from fakes.wire import post, raw_exchange

from addon.metering.usage import Usage
from addon.providers import wire
from addon.providers.wire import parse_response

MODEL = "gemini-2.5-flash"
BASE = f"/v1beta/models/{MODEL}"
GENERATE = BASE + ":generateContent"
STREAM = BASE + ":streamGenerateContent"
SSE = STREAM + "?alt=sse"
COUNT = BASE + ":countTokens"
PAYLOAD_15 = Usage(2100, 2048, 0, 0, 300, 260)  # payloads.GEMINI_USAGE, normalised
GOOGLE_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_HTTP_CLIENT",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
)


def gemini_body(text: str = "hi") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def key(value: str = "gk-test") -> str:
    return f"x-goog-api-key: {value}\r\n"


def stream_objects(chunks: list[tuple[float, bytes]], sse: bool) -> list[Any]:
    raw = b"".join(chunk for _, chunk in chunks)
    if sse:
        return [json.loads(block[6:]) for block in raw.split(b"\r\n\r\n") if block]
    decoded: list[Any] = json.loads(raw)
    return decoded


def meter(chunks: list[tuple[float, bytes]], content_type: str) -> Any:
    """What the gateway's stream meter makes of a response, fed chunk by chunk as it came."""
    stream_meter = wire.stream_meter("gemini.stream", content_type=content_type)
    for _, chunk in chunks:
        assert stream_meter.feed(chunk) is chunk
    stream_meter.feed(b"")
    return stream_meter.result()


# --- raw HTTP: wire format ---------------------------------------------------------------------


def test_generate_content_echoes_the_path_model_with_payload_15_usage(up: FakeUpstream) -> None:
    response, data = post(up, GENERATE, gemini_body(), {"x-goog-api-key": "gk-test"})
    doc = json.loads(data)
    assert response.status == 200
    assert response.getheader("content-type") == "application/json; charset=UTF-8"
    assert response.getheader("x-request-id") is None  # Google sends none; the body has an id
    assert doc["modelVersion"] == MODEL and doc["responseId"]
    assert doc["usageMetadata"] == payloads.GEMINI_USAGE
    [candidate] = doc["candidates"]
    assert candidate["content"] == {"parts": [{"text": payloads.REPLY_TEXT}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert data.startswith(b'{\n  "candidates"')  # Google indents its JSON
    result = parse_response("gemini.generate", data)
    assert (result.usage, result.model, result.error_kind) == (PAYLOAD_15, MODEL, None)


def test_response_models_and_any_api_version(up: FakeUpstream) -> None:
    up.response_models["gemini-2.5-pro"] = "gemini-2.5-pro-preview-06-05"
    doc = json.loads(post(up, "/v1/models/gemini-2.5-pro:generateContent", gemini_body())[1])
    assert doc["modelVersion"] == "gemini-2.5-pro-preview-06-05"


def test_the_key_is_read_from_the_header_or_the_query_and_where_is_recorded(
    up: FakeUpstream,
) -> None:
    post(up, GENERATE, gemini_body(), {"x-goog-api-key": "gk-header"})
    post(up, GENERATE + "?key=gk-query", gemini_body())
    post(up, GENERATE + "?key=gk-query", gemini_body(), {"x-goog-api-key": "gk-header"})
    post(up, GENERATE, gemini_body())
    assert [r.key_from for r in up.requests] == ["x-goog-api-key", "?key", "x-goog-api-key", None]
    headers = Headers([("X-Goog-Api-Key", "gk-h")])
    assert request_key(headers, "/m:generateContent?alt=sse&key=gk-q", "gemini") == (
        "gk-h",
        "x-goog-api-key",
    )
    assert request_key(Headers([]), "/x?alt=sse&key=gk-q", "gemini") == ("gk-q", "?key")
    assert request_key(Headers([("x-api-key", "a")]), "/x", "anthropic") == ("a", "x-api-key")


def test_sse_stream_is_crlf_separated_data_blocks_with_running_usage(up: FakeUpstream) -> None:
    status, headers, chunks, done = raw_exchange(up, SSE, gemini_body(), key())
    assert status == "HTTP/1.1 200 OK" and done
    assert headers["content-type"] == "text/event-stream"
    assert all(c.startswith(b"data: {") and c.endswith(b"\r\n\r\n") for _, c in chunks)
    assert all(c.count(b"\r\n\r\n") == 1 and b"event:" not in c for _, c in chunks)
    objects = stream_objects(chunks, sse=True)
    totals = [o["usageMetadata"]["totalTokenCount"] for o in objects]
    assert totals == sorted(totals) and len(set(totals)) == len(totals) > 1
    assert objects[-1]["usageMetadata"] == payloads.GEMINI_USAGE
    assert [o["candidates"][0].get("finishReason") for o in objects][-2:] == [None, "STOP"]
    assert "".join(o["candidates"][0]["content"]["parts"][0]["text"] for o in objects) == (
        payloads.REPLY_TEXT
    )
    assert {o["responseId"] for o in objects} == {objects[0]["responseId"]}
    result = meter(chunks, headers["content-type"])
    assert (result.usage, result.model, result.output_text) == (
        PAYLOAD_15,
        MODEL,
        payloads.REPLY_TEXT,
    )


def test_without_alt_sse_the_stream_is_a_json_array_one_element_per_chunk(
    up: FakeUpstream,
) -> None:
    status, headers, chunks, done = raw_exchange(up, STREAM + "?key=gk-q", gemini_body())
    assert status == "HTTP/1.1 200 OK" and done
    assert headers["content-type"] == "application/json; charset=UTF-8"
    bodies = [chunk for _, chunk in chunks]
    assert bodies[0].startswith(b"[{\n") and bodies[-1] == b"\n]"
    assert all(b.startswith(b"\n,\r\n{\n") for b in bodies[1:-1])
    objects = stream_objects(chunks, sse=False)
    assert len(objects) == len(bodies) - 1
    assert objects[-1]["usageMetadata"] == payloads.GEMINI_USAGE
    result = meter(chunks, headers["content-type"])
    assert (result.usage, result.output_text) == (PAYLOAD_15, payloads.REPLY_TEXT)


def test_running_usage_keeps_everything_but_the_candidates_and_ends_exactly() -> None:
    usage = payloads.GEMINI_USAGE
    first = running_usage(usage, 1, 4)
    assert first["candidatesTokenCount"] == 10 and first["totalTokenCount"] == 2370
    assert first["thoughtsTokenCount"] == 260 and first["cachedContentTokenCount"] == 2048
    assert running_usage(usage, 4, 4) == usage


def test_count_tokens(up: FakeUpstream) -> None:
    data = post(up, COUNT, gemini_body())[1]
    assert json.loads(data) == payloads.GEMINI_COUNT_TOKENS
    nested = {"generateContentRequest": {"model": f"models/{MODEL}", **gemini_body()}}
    assert json.loads(post(up, COUNT, nested)[1]) == payloads.GEMINI_COUNT_TOKENS
    assert parse_response("gemini.count_tokens", data).extras == {"counted_input_tokens": 2100}


def test_usage_is_configurable_per_server_and_per_request(up: FakeUpstream) -> None:
    up.usage["gemini"] = {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    doc = json.loads(post(up, GENERATE, gemini_body())[1])
    assert doc["usageMetadata"]["totalTokenCount"] == 7
    header = json.dumps({"gemini_count_tokens": {"totalTokens": 5}})
    assert json.loads(post(up, COUNT, gemini_body(), {"x-fake-usage": header})[1]) == {
        "totalTokens": 5
    }
    assert payloads.GEMINI_USAGE["totalTokenCount"] == 2400  # defaults are not mutated


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", GENERATE, b"{not json", 400, "INVALID_ARGUMENT"),
        ("POST", GENERATE, {"generationConfig": {}}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1beta/models/m:embedStuff", gemini_body(), 404, "NOT_FOUND"),
        ("GET", GENERATE, None, 404, "NOT_FOUND"),
    ],
)
def test_bad_requests_get_google_shaped_errors(
    up: FakeUpstream, method: str, path: str, body: Any, status: int, kind: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, data, {"x-goog-api-key": "gk-test"})
        response = conn.getresponse()
        error = json.loads(response.read())["error"]
    finally:
        conn.close()
    assert response.status == status
    assert (error["code"], error["status"]) == (status, kind)
    assert "details" not in error  # only the bad-key answer carries ErrorInfo


def test_models_are_listed(up: FakeUpstream) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    try:
        conn.request("GET", "/v1beta/models", headers={"x-goog-api-key": "gk-test"})
        models = json.loads(conn.getresponse().read())["models"]
    finally:
        conn.close()
    assert f"models/{MODEL}" in [m["name"] for m in models]


# --- raw HTTP: keys and scenarios ------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 401])
def test_a_dead_key_gets_google_s_bad_api_key_answer_wherever_it_is(
    up: FakeUpstream, code: int
) -> None:
    up.key_status["gk-dead"] = code
    for path, headers in ((GENERATE, {"x-goog-api-key": "gk-dead"}), (COUNT + "?key=gk-dead", {})):
        response, data = post(up, path, gemini_body(), headers)
        error = json.loads(data)["error"]
        assert response.status == 400
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"] == "API key not valid. Please pass a valid API key."
        assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
        assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert post(up, GENERATE, gemini_body(), {"x-goog-api-key": "gk-alive"})[0].status == 200
    assert parse_response("gemini.generate", data).error_kind == "INVALID_ARGUMENT"


def test_a_rate_limited_key_gets_resource_exhausted_with_retry_info(up: FakeUpstream) -> None:
    up.key_status["gk-busy"] = 429
    response, data = post(up, GENERATE + "?key=gk-busy", gemini_body())
    error = json.loads(data)["error"]
    assert (response.status, error["status"]) == (429, "RESOURCE_EXHAUSTED")
    [retry] = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    assert retry["retryDelay"] == "1s"
    response, data = post(up, GENERATE, gemini_body(), {"x-fake-scenario": "status; code=429; "
                                                        "retry_after=7"})  # fmt: skip
    assert json.loads(data)["error"]["details"][-1]["retryDelay"] == "7s"


def test_errors_on_an_array_stream_are_a_one_element_array(up: FakeUpstream) -> None:
    scenario = {"x-fake-scenario": "status; code=503"}
    response, data = post(up, STREAM, gemini_body(), scenario)
    [wrapped] = json.loads(data)
    assert (response.status, wrapped["error"]["status"]) == (503, "UNAVAILABLE")
    assert parse_response("gemini.stream", data).error_kind == "UNAVAILABLE"
    assert isinstance(json.loads(post(up, SSE, gemini_body(), scenario)[1]), dict)


@pytest.mark.parametrize(
    ("path", "sse"), [(SSE, True), (STREAM, False)], ids=["sse", "array"]
)  # fmt: skip
def test_midstream_error_follows_two_content_chunks(up: FakeUpstream, path: str, sse: bool) -> None:
    status, headers, chunks, done = raw_exchange(
        up, path, gemini_body(), "x-fake-scenario: midstream_error\r\n"
    )
    assert status.endswith("200 OK") and done and len(chunks) == 3
    last = chunks[-1][1]
    if sse:  # raw multi-line JSON, not a data: line
        assert last.startswith(b'{\n  "error": {\n') and last.endswith(b"}\n")
    else:
        assert last.startswith(b'\n,\r\n{\n  "error"') and last.endswith(b"\n]")
        assert json.loads(b"".join(c for _, c in chunks))[-1]["error"]["status"] == "INTERNAL"
    result = meter(chunks, headers["content-type"])
    assert result.error_kind == "stream_error:INTERNAL"
    assert result.usage is not None and result.usage.input_tokens == 2100


@pytest.mark.parametrize("path", [SSE, STREAM])
def test_cut_closes_the_stream_early(up: FakeUpstream, path: str) -> None:
    _, headers, chunks, done = raw_exchange(up, path, gemini_body(), "x-fake-scenario: cut; "
                                            "events=2\r\n")  # fmt: skip
    assert not done and len(chunks) == 2
    result = meter(chunks, headers["content-type"])
    assert result.usage is not None and result.usage.output_tokens < PAYLOAD_15.output_tokens


def test_slow_nonjson_and_truncated(up: FakeUpstream) -> None:
    start = time.monotonic()
    response, _ = post(up, GENERATE, gemini_body(), {"x-fake-scenario": "slow; seconds=0.3"})
    assert response.status == 200 and time.monotonic() - start >= 0.3
    response, data = post(up, GENERATE, gemini_body(), {"x-fake-scenario": "nonjson"})
    assert response.getheader("content-type", "").startswith("text/html")
    assert parse_response("gemini.generate", data).error_kind == "bad_json"
    with pytest.raises(http.client.IncompleteRead):
        post(up, GENERATE, gemini_body(), {"x-fake-scenario": "truncated"})


def test_gzip_json_and_streams(up: FakeUpstream) -> None:
    scenario = {"x-fake-scenario": "gzip", "accept-encoding": "gzip"}
    response, data = post(up, GENERATE, gemini_body(), scenario)
    assert response.getheader("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(data))["usageMetadata"] == payloads.GEMINI_USAGE
    for path in (SSE, STREAM):
        _, headers, chunks, done = raw_exchange(
            up, path, gemini_body(), "x-fake-scenario: gzip\r\naccept-encoding: gzip\r\n"
        )
        unpacker = zlib.decompressobj(wbits=31)
        plain = b"".join(unpacker.decompress(chunk) for _, chunk in chunks)
        assert done and headers["content-encoding"] == "gzip"
        assert stream_objects([(0.0, plain)], sse=path == SSE)[-1]["modelVersion"] == MODEL
        stream_meter = wire.stream_meter(
            "gemini.stream", content_type=headers["content-type"], content_encoding="gzip"
        )
        for _, chunk in chunks:
            stream_meter.feed(chunk)
        stream_meter.feed(b"")
        assert stream_meter.result().usage == PAYLOAD_15


def test_array_elements_arrive_incrementally(up: FakeUpstream) -> None:
    up.event_delay = 0.15
    _, _, chunks, done = raw_exchange(up, STREAM, gemini_body())
    assert done and len(chunks) == 6  # 5 words, then the closing bracket: 5 gaps
    assert chunks[-1][0] - chunks[0][0] >= 0.7


def test_large_stream_still_ends_with_the_usage(up: FakeUpstream) -> None:
    _, headers, chunks, done = raw_exchange(
        up, STREAM, gemini_body(), "x-fake-scenario: large; size=200000\r\n"
    )
    assert done and sum(len(c) for _, c in chunks) > 200_000
    assert meter(chunks, headers["content-type"]).usage == PAYLOAD_15


# --- the official google-genai SDK -------------------------------------------------------------


@pytest.fixture
def genai_client(up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    genai = pytest.importorskip("google.genai")
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)
    options = genai.types.HttpOptions(base_url=up.base_url, api_version="v1beta", timeout=10_000)
    client = genai.Client(api_key="gk-test", http_options=options)
    yield client
    client.close()


def test_sdk_generate_content(genai_client: Any, up: FakeUpstream) -> None:
    response = genai_client.models.generate_content(model=MODEL, contents="hi")
    assert response.text == payloads.REPLY_TEXT
    assert response.model_version == MODEL and response.response_id
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (2100, 40)
    assert (usage.thoughts_token_count, usage.cached_content_token_count) == (260, 2048)
    assert usage.total_token_count == 2400
    [request] = up.requests
    assert request.path == GENERATE and request.key_from == "x-goog-api-key"
    assert request.headers["x-goog-api-key"] == "gk-test"
    assert request.json()["contents"] == [{"parts": [{"text": "hi"}], "role": "user"}]


def test_sdk_stream_uses_sse_and_reads_the_running_usage(
    genai_client: Any, up: FakeUpstream
) -> None:
    chunks = list(genai_client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert up.requests[0].path == SSE
    assert "".join(chunk.text for chunk in chunks) == payloads.REPLY_TEXT
    assert chunks[-1].usage_metadata.total_token_count == 2400
    assert chunks[0].usage_metadata.total_token_count < 2400


def test_sdk_count_tokens(genai_client: Any) -> None:
    counted = genai_client.models.count_tokens(model=MODEL, contents="hi")
    assert counted.total_tokens == payloads.GEMINI_COUNT_TOKENS["totalTokens"]


@pytest.mark.parametrize(
    ("code", "error", "status"),
    [(401, "ClientError", "INVALID_ARGUMENT"), (429, "ClientError", "RESOURCE_EXHAUSTED"),
     (500, "ServerError", "INTERNAL"), (503, "ServerError", "UNAVAILABLE")],
)  # fmt: skip
def test_sdk_errors(
    genai_client: Any, up: FakeUpstream, code: int, error: str, status: str
) -> None:
    errors = pytest.importorskip("google.genai.errors")
    up.key_status["gk-test"] = code
    with pytest.raises(getattr(errors, error)) as caught:
        genai_client.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.status == status
    assert caught.value.code == (400 if code == 401 else code)


def test_sdk_raises_on_a_midstream_error(genai_client: Any, up: FakeUpstream) -> None:
    errors = pytest.importorskip("google.genai.errors")
    up.set_scenario("midstream_error")
    received = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in genai_client.models.generate_content_stream(model=MODEL, contents="hi"):
            received.append(chunk)
    assert caught.value.status == "INTERNAL" and len(received) == 2


def test_sdk_default_api_version_and_gzip(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    genai = pytest.importorskip("google.genai")
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)
    up.set_scenario("gzip")
    client = genai.Client(api_key="gk-test", http_options={"base_url": up.base_url})
    try:
        response = client.models.generate_content(model=MODEL, contents="hi")
    finally:
        client.close()
    assert response.usage_metadata.total_token_count == 2400
    assert up.requests[0].path.startswith("/v1")
    assert "gzip" in up.requests[0].headers["accept-encoding"]


async def test_sdk_async_stream(up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    genai = pytest.importorskip("google.genai")
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)
    options = genai.types.HttpOptions(base_url=up.base_url, api_version="v1beta")
    client = genai.Client(api_key="gk-test", http_options=options)
    try:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
        chunks = [chunk async for chunk in stream]
    finally:
        await client.aio.aclose()
        client.close()
    assert chunks[-1].usage_metadata.thoughts_token_count == 260
    assert "".join(chunk.text for chunk in chunks) == payloads.REPLY_TEXT


@pytest.mark.parametrize("path", [SSE + "&key=gk-q", STREAM + "?key=gk-q"])
def test_streams_take_the_wire_parameters_like_every_provider(up: FakeUpstream, path: str) -> None:
    """``split`` and ``framing=close`` reach Gemini's streams too (the wire tests rely on it)."""
    status, _, cut, done = raw_exchange(up, path, gemini_body(), "x-fake-scenario: ok; split=7\r\n")
    assert status == "HTTP/1.1 200 OK" and done
    assert b"".join(chunk for _, chunk in cut) == up.sent_bodies[-1]
    assert len(cut) > 100 and {len(chunk) for _, chunk in cut[:-1]} == {7}
    body = json.dumps(gemini_body()).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"x-fake-scenario: ok; framing=close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        data = b"".join(iter(lambda: sock.recv(65536), b""))  # ends when the server closes
    head_part, _, payload = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head_part.lower()
    assert b"content-length" not in head_part.lower()
    assert payload == up.sent_bodies[-1] and payload.endswith((b"\r\n\r\n", b"]"))
