"""Keeping the real key out of flows: the placeholder disarmed once the upstream answers,
an echoed key scrubbed from answers (headers, bodies, streams), mitmproxy's wire patch.

Both addons fail closed: a fault while guarding an answer that may carry the key withholds
it (a buffered answer) or kills the flow (a stream), rather than let it pass unchecked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from mitmproxy import http
from mitmproxy.net import encoding as net_encoding

from addon import scrubbing
from addon.errors import AnswerWithheld
from addon.flowstate import FlowState
from addon.hooks.shared import Shared
from addon.metering.decoders import decoder_for
from addon.metering.stream import Forward

log = logging.getLogger(__name__)

DEFAULT_MAX_DECODED = 64 << 20  # without a runtime (never while serving)


class ScrubAnswers:
    """``response``, before the meter reads the body: a buffered answer that echoes the
    real key gets it replaced, or is withheld where it cannot be rewritten."""

    name = "tollkeeper-scrub-answers"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def response(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None or state.rejected is not None or not state.secret:
            return
        if state.meter is not None or state.inspector is not None:
            return  # streamed: scrubbed chunk by chunk as it passed
        try:
            scrub(flow, state, state.secret, self._cap())
        except Exception:
            log.exception("tollkeeper: fault while scrubbing an answer; withheld")
            withhold(flow, state)

    def _cap(self) -> int:
        runtime = self.shared.runtime
        return runtime.config.max_decoded_bytes if runtime is not None else DEFAULT_MAX_DECODED


class KeepSecrets:
    """The injector's wire patch installed while loaded; at the answer's headers the
    placeholder is disarmed (the flow never again carries the key, mitmweb and saved flows
    included) and the answer is guarded: its headers scrubbed, a stream wrapped in a
    scrubber, a buffered answer that would stall the loop inspected as it arrives.

    Runs after the meter in ``responseheaders``: it wraps the meter's stream."""

    name = "tollkeeper-keep-secrets"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def load(self, loader: Any) -> None:
        self.shared.injector.wire.install()  # raises (mitmdump exits) if mitmproxy moved

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None:
            return
        self.shared.injector.disarm(flow, state)
        resp, runtime = flow.response, self.shared.runtime
        if state.rejected is not None or resp is None or runtime is None or not state.secret:
            return
        try:
            scrub_headers(resp, state.secret)  # a stream sends them right away
            cap = runtime.config.max_decoded_bytes
            if state.meter is not None and callable(resp.stream):
                metered = cast(Callable[[bytes], Forward], resp.stream)  # hooks.meter's feed
                resp.stream = scrubbed_stream(resp, metered, state.secret, cap)
            else:
                state.inspector = inspect_buffered(flow, resp, state.secret, cap)
        except Exception:
            log.exception("tollkeeper: fault while guarding an answer; cut off")
            if flow.killable:
                flow.kill()

    def response(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)

    def done(self) -> None:
        for state in self.shared.flows:
            self.shared.injector.disarm(state.flow, state)
        self.shared.injector.wire.uninstall()

    def _disarm(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is not None:
            self.shared.injector.disarm(flow, state)


def withhold(flow: http.HTTPFlow, state: FlowState) -> None:
    err = AnswerWithheld("The upstream's answer contained the real API key; withheld.")
    status, body, headers = state.provider.render_error(err)
    flow.response = http.Response.make(status, body, headers)


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
        withhold(flow, state)


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
