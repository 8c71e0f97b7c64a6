"""A fake OpenAI/Anthropic/Gemini upstream: a real HTTP/1.1 server on loopback for tests and
benchmarks.

    with FakeUpstream() as up:
        client = openai.OpenAI(base_url=up.base_url + "/v1", api_key="sk-test")
        up.set_scenario("status", code=429, retry_after=2)
        ...
        assert up.requests[-1].headers["authorization"] == "Bearer sk-test"

Standalone (for the benchmark): `python tests/fakes/upstream.py --port N` prints
"listening on N" and serves until killed.

The provider and API are chosen by the end of the path (`/v1/chat/completions`,
`/v1/completions`, `/v1/embeddings`, `/v1/responses`, `/v1/messages`,
`/v1/messages/count_tokens`, and Gemini's `/v1beta/models/{model}:generateContent`,
`:streamGenerateContent` and `:countTokens`, under any version prefix). The scenario of a
request comes from, in this order: `key_status` for the request's API key (as `status` with that
code), the request header `x-fake-scenario: NAME; key=value; ...`, the scenario set with
`set_scenario()`.

Gemini: the key is the `x-goog-api-key` header or the `?key=` query parameter (each recorded
request says where its key was in `key_from`). The model comes from the path and comes back as
`modelVersion`. `:streamGenerateContent?alt=sse` streams SSE (`data:` blocks, CRLF CRLF, no
[DONE]); without `alt=sse` it streams a JSON array, one element per chunk. Every chunk carries
running usage totals ending with `usage["gemini"]`. Errors have Google's shape
(`{"error": {"code", "message", "status", "details"}}`, a one-element array on an array stream);
`status` with code 400 or 401 answers as Google does for a bad API key: 400 INVALID_ARGUMENT with
ErrorInfo reason API_KEY_INVALID; 429 is RESOURCE_EXHAUSTED with RetryInfo (no retry-after
header). A mid-stream error is raw multi-line JSON on an SSE stream, one more element on an array.

    ok                                   the normal answer (JSON, or SSE when "stream": true)
    status     code=500 retry_after=N kind=rate_limit|quota
                                         provider-shaped error; 429 adds retry-after (default 1)
                                         and rate-limit headers
    slow       seconds=1                 wait, then answer normally
    nonjson    status=200                a text/html body
    truncated  fraction=0.5              content-length of the whole body, a part sent, close
    drop                                 close the connection without answering
    midstream_error  events=2            SSE: N content events, then a provider error event
    cut        events=3                  SSE: N events, then close without the last chunk
    large      size=5000000              ~size characters of generated text, usage as usual
    gzip       level=6 force=0           content-encoding gzip when accept-encoding allows it
                                         (force=1: whatever the request said)

Every scenario takes `delay=SECONDS` between SSE events (default: `event_delay`), `split=N`
(SSE: send the body in N-byte pieces, each its own write and HTTP chunk, so events arrive cut
mid-line as real networks deliver them) and `framing=close` (SSE: no transfer-encoding, the body
ends when the connection closes). The body bytes of every streamed reply, as sent (after any
compression, without chunk framing), are kept in `sent_bodies`, in order. On a JSON
request `midstream_error` answers normally, and `cut` behaves like `truncated`; on an SSE
request `truncated` behaves like `cut`. A request header `x-fake-usage: {"chat": {...}}`
replaces entries of `usage` for that request only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gzip
import http
import json
import re
import signal
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

try:
    from fakes import gemini_payloads, media_payloads, payloads
except ModuleNotFoundError:  # run as a script: python tests/fakes/upstream.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fakes import gemini_payloads, media_payloads, payloads

ROUTES = (  # (path suffix, provider, api); the first match wins
    ("/messages/count_tokens", "anthropic", "count_tokens"),
    ("/messages", "anthropic", "messages"),
    ("/chat/completions", "openai", "chat"),
    ("/completions", "openai", "completions"),
    ("/embeddings", "openai", "embeddings"),
    ("/responses", "openai", "responses"),
)
GEMINI_PATH = re.compile(
    r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|countTokens)$"
)
GEMINI_APIS = {
    "generateContent": "gemini_generate",
    "streamGenerateContent": "gemini_stream",  # "gemini_sse" once ?alt=sse is seen
    "countTokens": "gemini_count_tokens",
}
STREAMING_APIS = frozenset({"chat", "completions", "responses", "messages"})
SCENARIOS = frozenset(
    {
        "ok",
        "status",
        "slow",
        "nonjson",
        "truncated",
        "drop",
        "midstream_error",
        "cut",
        "large",
        "gzip",
    }
)
HTML_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream</body></html>\n"
MAX_HEAD_BYTES = 1 << 20


class Headers(Mapping[str, str]):
    """Request headers as received: case-insensitive lookup (first value), `get_all` for repeats."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = tuple(pairs)
        self._first: dict[str, str] = {}
        for name, value in pairs:
            self._first.setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self.pairs if n.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"Headers({list(self.pairs)!r})"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: Headers
    body: bytes
    time: float  # time.time() when the request was complete
    scenario: str  # the scenario that answered it
    key_from: str | None = None  # where the API key was: a header name, "?key", or None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    events: list[payloads.Event] | None = None  # SSE when not None
    delay: float = 0.0  # between SSE events
    wait: float = 0.0  # before the status line
    gzip_level: int | None = None
    send_bytes: int | None = None  # JSON: send only this much of the body, then close
    cut_after: int | None = None  # SSE: send this many events, then close
    drop: bool = False
    split: int | None = None  # SSE: send the body in pieces of this many bytes
    close_delimited: bool = False  # SSE: no chunked framing; the close ends the body


