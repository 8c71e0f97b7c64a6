"""Small helpers that act on flows for the hooks: rejections, annotations, scrubbing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.net import encoding as net_encoding

from addon import scrubbing
from addon.errors import AnswerWithheld, GatewayError
from addon.flowstate import FlowState
from addon.metering.decoders import decoder_for
from addon.metering.stream import Forward
from addon.metering.usage import Usage
from addon.options import Config
from addon.pricing.cost import format_usd
from addon.providers.base import Provider
from addon.providers.key_health import Answer, judge
from addon.streamwatch import StreamWatch


def reject(flow: http.HTTPFlow, state: FlowState, err: GatewayError) -> None:
    state.rejected = err
    flow.request.stream = False
    status, body, headers = state.provider.render_error(err)
    flow.response = http.Response.make(status, body, headers)
    flow.marked = ":no_entry:"
    flow.comment = f"tollkeeper rejected ({err.code}): {err.message}"


def ms_since(start: float) -> int:
    return max(0, int((time.time() - start) * 1000))


def retry_after_seconds(headers: Any) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def scrub_headers(resp: http.Response, secret: str) -> None:
    """Remove a real key an upstream echoed anywhere in the response headers (names,
    values, ``Location``)."""
    needle = secret.encode()
    if len(secret) < scrubbing.MIN_SECRET_LEN or not any(
        needle in name or needle in value for name, value in resp.headers.fields
    ):
        return
    resp.headers.fields = tuple(
        (name.replace(needle, b"tollkeeper-redacted"), value.replace(needle, scrubbing.MARK))
        for name, value in resp.headers.fields
    )


def scrub(flow: http.HTTPFlow, state: FlowState, secret: str, max_decoded: int) -> None:
    """Remove a real key an upstream echoed in a buffered response (headers and body,
    content-encoded or not). A key inside a body too big to rewrite withholds the answer."""
    resp = flow.response
    if resp is None:
        return
    scrub_headers(resp, secret)
    raw = resp.raw_content
    if not raw:
        return
    verdict = scrubbing.scrub_body(raw, resp.headers.get("content-encoding"), secret, max_decoded)
    if verdict.decoded is not None:
        resp.content = verdict.decoded  # re-encoded with the response's content-encoding
    elif verdict.raw is not None:
        resp.raw_content = verdict.raw
        if "content-length" in resp.headers:
            resp.headers["content-length"] = str(len(verdict.raw))
    elif verdict.refuse:
        err = AnswerWithheld("The upstream's answer contained the real API key; withheld.")
        status, body, headers = state.provider.render_error(err)
        flow.response = http.Response.make(status, body, headers)


def inspect_buffered(
    flow: http.HTTPFlow, resp: http.Response, secret: str, max_decoded: int
) -> scrubbing.CompressedBodyInspector | scrubbing.BodyKeeper | None:
    """For an answer that would be buffered: stream it through an inspector instead when
    scanning it whole in the ``response`` hook would stall the event loop, i.e. when it is
    content-encoded (decoded incrementally) or plain and larger than ``PLAIN_INLINE_MAX``
    or of unknown length (scanned chunk by chunk). The client gets the same bytes, chunked
    (a streamed flow keeps no body for mitmweb). None: buffered and scrubbed as a whole."""
    if flow.request.method == "HEAD" or resp.status_code in (204, 304) or resp.status_code < 200:
        return None  # no body
    encoding = (resp.headers.get("content-encoding") or "identity").strip().lower()
    decoder = decoder_for(encoding) if encoding != "identity" else None
    inspector: scrubbing.CompressedBodyInspector | scrubbing.BodyKeeper
    if decoder is not None:
        inspector = scrubbing.CompressedBodyInspector(
            decoder, secret, max_decoded, lambda data: net_encoding.encode(data, encoding)
        )
        resp.stream = inspector.feed
    elif encoding == "identity" and not _small(resp):
        inspector = scrubbing.BodyKeeper(max_decoded)
        resp.stream = scrubbing.StreamScrubber(inspector.feed, secret).feed
    else:
        return None
    resp.headers.pop("content-length", None)  # the scrubbed body may differ in length
    if resp.http_version == "HTTP/1.1":
        resp.headers["transfer-encoding"] = "chunked"
    return inspector


def _small(resp: http.Response) -> bool:
    length = resp.headers.get("content-length", "")
    return length.isdigit() and int(length) <= scrubbing.PLAIN_INLINE_MAX


def scrubbed_stream(
    resp: http.Response, inner: Callable[[bytes], Forward], secret: str, max_decoded: int
) -> Callable[[bytes], Forward]:
    """``inner`` (the stream meter) wrapped so a streamed answer never carries the key.
    A content-encoded stream goes out as it came, checked on a decoded copy."""
    encoding = (resp.headers.get("content-encoding") or "identity").strip().lower()
    decoder = decoder_for(encoding) if encoding != "identity" else None
    return scrubbing.StreamScrubber(inner, secret, decoder, max_decoded=max_decoded).feed


def comment(
    state: FlowState,
    model: str | None,
    usage: Usage | None,
    cost_picousd: int | None,
    pending: bool = False,
) -> str:
    """``pending``: the writer estimates the usage; the comment then names no cost."""
    project = state.key.project if state.key else "?"
    parts = [project, model or "?"]
    if pending:
        return " · ".join([*parts, "usage: estimated later"])
    if usage is not None:
        parts.append(f"{usage.input_tokens} in / {usage.output_tokens} out")
        if usage.cached_input_tokens:
            parts.append(f"{usage.cached_input_tokens} cached")
    parts.append("unpriced" if cost_picousd is None else f"${format_usd(cost_picousd)}")
    return " · ".join(parts)


def error_kind(msg: str, state: FlowState, *, responded: bool) -> str:
    """Why a flow ended in mitmproxy's ``error`` hook, as a short stable word."""
    low = msg.lower()
    if state.timed_out:
        return "upstream_timeout"
    if "client disconnected" in low:
        return "client_disconnected"
    if "killed" in low:
        return "killed"
    if "server disconnected" in low or "peer closed" in low or "server closed" in low:
        return "upstream_disconnected"
    if not responded and ("server connection" in low or "connect" in low or "name or" in low):
        return "upstream_unreachable"
    return "proxy_error"


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close a flow's server connection so a hung upstream releases the client now.

    mitmproxy has no public call for this (``flow.kill()`` is only noticed at the flow's
    next event), so this uses the proxyserver's connection handlers and reports whether
    it could; the caller falls back to ``kill()``.
    """
    try:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(flow.client_conn.id)
        if handler is None or flow.server_conn not in handler.transports:
            return False
        handler.close_connection(flow.server_conn)
    except (AttributeError, KeyError, TypeError):
        return False
    return True


def cancel_timer(state: FlowState) -> None:
    if state.timer is not None:
        state.timer.cancel()
        state.timer = None
    if state.watch is not None:
        state.watch.cancel()
        state.watch = None


def watch_stream(flow: http.HTTPFlow, state: FlowState, config: Config) -> None:
    """Cut the flow's streamed response off past the configured duration or idle time."""
    resp = flow.response
    if resp is None or not (config.stream_max_s or config.stream_idle_s):
        return
    inner = resp.stream
    if not callable(inner):
        return

    def expire() -> None:
        state.timed_out = True
        if not close_upstream(flow) and flow.killable:
            flow.kill()

    watch = StreamWatch(
        asyncio.get_running_loop(),
        max_s=config.stream_max_s,
        idle_s=config.stream_idle_s,
        expire=expire,
    )
    state.watch = watch

    def feed(chunk: bytes) -> Any:
        watch.touch()
        return inner(chunk)

    resp.stream = feed


def health_signal(provider: Provider, resp: http.Response, body: bytes) -> Answer:
    """What an error answer says about the real key, read by the provider's own rules
    (``Provider.key_rejected``; Gemini names its wait in the body, not in retry-after)."""
    retry = retry_after_seconds(resp.headers)
    return judge(provider.key_rejected, provider.retry_hint, resp.status_code, body, retry)
