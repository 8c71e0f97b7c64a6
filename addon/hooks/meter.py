"""Metering the answer (streams too), keeping real-key health, and handing exactly one
usage record per admitted request to the writer: at a stream's end event, at ``response``
or ``error``, or at ``done`` for flows still open at shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from mitmproxy import http

from addon.flowstate import FlowState
from addon.hooks.cutoff import watch_stream
from addon.hooks.shared import Shared
from addon.metering.decoders import decode_bounded
from addon.metering.stream import Forward
from addon.metering.usage import MeterResult
from addon.providers.base import Provider
from addon.providers.key_health import Answer, judge
from addon.providers.wire import always_streams, parse_response, stream_meter
from addon.records import UsageDraft
from addon.writer import HealthEvent

log = logging.getLogger(__name__)

ANSWERED = "answered"  # FlowState.ended_as of a flow whose answer was metered


class Meter:
    name = "tollkeeper-meter"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None:
            return
        state.stop_timers()
        resp, runtime = flow.response, self.shared.runtime
        if state.rejected is not None or resp is None or runtime is None:
            return
        try:
            state.ttfb_ms = ms_since(state.started_at)
            if state.upstream is not None:
                runtime.probe.saw_answer(*state.upstream)
            if resp.status_code < 400:  # errors: judged in `response`, with their body
                self._report_health(state, Answer("ok"))
            content_type = resp.headers.get("content-type", "")
            streamed = "event-stream" in content_type or always_streams(state.api)
            if streamed and resp.status_code < 400:  # an error is small: buffered and judged
                state.meter = stream_meter(
                    state.api,
                    strip_injected_usage=state.injected_usage,
                    content_encoding=resp.headers.get("content-encoding"),
                    content_type=content_type,
                )
                if state.meter.decodes_for_client:  # compressed despite our identity request
                    resp.headers.pop("content-encoding", None)
                    resp.headers.pop("content-length", None)
                resp.stream = self._recorded_at_end(flow, state, state.meter.feed)
                watch_stream(flow, state, runtime.config)
        except Exception:
            log.exception("tollkeeper: fault in responseheaders")

    def _recorded_at_end(
        self, flow: http.HTTPFlow, state: FlowState, feed: Callable[[bytes], Forward]
    ) -> Callable[[bytes], Forward]:
        """``feed`` that submits (journals) the record once the stream's end event is metered,
        before that chunk goes to the client: a client that has the whole answer has its
        record, even if the gateway is killed before the upstream's last bytes arrive."""

        def fed(chunk: bytes) -> Forward:
            out = feed(chunk)
            meter = state.meter
            if state.recorded is None and meter is not None and meter.finished:
                state.recorded = self._submit(state, result=meter.result(), flow=flow)
            return out

        return fed

    def response(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None:
            return
        self._end(flow, state)
        resp = flow.response
        try:
            if state.rejected is not None:
                status = resp.status_code if resp is not None else None
                self._submit(state, error_kind=state.rejected.code, status=status)
                return
            assert resp is not None
            if state.recorded is not None:  # at the stream's end event
                state.result, state.ended_as = state.recorded, ANSWERED
                self._observe_overhead(flow, state)
                return
            if state.meter is not None:
                result = state.meter.result()
            else:
                body, over = self._buffered_body(flow, state)
                if over:  # the client gets every byte; the record is an estimate
                    result = MeterResult(error_kind="response_over_cap", estimated=True)
                    result.extras["decoded_over_cap"] = True
                    if state.inspector is not None and state.inspector.found:
                        result.error_kind = "answer_withheld"  # the key was past the cap
                else:
                    result = parse_response(state.api, body)
                if resp.status_code >= 400:
                    self._report_health(state, health_signal(state.provider, resp, body))
            upstream_error = f"upstream_{resp.status_code}" if resp.status_code >= 400 else None
            draft = self._submit(state, result=result, error_kind=upstream_error, flow=flow)
            state.result, state.ended_as = draft, ANSWERED
            self._observe_overhead(flow, state)
        except Exception:
            log.exception("tollkeeper: fault while recording a response")
            self._submit(
                state, error_kind="gateway_fault", status=resp.status_code if resp else None
            )

    def _buffered_body(self, flow: http.HTTPFlow, state: FlowState) -> tuple[bytes, bool]:
        """The answer's decoded body (at most the cap) for metering, and whether it was
        over the cap (hooks.secrets scrubbed it first)."""
        if state.inspector is not None:  # content-encoded or large: inspected as it arrived
            return state.inspector.decoded, state.inspector.over_cap
        runtime, resp = self.shared.runtime, flow.response
        cap = runtime.config.max_decoded_bytes if runtime is not None else 64 << 20
        encoding = resp.headers.get("content-encoding") if resp else None
        return decode_bounded(resp.raw_content or b"" if resp else b"", encoding, cap)

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None:
            return
        self._end(flow, state)
        msg = flow.error.msg if flow.error else ""
        kind = error_kind(msg, state, responded=flow.response is not None)
        if state.recorded is not None:  # the whole answer had passed: a complete 200
            # (the sync openai SDK closes at ``[DONE]`` before the chunked terminator)
            state.result, state.ended_as = state.recorded, ANSWERED
            return
        runtime = self.shared.runtime
        result = state.meter.result() if state.meter is not None else None
        if kind == "upstream_unreachable" and state.upstream and runtime is not None:
            runtime.probe.forget(*state.upstream)
        status = flow.response.status_code if flow.response is not None else None
        if status is None:
            status = {"upstream_timeout": 504, "upstream_unreachable": 502}.get(kind)
        if kind == "upstream_unreachable":
            state.forwarded = False
        draft = self._submit(state, result=result, error_kind=kind, status=status, aborted=True)
        state.result, state.ended_as = draft, kind

    def done(self) -> None:
        for state in self.shared.flows:
            if state.recorded is not None:
                continue  # recorded at its stream's end event
            result = state.meter.result() if state.meter is not None else None
            self._submit(state, result=result, aborted=True, error_kind="gateway_shutdown")

    def _end(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """The flow is ending (response or error): no pending timeout, and a trial request
        that ends without an answer to judge frees the key's trial slot (a success was
        judged at its headers; a buffered error is judged in `response`)."""
        state.stop_timers()
        runtime, resp = self.shared.runtime, flow.response
        if state.real_key is None or runtime is None:
            return
        judged_next = (
            resp is not None
            and resp.status_code >= 400
            and state.rejected is None
            and state.meter is None
            and flow.error is None
        )
        if not judged_next:
            runtime.pool.release(state.real_key, state.request_id)

    def _report_health(self, state: FlowState, answer: Answer) -> None:
        runtime = self.shared.runtime
        if state.real_key is None or runtime is None:
            return
        before = runtime.pool.health(state.real_key)
        after = runtime.pool.report(state.real_key, answer, state.request_id)
        if after != before:
            runtime.writer.submit(HealthEvent(state.real_key.id, after))

    def _observe_overhead(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """Gateway overhead: the request's time in the proxy (from its first byte until now,
        its answer in hand) minus the upstream's (from leaving until its answer ended)."""
        sent, resp, runtime = state.forwarded_at, flow.response, self.shared.runtime
        if runtime is None or sent is None or resp is None:
            return
        now = time.time()
        upstream = (resp.timestamp_end or now) - sent
        total = now - flow.request.timestamp_start
        runtime.metrics.observe_overhead(state.provider.name, total - upstream)

    def _submit(
        self,
        state: FlowState,
        *,
        result: MeterResult | None = None,
        error_kind: str | None = None,
        status: int | None = None,
        aborted: bool = False,
        flow: http.HTTPFlow | None = None,
    ) -> UsageDraft | None:
        runtime = self.shared.runtime
        if runtime is None:
            return None
        draft = _draft(state, result, error_kind, status, aborted, flow)
        runtime.writer.submit(draft)
        return draft


def _draft(
    state: FlowState,
    result: MeterResult | None,
    error_kind: str | None,
    status: int | None,
    aborted: bool,
    flow: http.HTTPFlow | None,
) -> UsageDraft:
    resp = flow.response if flow is not None else None
    req_id_header = state.provider.request_id_header
    return UsageDraft(
        request_id=state.request_id,
        created_at=datetime.fromtimestamp(state.started_at, UTC),
        provider=state.provider.name,
        api=state.api,
        endpoint=state.endpoint,
        method=state.flow.request.method if state.flow is not None else "POST",
        virtual_key_id=state.key.id if state.key else None,
        project=state.key.project if state.key else None,
        real_key_label=state.real_key.label if state.real_key else None,
        requested_model=state.model,
        mapped_model=state.mapped_model,
        status_code=resp.status_code if resp is not None else status,
        latency_ms=ms_since(state.started_at),
        ttfb_ms=state.ttfb_ms,
        error_kind=error_kind,
        provider_request_id=(resp.headers.get(req_id_header) if resp is not None else None)
        or (result.provider_request_id if result is not None else None),
        forwarded=state.forwarded,
        aborted=aborted,
        result=result,
        request_body=state.request_body,
        end_user=state.end_user,
        tags=state.tags,
    )


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


def health_signal(provider: Provider, resp: http.Response, body: bytes) -> Answer:
    """What an error answer says about the real key, read by the provider's own rules
    (``Provider.key_rejected``; Gemini names its wait in the body, not in retry-after)."""
    retry = retry_after_seconds(resp.headers)
    return judge(provider.key_rejected, provider.retry_hint, resp.status_code, body, retry)
