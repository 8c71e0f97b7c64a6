"""The fake provider upstream, checked with raw HTTP and with the official SDKs pointed at it."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from fakes import payloads
from fakes.upstream import FakeUpstream, api_key, parse_scenario
from fakes.wire import post, raw_exchange, read_response, sse_data

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


@pytest.fixture
def oai(up: FakeUpstream) -> Iterator[openai.OpenAI]:
    base = up.base_url + "/v1"
    with openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def claude(up: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=up.base_url, api_key="sk-ant-test", max_retries=0, timeout=10
    ) as client:
        yield client


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}


def claude_body(**extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "hi"}]
    return {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": messages, **extra}


# --- raw HTTP: wire format, recording, scenarios --------------------------------------------


def test_chat_json_echoes_model_with_default_usage_and_request_id(up: FakeUpstream) -> None:
    response, body = post(up, CHAT, chat_body(model="gpt-4.1-nano"))
    doc = json.loads(body)
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    assert response.getheader("x-request-id", "").startswith("req_")
    assert doc["model"] == "gpt-4.1-nano"
    assert doc["usage"] == payloads.OPENAI_CHAT_USAGE
    assert doc["choices"][0]["message"]["content"] == payloads.REPLY_TEXT


def test_requests_are_recorded_with_case_insensitive_headers(up: FakeUpstream) -> None:
    before = time.time()
    post(up, CHAT + "?trace=1", chat_body(), {"Authorization": "Bearer sk-abc", "X-Two": "2"})
    [request] = up.requests
    assert (request.method, request.path) == ("POST", CHAT + "?trace=1")
    assert request.headers["authorization"] == request.headers["AUTHORIZATION"] == "Bearer sk-abc"
    assert "x-two" in request.headers and "x-three" not in request.headers
    assert request.json() == chat_body()
    assert before <= request.time <= time.time()
    assert request.scenario == "ok"
    up.clear()
    assert up.requests == []


def test_keep_alive_serves_many_requests_on_one_connection(up: FakeUpstream) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("POST", CHAT, json.dumps(chat_body()))
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close
        conn.request("POST", MESSAGES, json.dumps(claude_body(stream=True)))
        streamed = conn.getresponse()
        assert b"message_stop" in streamed.read()
        conn.request("POST", CHAT, json.dumps(chat_body()))
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert len(up.requests) == 5


def test_chunked_request_body_is_read(up: FakeUpstream) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    try:
        parts = iter([b'{"model": "gpt-4o", ', b'"messages": []}'])
        conn.request("POST", CHAT, parts, encode_chunked=True)
        response = conn.getresponse()
        assert json.loads(response.read())["model"] == "gpt-4o"
    finally:
        conn.close()
    assert up.requests[0].json() == {"model": "gpt-4o", "messages": []}


def test_chat_stream_sends_one_event_per_chunk_and_usage_only_when_asked(up: FakeUpstream) -> None:
    status, headers, chunks, done = raw_exchange(up, CHAT, chat_body(stream=True))
    assert status == "HTTP/1.1 200 OK" and done
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"].startswith("text/event-stream")
    assert all(chunk.endswith(b"\n\n") and chunk.count(b"\n\n") == 1 for _, chunk in chunks)
    events = sse_data(chunks)
    assert events[-1] == "[DONE]"
    assert all("usage" not in event for event in events[:-1])

    body = chat_body(stream=True, stream_options={"include_usage": True})
    events = sse_data(raw_exchange(up, CHAT, body)[2])
    *content, usage_chunk, done_marker = events
    assert done_marker == "[DONE]"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == payloads.OPENAI_CHAT_USAGE
    assert all(event["usage"] is None and event["choices"] for event in content)


def test_anthropic_stream_has_the_documented_event_sequence(up: FakeUpstream) -> None:
    _, headers, chunks, done = raw_exchange(up, MESSAGES, claude_body(stream=True))
    names = [chunk.split(b"\n", 1)[0].decode() for _, chunk in chunks]
    assert done and headers["request-id"].startswith("req_")
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-3:] == [
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    assert set(names[3:-3]) == {"event: content_block_delta"}
    events = sse_data(chunks)
    assert events[0]["message"]["usage"] == payloads.ANTHROPIC_STREAM_START_USAGE
    assert events[-2]["usage"] == payloads.ANTHROPIC_STREAM_DELTA_USAGE


def test_responses_stream_carries_usage_only_in_response_completed(up: FakeUpstream) -> None:
    _, _, chunks, done = raw_exchange(up, "/v1/responses", {"model": "gpt-5-mini", "stream": True})
    events = sse_data(chunks)
    assert done and events[0]["type"] == "response.created"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"] == payloads.OPENAI_RESPONSES_USAGE
    assert all(e.get("response", {}).get("usage") is None for e in events[:-1])


def test_usage_is_configurable_per_server_and_per_request(up: FakeUpstream) -> None:
    up.usage["chat"] = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert json.loads(post(up, CHAT, chat_body())[1])["usage"]["total_tokens"] == 7
    header = json.dumps({"chat": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    doc = json.loads(post(up, CHAT, chat_body(), {"x-fake-usage": header})[1])
    assert doc["usage"]["total_tokens"] == 2
    assert payloads.OPENAI_CHAT_USAGE["total_tokens"] == 1240  # defaults are not mutated


def test_response_models_map_the_reported_model(up: FakeUpstream) -> None:
    up.response_models["gpt-4o-mini"] = "gpt-4o-mini-2024-07-18"
    assert json.loads(post(up, CHAT, chat_body())[1])["model"] == "gpt-4o-mini-2024-07-18"


def test_embeddings_and_count_tokens(up: FakeUpstream) -> None:
    doc = json.loads(
        post(up, "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]})[1]
    )
    assert [item["index"] for item in doc["data"]] == [0, 1]
    assert doc["usage"] == payloads.OPENAI_EMBEDDINGS_USAGE
    counted = json.loads(post(up, "/v1/messages/count_tokens", claude_body())[1])
    assert counted == payloads.ANTHROPIC_COUNT_TOKENS


def test_unknown_paths_get_provider_shaped_404(up: FakeUpstream) -> None:
    response, data = post(up, "/v1/nope", chat_body())
    assert response.status == 404
    assert json.loads(data)["error"]["type"] == "invalid_request_error"
    response, data = post(up, "/v1/nope", claude_body(), {"anthropic-version": "2023-06-01"})
    assert response.status == 404 and response.getheader("request-id", "").startswith("req_")
    assert json.loads(data)["error"]["type"] == "not_found_error"


def test_invalid_json_and_missing_model_are_400(up: FakeUpstream) -> None:
    assert post(up, CHAT, b"{not json")[0].status == 400
    response, data = post(up, MESSAGES, {"messages": []})
    assert response.status == 400
    assert json.loads(data)["error"]["type"] == "invalid_request_error"


def test_scenario_header_overrides_the_server_scenario(up: FakeUpstream) -> None:
    up.set_scenario("status", code=500)
    assert post(up, CHAT, chat_body())[0].status == 500
    assert post(up, CHAT, chat_body(), {"x-fake-scenario": "ok"})[0].status == 200
    response, _ = post(up, CHAT, chat_body(), {"x-fake-scenario": "status; code=503"})
    assert response.status == 503
    assert [r.scenario for r in up.requests] == ["status", "ok", "status"]


def test_scenario_for_a_number_of_requests_then_ok(up: FakeUpstream) -> None:
    up.set_scenario("status", code=429, times=2)
    assert [post(up, CHAT, chat_body())[0].status for _ in range(3)] == [429, 429, 200]


def test_unknown_scenarios_are_rejected(up: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="unknown fake scenario"):
        up.set_scenario("explode")
    response, data = post(up, CHAT, chat_body(), {"x-fake-scenario": "explode"})
    assert response.status == 400 and b"unknown fake scenario" in data
    assert parse_scenario("slow; seconds=0.5; x=y") == ("slow", {"seconds": 0.5, "x": "y"})


def test_rate_limit_headers_follow_the_provider(up: FakeUpstream) -> None:
    scenario = {"x-fake-scenario": "status; code=429; retry_after=7"}
    response, data = post(up, CHAT, chat_body(), scenario)
    assert response.status == 429 and response.getheader("retry-after") == "7"
    assert response.getheader("x-ratelimit-remaining-requests") == "0"
    assert response.getheader("x-ratelimit-reset-requests") == "7s"
    assert json.loads(data)["error"]["code"] == "rate_limit_exceeded"
    response, data = post(up, MESSAGES, claude_body(), scenario)
    assert response.getheader("anthropic-ratelimit-requests-remaining") == "0"
    assert response.getheader("anthropic-ratelimit-requests-reset", "").endswith("Z")
    assert response.getheader("retry-after") == "7"
    assert json.loads(data)["error"]["type"] == "rate_limit_error"


def test_key_status_fails_only_that_key_in_each_auth_location(up: FakeUpstream) -> None:
    dead = "sk-dead-0123456789abcdef"
    up.key_status[dead] = 401
    response, data = post(up, CHAT, chat_body(), {"authorization": f"Bearer {dead}"})
    message = json.loads(data)["error"]["message"]
    assert response.status == 401
    assert "sk-" in message and "cdef" in message and dead not in message
    assert post(up, CHAT, chat_body(), {"authorization": "Bearer sk-alive"})[0].status == 200
    for auth in ({"x-api-key": dead}, {"authorization": f"Bearer {dead}"}):
        response, data = post(up, MESSAGES, claude_body(), auth)
        assert response.status == 401
        assert json.loads(data)["error"] == {
            "type": "authentication_error",
            "message": "invalid x-api-key",
        }
    assert post(up, MESSAGES, claude_body(), {"x-api-key": "sk-ant-alive"})[0].status == 200


def test_slow_waits_before_answering(up: FakeUpstream) -> None:
    start = time.monotonic()
    response, _ = post(up, CHAT, chat_body(), {"x-fake-scenario": "slow; seconds=0.3"})
    assert response.status == 200 and time.monotonic() - start >= 0.3


def test_nonjson_answers_html(up: FakeUpstream) -> None:
    response, data = post(up, CHAT, chat_body(), {"x-fake-scenario": "nonjson"})
    assert response.status == 200 and response.getheader("content-type", "").startswith("text/html")
    assert data.startswith(b"<html>")


def test_truncated_body_is_shorter_than_its_content_length(up: FakeUpstream) -> None:
    with pytest.raises(http.client.IncompleteRead):
        post(up, CHAT, chat_body(), {"x-fake-scenario": "truncated"})


def test_drop_closes_without_an_answer(up: FakeUpstream) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post(up, CHAT, chat_body(), {"x-fake-scenario": "drop"})
    assert len(up.requests) == 1


def test_cut_closes_the_stream_without_the_last_chunk(up: FakeUpstream) -> None:
    _, _, chunks, done = raw_exchange(
        up, MESSAGES, claude_body(stream=True), "x-fake-scenario: cut; events=2\r\n"
    )
    assert not done and len(chunks) == 2


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        (CHAT, chat_body(stream=True), b'data: {"error":'),
        ("/v1/completions", {"model": "m", "prompt": "x", "stream": True}, b'data: {"error":'),
        ("/v1/responses", {"model": "m", "stream": True}, b"event: error\n"),
        (MESSAGES, claude_body(stream=True), b"event: error\n"),
    ],
)
def test_midstream_error_follows_two_content_events(
    up: FakeUpstream, path: str, body: dict[str, Any], error: bytes
) -> None:
    headers = "x-fake-scenario: midstream_error\r\n"
    status, _, chunks, done = raw_exchange(up, path, body, headers)
    contents = [c for _, c in chunks[:-1] if b"Hello" in c or b" from" in c]
    assert status.endswith("200 OK") and done
    assert len(contents) == 2 and chunks[-1][1].startswith(error)


def test_large_response_still_carries_usage(up: FakeUpstream) -> None:
    data = post(up, CHAT, chat_body(), {"x-fake-scenario": "large"})[1]
    assert len(data) > 5_000_000
    assert json.loads(data)["usage"] == payloads.OPENAI_CHAT_USAGE
    _, _, chunks, done = raw_exchange(
        up, MESSAGES, claude_body(stream=True), "x-fake-scenario: large; size=200000\r\n"
    )
    assert done and sum(len(c) for _, c in chunks) > 200_000


def test_gzip_only_when_accepted_and_per_event_for_sse(up: FakeUpstream) -> None:
    scenario = {"x-fake-scenario": "gzip"}
    response, data = post(up, CHAT, chat_body(), {**scenario, "accept-encoding": "gzip, br"})
    assert response.getheader("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(data))["usage"] == payloads.OPENAI_CHAT_USAGE
    response, data = post(up, CHAT, chat_body(), {**scenario, "accept-encoding": "identity"})
    assert response.getheader("content-encoding") is None and json.loads(data)
    _, headers, chunks, done = raw_exchange(
        up, CHAT, chat_body(stream=True), "x-fake-scenario: gzip\r\naccept-encoding: gzip\r\n"
    )
    unpacker = zlib.decompressobj(wbits=31)
    events = [unpacker.decompress(chunk) for _, chunk in chunks]
    assert done and headers["content-encoding"] == "gzip"
    assert events[0].startswith(b"data: {") and events[0].endswith(b"\n\n")
    assert b"data: [DONE]\n\n" in b"".join(events)


def test_standalone_process_prints_its_port_and_serves() -> None:
    script = Path(__file__).with_name("upstream.py")
    with subprocess.Popen(
        [sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on ")
            conn = http.client.HTTPConnection("127.0.0.1", int(line.split()[-1]), timeout=10)
            try:
                conn.request("POST", CHAT, json.dumps(chat_body()))
                with conn.getresponse() as response:
                    assert response.status == 200 and response.read()
                conn.request("GET", "/_fake/stats")
                with conn.getresponse() as response:
                    assert json.loads(response.read()) == {"requests": 1, "errors": 0}
            finally:
                conn.close()
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0


# --- the official SDKs pointed at the fake -------------------------------------------------


def test_openai_chat_parses_usage(oai: openai.OpenAI, up: FakeUpstream) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    assert completion.usage is not None and completion.usage.prompt_tokens == 1200
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1024
    assert up.requests[0].headers["authorization"] == "Bearer sk-test"


def test_openai_chat_stream_usage_chunk_only_with_include_usage(oai: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == payloads.OPENAI_CHAT_USAGE["total_tokens"]
    assert all(chunk.usage is None for chunk in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == payloads.REPLY_TEXT
    plain = list(oai.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
    assert all(chunk.usage is None and chunk.choices for chunk in plain)


def test_openai_legacy_completions(oai: openai.OpenAI) -> None:
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    assert completion.usage is not None and completion.usage.total_tokens == 26
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="hi",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16
    assert "".join(c.choices[0].text for c in chunks if c.choices) == payloads.REPLY_TEXT


def test_openai_embeddings_in_base64_and_float(oai: openai.OpenAI) -> None:
    packed = oai.embeddings.create(model="text-embedding-3-small", input="hello")
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="float"
    )
    assert packed.usage.prompt_tokens == 8
    assert len(packed.data[0].embedding) == payloads.EMBEDDING_DIMENSIONS
    assert packed.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_openai_responses_parse_usage(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-5-mini", input="hi")
    assert response.output_text == payloads.REPLY_TEXT
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 1536
    assert response.usage.output_tokens_details.reasoning_tokens == 128
    events = list(oai.responses.create(model="gpt-5-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is not None and events[-1].response.usage.output_tokens == 180
    with oai.responses.stream(model="gpt-5-mini", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == payloads.REPLY_TEXT and final.usage is not None


def test_anthropic_messages_parse_usage(claude: anthropic.Anthropic, up: FakeUpstream) -> None:
    message = claude.messages.create(**claude_body())
    assert message.model == "claude-sonnet-4-6"
    assert message.usage.cache_creation_input_tokens == 1800 and message.usage.output_tokens == 12
    # anthropic 2.x sends the api key as `Authorization: Bearer`, older SDKs as x-api-key
    assert api_key(up.requests[0].headers, "anthropic") == "sk-ant-test"
    counted = claude.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens == payloads.ANTHROPIC_COUNT_TOKENS["input_tokens"]


def test_anthropic_stream_events_and_final_usage(claude: anthropic.Anthropic) -> None:
    kinds = [event.type for event in claude.messages.create(**claude_body(), stream=True)]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert "ping" not in kinds
    with claude.messages.stream(**claude_body()) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens == 25 and final.usage.output_tokens == 15
    assert final.content[0].type == "text" and final.content[0].text == payloads.REPLY_TEXT


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_openai_errors_raise_sdk_exceptions(
    oai: openai.OpenAI, up: FakeUpstream, code: int, error: type[openai.APIStatusError]
) -> None:
    up.set_scenario("status", code=code)
    with pytest.raises(error) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == code
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_openai_quota_error_has_its_own_code(oai: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_scenario("status", code=429, kind="quota")
    with pytest.raises(openai.RateLimitError) as caught:
        oai.embeddings.create(model="text-embedding-3-small", input="x")
    assert caught.value.code == "insufficient_quota"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_anthropic_errors_raise_sdk_exceptions(
    claude: anthropic.Anthropic, up: FakeUpstream, code: int, error: type[anthropic.APIStatusError]
) -> None:
    up.set_scenario("status", code=code)
    with pytest.raises(error) as caught:
        claude.messages.create(**claude_body())
    assert isinstance(caught.value, anthropic.APIStatusError) and caught.value.status_code == code
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_dead_key_in_a_pool_fails_with_sdk_errors(up: FakeUpstream) -> None:
    up.key_status["sk-dead-0000000000001"] = 401
    up.key_status["sk-ant-busy-000000001"] = 429
    base = up.base_url + "/v1"
    with openai.OpenAI(base_url=base, api_key="sk-dead-0000000000001", max_retries=0) as dead:
        with pytest.raises(openai.AuthenticationError) as caught:
            dead.embeddings.create(model="text-embedding-3-small", input="x")
        assert caught.value.code == "invalid_api_key"
        assert "sk-dead-0000000000001" not in str(caught.value)
    with (
        anthropic.Anthropic(
            base_url=up.base_url, api_key="sk-ant-busy-000000001", max_retries=0
        ) as busy,
        pytest.raises(anthropic.RateLimitError),
    ):
        busy.messages.create(**claude_body())


def test_midstream_errors_raise_in_both_sdks(
    oai: openai.OpenAI, claude: anthropic.Anthropic, up: FakeUpstream
) -> None:
    up.set_scenario("midstream_error")
    seen: list[Any] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        seen.extend(
            oai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    with pytest.raises(anthropic.APIStatusError) as caught:
        seen.extend(claude.messages.create(**claude_body(), stream=True))
    assert caught.value.status_code == 200
    assert "overloaded_error" in str(caught.value)


def test_cut_stream_raises_a_connection_error(oai: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_scenario("cut", events=3)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk)
    assert len(received) == 3


def test_gzip_is_transparent_to_the_sdks(
    oai: openai.OpenAI, claude: anthropic.Anthropic, up: FakeUpstream
) -> None:
    up.set_scenario("gzip")
    completion = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert completion.usage is not None and completion.usage.total_tokens == 1240
    with claude.messages.stream(**claude_body()) as stream:
        assert stream.get_final_message().usage.output_tokens == 15
    assert "gzip" in up.requests[0].headers["accept-encoding"]


def test_sse_events_arrive_incrementally(oai: openai.OpenAI, up: FakeUpstream) -> None:
    up.event_delay = 0.2
    start = time.monotonic()
    stamps = [
        time.monotonic() - start
        for _ in oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
    ]
    # 8 events (role, 5 words, finish, [DONE] which the SDK swallows): 7 gaps of 0.2 s
    assert stamps[0] < 0.5
    assert stamps[-1] - stamps[0] >= 1.0


def test_embedding_vectors_decode_as_little_endian_float32(up: FakeUpstream) -> None:
    body = {"model": "e", "input": "x", "encoding_format": "base64", "dimensions": 4}
    doc = json.loads(post(up, "/v1/embeddings", body)[1])
    values = struct.unpack("<4f", base64.b64decode(doc["data"][0]["embedding"]))
    assert len(values) == 4 and all(-1 < v < 1 for v in values)


def test_pipelined_requests_are_answered_in_order(up: FakeUpstream) -> None:
    def request(model: str, scenario: str) -> bytes:
        body = json.dumps(chat_body(model=model)).encode()
        head = f"POST {CHAT} HTTP/1.1\r\nhost: x\r\nx-fake-scenario: {scenario}\r\n"
        return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body

    wire = request("first", "slow; seconds=0.2") + request("second", "ok")
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(wire)
        with sock.makefile("rb") as stream:
            models = [json.loads(read_response(stream)[2][0][1])["model"] for _ in range(2)]
    assert models == ["first", "second"]


def test_http10_stream_is_close_delimited(up: FakeUpstream) -> None:
    body = json.dumps(chat_body(stream=True)).encode()
    head = f"POST {CHAT} HTTP/1.0\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    head_part, _, payload = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head_part.lower()
    assert b"connection: close" in head_part.lower()
    assert payload.startswith(b"data: {") and payload.endswith(b"data: [DONE]\n\n")


def test_client_leaving_mid_stream_does_not_disturb_the_server(up: FakeUpstream) -> None:
    body = json.dumps(claude_body(stream=True)).encode()
    head = f"POST {MESSAGES} HTTP/1.1\r\nx-fake-scenario: ok; delay=0.1\r\n"
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        received = b""
        while b"message_start" not in received:
            received += sock.recv(65536)
    time.sleep(0.3)  # the server writes into the closed connection meanwhile
    assert post(up, CHAT, chat_body())[0].status == 200


def test_concurrent_clients_get_their_own_scenarios(up: FakeUpstream) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cases = [
        ("ok", 200),
        ("status; code=401", 401),
        ("status; code=429", 429),
        ("slow; seconds=0.1", 200),
    ]

    def call(index: int) -> tuple[int, int]:
        scenario, expected = cases[index % len(cases)]
        return post(up, CHAT, chat_body(), {"x-fake-scenario": scenario})[0].status, expected

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(64)))
    assert all(got == expected for got, expected in results)
    assert up.request_count >= 64 and len(up.requests) == 64


def test_large_stream_through_the_sdk(claude: anthropic.Anthropic, up: FakeUpstream) -> None:
    up.set_scenario("large", size=5_000_000)
    with claude.messages.stream(**claude_body()) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and len(final.content[0].text) == 5_000_000
    assert final.usage.output_tokens == 15
