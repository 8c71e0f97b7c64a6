"""The response half of the gateway's hooks: meter what comes back (streams too), keep
real-key health, and hand exactly one usage record per request to the writer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mitmproxy import http

from addon import flowtools
from addon.flowstate import FlowState
from addon.injector import KeyInjector
from addon.metering.decoders import decode_bounded
from addon.metering.stream import Forward
from addon.metering.usage import MeterResult
from addon.providers.key_health import Answer
from addon.providers.wire import always_streams, parse_response, stream_meter
from addon.records import UsageDraft, charge
from addon.runtime import Runtime
from addon.writer import HealthEvent

log = logging.getLogger(__name__)


class ResponseSide:
    runtime: Runtime | None
    states: dict[str, FlowState]
    injector: KeyInjector

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.states.get(flow.id)
        if state is None:
            return
        self.injector.disarm(flow, state)
        flowtools.cancel_timer(state)
        if state.rejected is not None or flow.response is None or self.runtime is None:
            return
        try:
            resp = flow.response
            if state.secret:
                flowtools.scrub_headers(resp, state.secret)  # a stream sends them right away
            state.ttfb_ms = flowtools.ms_since(state.started_at)
            if state.upstream is not None:
                self.runtime.probe.saw_answer(*state.upstream)
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
                resp.stream = state.meter.feed
                if state.secret:
                    cap = self.runtime.config.max_decoded_bytes
                    resp.stream = flowtools.scrubbed_stream(resp, resp.stream, state.secret, cap)
                resp.stream = self._recorded_at_end(flow, state, resp.stream)
                flowtools.watch_stream(flow, state, self.runtime.config)
            elif state.secret:
                cap = self.runtime.config.max_decoded_bytes
                state.inspector = flowtools.inspect_buffered(flow, resp, state.secret, cap)
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

    def _report_health(self, state: FlowState, answer: Answer) -> None:
        if state.real_key is None or self.runtime is None:
            return
        before = self.runtime.pool.health(state.real_key)
        after = self.runtime.pool.report(state.real_key, answer, state.request_id)
        if after != before:
            self.runtime.writer.submit(HealthEvent(state.real_key.id, after))

    def _end(self, flow: http.HTTPFlow) -> FlowState | None:
        """The flow's state, taken out of the table: the flow is ending (response or error)
        and no longer carries the real key nor a pending timeout."""
        state = self.states.pop(flow.id, None)
        if state is not None:
            self.injector.disarm(flow, state)
            flowtools.cancel_timer(state)
            if state.real_key is not None and self.runtime is not None:
                self._release_trial(flow, state, self.runtime)
        return state

    @staticmethod
    def _release_trial(flow: http.HTTPFlow, state: FlowState, runtime: Runtime) -> None:
        """A trial request that ends without an answer to judge frees the key's trial slot
        (a success was judged at its headers; a buffered error is judged in `response`)."""
        resp = flow.response
        judged_next = (
            resp is not None
            and resp.status_code >= 400
            and state.rejected is None
            and state.meter is None
            and flow.error is None
        )
        if not judged_next and state.real_key is not None:
            runtime.pool.release(state.real_key, state.request_id)

    def response(self, flow: http.HTTPFlow) -> None:
        state = self._end(flow)
        if state is None:
            return
        resp = flow.response
        try:
            if state.rejected is not None:
                status = resp.status_code if resp is not None else None
                self._submit(state, error_kind=state.rejected.code, status=status)
                return
            assert resp is not None
            if state.recorded is not None:  # at the stream's end event
                self._annotate(flow, state, state.recorded)
                self._observe_overhead(flow, state)
                return
            if state.meter is not None:
                result = state.meter.result()
            else:
                body, over = self._buffered_body(flow, state)
                resp = flow.response or resp  # a withheld answer replaces it
                if over:  # the client gets every byte; the record is an estimate
                    result = MeterResult(error_kind="response_over_cap", estimated=True)
                    result.extras["decoded_over_cap"] = True
                    if state.inspector is not None and state.inspector.found:
                        result.error_kind = "answer_withheld"  # the key was past the cap
                else:
                    result = parse_response(state.api, body)
                if resp.status_code >= 400:
                    answer = flowtools.health_signal(state.provider, resp, body)
                    self._report_health(state, answer)
            upstream_error = f"upstream_{resp.status_code}" if resp.status_code >= 400 else None
            draft = self._submit(state, result=result, error_kind=upstream_error, flow=flow)
            self._annotate(flow, state, draft)
            self._observe_overhead(flow, state)
        except Exception:
            log.exception("tollkeeper: fault while recording a response")
            self._submit(
                state, error_kind="gateway_fault", status=resp.status_code if resp else None
            )

    def _buffered_body(self, flow: http.HTTPFlow, state: FlowState) -> tuple[bytes, bool]:
        """The answer's decoded body (at most the cap) for metering, and whether it was
        over the cap; an echoed real key is scrubbed from what the client gets."""
        cap = self.runtime.config.max_decoded_bytes if self.runtime else 64 << 20
        if state.inspector is not None:  # content-encoded or large: inspected as it arrived
            return state.inspector.decoded, state.inspector.over_cap
        if state.secret:
            flowtools.scrub(flow, state, state.secret, cap)
        resp = flow.response
        encoding = resp.headers.get("content-encoding") if resp else None
        return decode_bounded(resp.raw_content or b"" if resp else b"", encoding, cap)

    def error(self, flow: http.HTTPFlow) -> None:
        state = self._end(flow)
        if state is None:
            return
        msg = flow.error.msg if flow.error else ""
        kind = flowtools.error_kind(msg, state, responded=flow.response is not None)
        if state.recorded is not None:  # the whole answer had passed: a complete 200
            # (the sync openai SDK closes at ``[DONE]`` before the chunked terminator)
            self._annotate(flow, state, state.recorded)
            return
        result = state.meter.result() if state.meter is not None else None
        if kind == "upstream_unreachable" and state.upstream and self.runtime is not None:
            self.runtime.probe.forget(*state.upstream)
        status = flow.response.status_code if flow.response is not None else None
        if status is None:
            status = {"upstream_timeout": 504, "upstream_unreachable": 502}.get(kind)
        if kind == "upstream_unreachable":
            state.forwarded = False
        self._submit(state, result=result, error_kind=kind, status=status, aborted=True)
        seen_model = result.model if result is not None else None
        seen_usage = result.usage if result is not None else None
        flow.comment = f"tollkeeper: {kind} · " + flowtools.comment(
            state, seen_model or state.model, seen_usage, None, pending=seen_usage is None
        )
        flow.marked = ":warning:"

    def _observe_overhead(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """Gateway overhead: the request's time in the proxy (from its first byte until now,
        its answer in hand) minus the upstream's (from leaving until its answer ended)."""
        sent, resp = state.forwarded_at, flow.response
        if self.runtime is None or sent is None or resp is None:
            return
        now = time.time()
        upstream = (resp.timestamp_end or now) - sent
        total = now - flow.request.timestamp_start
        self.runtime.metrics.observe_overhead(state.provider.name, total - upstream)

    def _annotate(self, flow: http.HTTPFlow, state: FlowState, draft: UsageDraft | None) -> None:
        """The mitmweb comment of a forwarded request that got its answer: the cost its
        record gets (one computation), or 'estimated later' where the writer estimates."""
        if draft is not None and self.runtime is not None:
            c = charge(draft, self.runtime.prices, estimate=False)
            flow.comment = flowtools.comment(state, c.model, c.usage, c.cost_picousd, c.pending)
        else:
            flow.comment = flowtools.comment(state, state.model, None, None, pending=True)
        flow.marked = ":moneybag:"

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
        if self.runtime is None:
            return None
        resp = flow.response if flow is not None else None
        req_id_header = state.provider.request_id_header
        draft = UsageDraft(
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
            latency_ms=flowtools.ms_since(state.started_at),
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
        self.runtime.writer.submit(draft)
        return draft