@dataclass
class _Scenario:
    name: str = "ok"
    params: dict[str, Any] = field(default_factory=dict)
    times: int | None = None


class _BadRequest(Exception):
    pass


def parse_scenario(text: str) -> tuple[str, dict[str, Any]]:
    """'status; code=429; retry_after=2' -> ('status', {'code': 429, 'retry_after': 2})."""
    name, *pairs = (part.strip() for part in text.split(";"))
    if name not in SCENARIOS:
        raise ValueError(f"unknown fake scenario {name!r}")
    params: dict[str, Any] = {}
    for pair in filter(None, pairs):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"bad fake scenario parameter {pair!r}")
        params[key.strip()] = _number(value.strip())
    return name, params


def _number(value: str) -> Any:
    for convert in (int, float):
        with contextlib.suppress(ValueError):
            return convert(value)
    return value


AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/(?P<name>[^/?]+)/")


def route(path: str) -> tuple[str | None, str | None]:
    bare = path.split("?", 1)[0].rstrip("/")
    if match := GEMINI_PATH.search(bare):
        return "gemini", GEMINI_APIS[match["method"]]
    for suffix, provider, api in ROUTES:
        if bare.endswith(suffix):
            return provider, api
    return None, None


def guess_provider(headers: Mapping[str, str], target: str) -> str:
    """The provider of a request whose path names no known API."""
    if "x-goog-api-key" in headers or "key" in _query(target) or target.startswith("/v1beta/"):
        return "gemini"
    anthropic_headers = "anthropic-version" in headers or "x-api-key" in headers
    return "anthropic" if anthropic_headers else "openai"


def api_key(headers: Mapping[str, str], provider: str) -> str | None:
    """The API key in the headers (Gemini's may also be in the query: see `request_key`)."""
    return request_key(headers, "", provider)[0]


def request_key(
    headers: Mapping[str, str], target: str, provider: str
) -> tuple[str | None, str | None]:
    """(the request's API key, where it was: a header name or "?key"), or (None, None)."""
    auth = headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    if provider == "gemini":
        places = [("x-goog-api-key", headers.get("x-goog-api-key"))]
        places.append(("?key", (_query(target).get("key") or [None])[0]))
    elif provider == "anthropic":
        places = [("x-api-key", headers.get("x-api-key")), ("authorization", bearer)]
    else:
        places = [("authorization", bearer), ("api-key", headers.get("api-key"))]
    for where, key in places:
        if key:
            return key, where
    return None, None


def _query(target: str) -> dict[str, list[str]]:
    return parse_qs(target.partition("?")[2])


def accepts_gzip(headers: Mapping[str, str]) -> bool:
    for item in headers.get("accept-encoding", "").lower().split(","):
        coding, _, q = item.partition(";")
        if coding.strip() in ("gzip", "*") and q.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


class FakeUpstream:
    """See the module docstring. Safe to configure from the test thread while it serves."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        event_delay: float = 0.0,
        record: bool = True,
    ) -> None:
        self.host, self.port, self.record = host, port, record
        self._default_event_delay = event_delay
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._sent_bodies: list[bytearray] = []
        self._scenario = _Scenario()
        self.request_count = 0
        self.errors: list[str] = []  # faults of the fake itself; a test fixture may assert empty
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self.reset()

    # --- configuration -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()
            self._sent_bodies.clear()

    @property
    def sent_bodies(self) -> list[bytes]:
        """The body of every streamed reply so far, as sent (a cut one as far as it went)."""
        with self._lock:
            return [bytes(body) for body in self._sent_bodies]

    def new_sent_body(self) -> bytearray:
        body = bytearray()
        with self._lock:
            self._sent_bodies.append(body)
        return body

    def reset(self) -> None:
        """Back to defaults: scenario ok, default usage and text, no key_status, no records."""
        with self._lock:
            self._scenario = _Scenario()
            self._requests.clear()
            self._sent_bodies.clear()
        self.usage: dict[str, dict[str, Any]] = payloads.default_usage()
        self.key_status: dict[str, int] = {}
        self.response_models: dict[str, str] = {}  # request model -> model reported back
        self.reply_text = payloads.REPLY_TEXT
        self.event_delay = self._default_event_delay

    def set_scenario(self, name: str, *, times: int | None = None, **params: Any) -> None:
        """Answer the following requests (all, or the next `times`) with scenario `name`."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown fake scenario {name!r}; known: {sorted(SCENARIOS)}")
        with self._lock:
            self._scenario = _Scenario(name, params, times)

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._loop is not None:
            raise RuntimeError("FakeUpstream already started")
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._open())
        except BaseException:
            loop.close()
            raise
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(self._close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until SIGINT/SIGTERM (the standalone mode)."""

        async def main() -> None:
            await self._open()
            print(f"listening on {self.port}", flush=True)
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)
            await stopped.wait()
            await self._close()

        asyncio.run(main())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = [conn.task for conn in self._conns if conn.task is not None]
        for conn in list(self._conns):
            conn.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    # --- answering one request -----------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Headers, body: bytes) -> Reply:
        provider, api = route(target)
        provider = provider or guess_provider(headers, target)
        key, key_from = request_key(headers, target, provider)
        try:
            reply, scenario = self._answer(method, target, headers, body, provider, api, key)
        except Exception:
            self._fault(f"{method} {target}")
            reply, scenario = _plain_reply(500, "fake upstream fault"), "fault"
        with self._lock:
            self.request_count += 1
            if self.record:
                recorded = RecordedRequest(
                    method, target, headers, body, time.time(), scenario, key_from
                )
                self._requests.append(recorded)
        return reply

    def _fault(self, where: str) -> None:
        text = f"fake upstream fault in {where}:\n{traceback.format_exc()}"
        self.errors.append(text)
        print(text, file=sys.stderr, flush=True)

    def _answer(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        provider: str,
        api: str | None,
        key: str | None,
    ) -> tuple[Reply, str]:
        request_id = payloads.new_id("req_")
        try:
            name, params = self._choose(headers, key)
            usage = self.usage
            if extra := headers.get("x-fake-usage"):
                usage = {**usage, **json.loads(extra)}
        except (ValueError, TypeError) as exc:
            return self._error(provider, 400, headers, request_id, message=str(exc)), "invalid"
        if name == "drop":
            return Reply(0, [], drop=True), name
        if provider == "gemini":
            return self._gemini(method, target, headers, body, api, name, params, usage), name
        doc = _json_object(body)
        model = doc.get("model") if doc is not None else None
        if model is None and (deployment := AZURE_DEPLOYMENT.search(target)):
            model = deployment["name"]  # Azure: the URL names the deployment, not the body
        if name == "status":
            return self._status(provider, params, headers, request_id, model), name
        if api is None and method == "POST" and (media := media_payloads.route(target)):
            content_type, out = media_payloads.answer(media, body)  # images, audio, batches
            hdrs = [
                ("content-type", content_type),
                *payloads.provider_headers(provider, request_id),
            ]
            wait = float(headers.get("x-fake-wait") or 0)  # hold the answer back this long
            return Reply(200, hdrs, out, wait=wait), media
        if api is None:
            return self._no_api(provider, method, target, headers, request_id), name
        message = None
        if method != "POST":
            message = f"Invalid method for URL ({method} {target.split('?', 1)[0]})"
        elif doc is None:
            message = "We could not parse the JSON body of your request."
        elif not isinstance(model, str) or not model:
            message = "you must provide a model parameter"
        if message is not None:
            status = 405 if method != "POST" else 400
            return self._error(provider, status, headers, request_id, message=message), name
        assert doc is not None and isinstance(model, str)
        if name == "nonjson":
            hdrs = [("content-type", "text/html; charset=utf-8"), *_id_header(provider, request_id)]
            return Reply(int(params.get("status", 200)), hdrs, body=HTML_BODY), name
        text = self.reply_text
        if name == "large":
            text = payloads.large_text(int(params.get("size", 5_000_000)))
        shown = self.response_models.get(model, model)
        if doc.get("stream") is True and api in STREAMING_APIS:
            events = payloads.stream_reply(api, shown, text, usage, doc)
            hdrs = [
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
            ]
            reply = Reply(200, hdrs, events=events)
        else:
            body_out = payloads.dumps(payloads.json_reply(api, shown, text, usage, doc))
            reply = Reply(200, [("content-type", "application/json")], body=body_out)
        reply.headers += payloads.provider_headers(provider, request_id)
        reply.delay = float(params.get("delay", self.event_delay))
        _apply(reply, name, params, api, headers)
        _framing(reply, params)
        return reply, name

    def _choose(self, headers: Headers, key: str | None) -> tuple[str, dict[str, Any]]:
        if key is not None and key in self.key_status:
            return "status", {"code": self.key_status[key]}
        if header := headers.get("x-fake-scenario"):
            return parse_scenario(header)
        with self._lock:
            scenario = self._scenario
            if scenario.times is not None:
                scenario.times -= 1
                if scenario.times <= 0:
                    self._scenario = _Scenario()
            return scenario.name, dict(scenario.params)

    def _gemini(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        api: str | None,
        name: str,
        params: dict[str, Any],
        usage: dict[str, Any],
    ) -> Reply:
        """A Gemini answer: the model is in the path, a stream's framing in `?alt=`."""
        path = target.split("?", 1)[0].rstrip("/")
        if api == "gemini_stream" and "sse" in _query(target).get("alt", []):
            api = "gemini_sse"
        array = api == "gemini_stream"  # errors come wrapped in a one-element array
        if name == "status":
            code = int(params.get("code", 500))
            code = 400 if code == 401 else code  # a bad API key is a 400 at Google
            retry_after = params.get("retry_after", 1 if code == 429 else None)
            retry = None if retry_after is None else int(retry_after)
            return _gemini_error(code, retry_after=retry, array=array)
        if api is None:
            return self._no_api("gemini", method, target, headers, "")
        doc = _json_object(body)
        if method != "POST":
            return _gemini_error(404, message=f"Method not found: {method} {path}", array=array)
        if doc is None:
            message = "Invalid JSON payload received. Expected a JSON object."
            return _gemini_error(400, message=message, array=array)
        if api != "gemini_count_tokens" and not doc.get("contents"):
            message = "* GenerateContentRequest.contents: contents is not specified\n"
            return _gemini_error(400, message=message, array=array)
        if name == "nonjson":
            hdrs = [("content-type", "text/html; charset=utf-8")]
            return Reply(int(params.get("status", 200)), hdrs, body=HTML_BODY)
        match = GEMINI_PATH.search(path)
        assert match is not None
        model = self.response_models.get(match["model"], match["model"])
        text = self.reply_text
        if name == "large":
            text = payloads.large_text(int(params.get("size", 5_000_000)))
        if api == "gemini_count_tokens":
            reply = _gemini_json(usage["gemini_count_tokens"])
        elif api == "gemini_generate":
            rid = payloads.new_id("")
            reply = _gemini_json(gemini_payloads.generate_json(model, text, usage["gemini"], rid))
        elif api == "gemini_sse":
            events = gemini_payloads.sse_stream(model, text, usage["gemini"])
            reply = Reply(200, [("content-type", "text/event-stream")], events=events)
        else:
            events = gemini_payloads.array_stream(model, text, usage["gemini"])
            reply = Reply(200, [("content-type", gemini_payloads.CONTENT_TYPE)], events=events)
        reply.delay = float(params.get("delay", self.event_delay))
        _apply(reply, name, params, api, headers)
        _framing(reply, params)
        return reply

    def _status(
        self, provider: str, params: dict[str, Any], headers: Headers, request_id: str, model: Any
    ) -> Reply:
        code = int(params.get("code", 500))
        retry_after = params.get("retry_after", 1 if code == 429 else None)
        return self._error(
            provider,
            code,
            headers,
            request_id,
            model=model if isinstance(model, str) else "",
            kind=str(params.get("kind", "rate_limit")),
            retry_after=None if retry_after is None else int(retry_after),
        )

    def _error(
        self,
        provider: str,
        status: int,
        headers: Headers,
        request_id: str,
        *,
        model: str = "",
        kind: str = "rate_limit",
        retry_after: int | None = None,
        message: str | None = None,
    ) -> Reply:
        if provider == "gemini":
            return _gemini_error(status, message=message, retry_after=retry_after)
        if provider == "anthropic":
            body = payloads.anthropic_error(status, request_id, message)
        else:
            key = api_key(headers, provider)
            body = payloads.openai_error(
                status, api_key=key, model=model, kind=kind, message=message
            )
        if retry_after is not None:
            extra = payloads.rate_limited_headers(provider, request_id, retry_after)
        else:
            extra = _id_header(provider, request_id)
        return Reply(status, [("content-type", "application/json"), *extra], payloads.dumps(body))

    def _no_api(
        self, provider: str, method: str, target: str, headers: Headers, request_id: str
    ) -> Reply:
        path = target.split("?", 1)[0].rstrip("/")
        if method == "GET" and path.endswith("/_fake/stats"):
            body = {"requests": self.request_count, "errors": len(self.errors)}
            return Reply(200, [("content-type", "application/json")], payloads.dumps(body))
        if method == "GET" and path.endswith("/models") and provider == "gemini":
            hdrs = [("content-type", gemini_payloads.CONTENT_TYPE)]
            return Reply(200, hdrs, gemini_payloads.pretty(gemini_payloads.models_list()))
        if method == "GET" and path.endswith("/models"):
            models = ["claude-sonnet-4-6"] if provider == "anthropic" else ["gpt-4o-mini"]
            data = [
                {"id": m, "object": "model", "type": "model", "owned_by": provider} for m in models
            ]
            hdrs = [("content-type", "application/json"), *_id_header(provider, request_id)]
            return Reply(200, hdrs, payloads.dumps({"object": "list", "data": data}))
        msg = f"Invalid URL ({method} {path})"
        return self._error(provider, 404, headers, request_id, message=msg)


class _Connection(asyncio.Protocol):
    """One client connection: parses (pipelined) requests and answers them in order.

    Plain JSON answers are written at once from `data_received`; answers that wait or stream
    run as a task, with reading paused until they are done.
    """

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.buffer = bytearray()
        self.head: tuple[str, str, str, Headers] | None = None  # parsed, body still incomplete
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()
        self.fake._conns.discard(self)
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.task is None:
            self._serve()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        await self.writable.wait()
        if self.closed:
            raise ConnectionResetError("client went away")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()  # after the buffered bytes are sent

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _serve(self) -> None:
        while not self.closed and self.task is None:
            try:
                request = self._next_request()
            except _BadRequest as exc:
                self._write_json(_plain_reply(400, str(exc)), keep=False)
                self.close()
                return
            if request is None:
                return
            method, target, version, headers, body = request
            keep = _keep_alive(version, headers)
            reply = self.fake._handle(method, target, headers, body)
            if reply.wait or reply.drop or reply.events is not None:
                assert self.transport is not None
                self.transport.pause_reading()
                self.task = asyncio.get_running_loop().create_task(
                    self._later(reply, version, keep)
                )
            elif not self._write_json(reply, keep):
                self.close()

    def _next_request(self) -> tuple[str, str, str, Headers, bytes] | None:
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    raise _BadRequest("request head too large")
                return None
            self.head = _parse_head(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
            if self.head[3].get("expect", "").lower() == "100-continue":
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        method, target, version, headers = self.head
        taken = _take_body(self.buffer, headers)
        if taken is None:
            return None
        body, used = taken
        del self.buffer[:used]
        self.head = None
        return method, target, version, headers, body

    def _write_json(self, reply: Reply, keep: bool) -> bool:
        body = reply.body
        if reply.gzip_level is not None:
            body = gzip.compress(body, reply.gzip_level, mtime=0)
        headers = [*reply.headers, ("content-length", str(len(body)))]
        if reply.send_bytes is not None:
            self.write(_render(Reply(reply.status, headers), keep) + body[: reply.send_bytes])
            return False
        self.write(_render(Reply(reply.status, headers), keep) + body)
        return keep

    async def _later(self, reply: Reply, version: str, keep: bool) -> None:
        try:
            if reply.wait:
                await asyncio.sleep(reply.wait)
            if reply.drop:
                keep = False
            elif reply.events is None:
                keep = self._write_json(reply, keep)
            else:
                keep = await self._write_events(reply, version == "HTTP/1.1", keep)
        except ConnectionError:
            keep = False
        except Exception:
            self.fake._fault("sending a reply")
            keep = False
        self.task = None
        if not keep or self.closed:
            self.close()
            return
        assert self.transport is not None
        self.transport.resume_reading()
        self._serve()

    async def _write_events(self, reply: Reply, chunked: bool, keep: bool) -> bool:
        assert reply.events is not None
        chunked = chunked and not reply.close_delimited
        headers = [*reply.headers, *([("transfer-encoding", "chunked")] if chunked else [])]
        self.write(_render(Reply(reply.status, headers), keep and chunked))
        packer = zlib.compressobj(reply.gzip_level, wbits=31) if reply.gzip_level else None
        body = _BodyWriter(self, chunked, reply.split, self.fake.new_sent_body())
        for index, event in enumerate(reply.events):
            if reply.cut_after is not None and index >= reply.cut_after:
                await body.flush()
                return False
            if index and reply.delay:
                await asyncio.sleep(reply.delay)
            data = event.data
            if packer is not None:
                data = packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)
            await body.write(data)
        if packer is not None:
            await body.write(packer.flush())
        await body.flush()
        if chunked:
            self.write(b"0\r\n\r\n")
        await self.drain()
        return keep and chunked


class _BodyWriter:
    """Writes a streamed body: as given (one chunk per write), or re-cut in `split`-byte pieces
    regardless of event boundaries; keeps a copy of every byte in `sent`."""

    def __init__(
        self, conn: _Connection, chunked: bool, split: int | None, sent: bytearray
    ) -> None:
        self.conn, self.chunked, self.split, self.sent = conn, chunked, split, sent
        self.carry = b""

    async def write(self, data: bytes) -> None:
        self.sent += data
        if self.split is None:
            await self._piece(data)
            return
        self.carry += data
        while len(self.carry) >= self.split:
            piece, self.carry = self.carry[: self.split], self.carry[self.split :]
            await self._piece(piece)

    async def flush(self) -> None:
        if self.carry:
            piece, self.carry = self.carry, b""
            await self._piece(piece)

    async def _piece(self, data: bytes) -> None:
        if not data:
            return
        self.conn.write(_chunk(data) if self.chunked else data)
        await self.conn.drain()
        if self.split is not None:
            await asyncio.sleep(0.001)  # so that most pieces reach the proxy in reads of their own


# --- helpers: scenario modifiers, HTTP framing -------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _apply(reply: Reply, name: str, params: dict[str, Any], api: str, headers: Headers) -> None:
    """Turn the normal answer into the scenario's."""
    events = reply.events
    if name == "slow":
        reply.wait = float(params.get("seconds", 1.0))
    elif name == "gzip" and (accepts_gzip(headers) or params.get("force")):
        reply.gzip_level = int(params.get("level", 6))
        reply.headers.append(("content-encoding", "gzip"))
    elif name in ("cut", "truncated") and events is not None:
        reply.cut_after = int(params.get("events", 3))
    elif name in ("cut", "truncated"):
        reply.send_bytes = int(len(reply.body) * float(params.get("fraction", 0.5)))
    elif name == "midstream_error" and events is not None:
        wanted = int(params.get("events", 2))
        content = [index for index, event in enumerate(events) if event.content]
        keep = content[min(wanted, len(content)) - 1] + 1 if content and wanted > 0 else 1
        if api.startswith("gemini"):
            error = gemini_payloads.midstream_error(api)
        else:
            error = payloads.midstream_error(api, keep)
        reply.events = [*events[:keep], payloads.Event(error)]


def _framing(reply: Reply, params: dict[str, Any]) -> None:
    """The wire-level parameters every scenario takes (see the module docstring)."""
    if (split := params.get("split")) is not None:
        reply.split = max(1, int(split))
    reply.close_delimited = params.get("framing") == "close"


def _gemini_json(doc: dict[str, Any], status: int = 200) -> Reply:
    return Reply(
        status, [("content-type", gemini_payloads.CONTENT_TYPE)], gemini_payloads.pretty(doc)
    )


def _gemini_error(
    status: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    array: bool = False,
) -> Reply:
    doc: Any = gemini_payloads.error_body(status, message=message, retry_after=retry_after)
    reply = _gemini_json(doc, status)
    if array:
        reply.body = b"[" + reply.body + b"\n]"
    return reply


def _id_header(provider: str, request_id: str) -> list[tuple[str, str]]:
    if provider == "gemini":  # Google sends no request id header
        return []
    return [("request-id" if provider == "anthropic" else "x-request-id", request_id)]


def _plain_reply(status: int, message: str) -> Reply:
    body = payloads.dumps({"error": {"message": message, "type": "fake_upstream_error"}})
    return Reply(status, [("content-type", "application/json")], body)


def _render(reply: Reply, keep: bool) -> bytes:
    """Status line and headers (plus date, server, connection), then reply.body."""
    lines = [f"HTTP/1.1 {reply.status} {_reason(reply.status)}"]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    lines += [f"date: {_http_date(int(time.time()))}", "server: fake-upstream"]
    if not keep:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


@functools.lru_cache(maxsize=4)
def _http_date(epoch: int) -> str:
    return formatdate(epoch, usegmt=True)


@functools.lru_cache(maxsize=64)
def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def _keep_alive(version: str, headers: Headers) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection


def _parse_head(raw: bytes) -> tuple[str, str, str, Headers]:
    lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"bad request line {lines[0]!r}")
    pairs = []
    for line in filter(None, lines[1:]):
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(f"bad header line {line!r}")
        pairs.append((name.strip(), value.strip()))
    return parts[0], parts[1], parts[2], Headers(pairs)


def _take_body(buffer: bytearray, headers: Headers) -> tuple[bytes, int] | None:
    """(body, bytes used) once the whole body is in `buffer`, else None."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _take_chunked(buffer)
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError as exc:
        raise _BadRequest("bad content-length") from exc
    if length < 0:
        raise _BadRequest("bad content-length")
    return (bytes(buffer[:length]), length) if len(buffer) >= length else None


def _take_chunked(buffer: bytearray) -> tuple[bytes, int] | None:
    parts: list[bytes] = []
    pos = 0
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buffer[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest("bad chunk size") from exc
        pos = eol + 2
        if size == 0:
            end = buffer.find(b"\r\n\r\n", pos - 2)  # after optional trailers
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buffer) < pos + size + 2:
            return None
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Anthropic/Gemini upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between SSE events")
    parser.add_argument("--record", action="store_true", help="keep every request in memory")
    args = parser.parse_args(argv)
    FakeUpstream(args.host, args.port, event_delay=args.delay, record=args.record).serve_forever()


if __name__ == "__main__":
    main()
