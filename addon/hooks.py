"""The gateway addon: the only code that reads and changes mitmproxy flows.

Every hook that decides (auth, key swap, policy) fails closed: an unexpected exception
answers a provider-shaped 500 and is recorded, never forwarded unmetered. Every provider
request that reaches a hook ends as exactly one usage record, from ``response`` or
``error`` (or ``done`` for flows still open at shutdown).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from mitmproxy import ctx, exceptions, http

from addon import auth, flowtools, options
from addon.admission import admit_request
from addon.errors import (
    BudgetExceeded,
    GatewayError,
    GatewayFault,
    NoRealKey,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from addon.flowstate import FlowState
from addon.injector import KeyInjector, placeholder
from addon.limits import Limits
from addon.metering.json_usage import parse_response
from addon.metering.stream import StreamMeter
from addon.metering.usage import MeterResult
from addon.providers.base import ANTHROPIC
from addon.providers.registry import allow_hosts_patterns, by_host
from addon.records import BILLABLE_APIS, UsageDraft, price
from addon.runtime import Runtime
from addon.store.db import StoreUnavailable
from addon.store.limits_repo import LimitExceeded
from addon.upstream import parse_base_url, upstream_path
from addon.vault import VaultError
from addon.writer import HealthEvent

log = logging.getLogger(__name__)

MAX_PARSE_BYTES = 32 * 1024 * 1024
INCLUDE_USAGE_APIS = ("openai.chat", "openai.completions")


class Gateway:
    name = "tollkeeper"

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.states: dict[str, FlowState] = {}
        self.injector = KeyInjector(self.states)

    # --- lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        options.declare(loader)

    def configure(self, updated: set[str]) -> None:
        self._proxy_defaults(updated)
        if self.runtime is not None and not updated & options.OPTION_NAMES:
            return
        try:
            config = options.parse(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        if self.runtime is not None and self.runtime.config == config:
            return
        try:
            runtime = Runtime(config)
        except (StoreUnavailable, VaultError, OSError) as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        runtime.start()
        old, self.runtime = self.runtime, runtime
        if old is not None:
            old.stop()

    @staticmethod
    def _proxy_defaults(updated: set[str]) -> None:
        """Options the gateway needs, set before the listeners start accepting."""
        opts = ctx.options
        if "connection_strategy" in updated and opts.connection_strategy != "lazy":
            log.warning("tollkeeper: setting connection_strategy=lazy (needed to reroute)")
            opts.update(connection_strategy="lazy")
        user_chose = opts.allow_hosts or opts.ignore_hosts
        if {"allow_hosts", "ignore_hosts"} & updated and not user_chose:
            opts.update(allow_hosts=allow_hosts_patterns())

    def running(self) -> None:
        if ctx.master.addons.get(self.injector.name) is None:
            ctx.master.addons.add(self.injector)

    def done(self) -> None:
        for state in list(self.states.values()):
            if state.flow is not None:
                self.injector.disarm(state.flow, state)
            self._submit(state, aborted=True, error_kind="gateway_shutdown")
        self.states.clear()
        if ctx.master.addons.get(self.injector.name) is not None:
            ctx.master.addons.remove(self.injector)
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None

    def update(self, flows: Any) -> None:
        """Keep mitmweb from being sent a flow while it carries a real key."""
        armed = self.injector.armed
        if armed and any(f.id in armed for f in flows):
            raise exceptions.AddonHalt()

    # --- request path ----------------------------------------------------------------

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        provider = by_host(flow.request.host)
        if provider is None or self.runtime is None:
            return
        path = flow.request.path
        state = FlowState(
            provider=provider,
            api=provider.api_for(flow.request.method, path),
            endpoint=path.split("?", 1)[0][:200],
            flow=flow,
        )
        self.states[flow.id] = state
        try:
            await self._admit(flow, state, self.runtime)
        except GatewayError as e:
            self._reject(flow, state, e)
        except Exception:
            log.exception("tollkeeper: fault while admitting a request")
            self._reject(flow, state, GatewayFault("tollkeeper gateway fault; not forwarded"))

    async def _admit(self, flow: http.HTTPFlow, state: FlowState, rt: Runtime) -> None:
        provider, headers = state.provider, flow.request.headers
        presented = auth.presented_credential(provider, headers)
        for name in (*auth.CREDENTIAL_HEADERS, *provider.strip_headers):
            headers.pop(name, None)
        key_id = auth.key_id_of(presented)
        assert presented is not None
        info = rt.cache.keys.get(key_id) or await asyncio.to_thread(rt.cache.load_one, key_id)
        now = datetime.now(UTC)
        state.key = auth.check_key(presented, info, provider.name, now)
        flow.metadata["tollkeeper"] = {
            "request_id": state.request_id,
            "key_id": state.key.id,
            "project": state.key.project,
            "provider": provider.name,
        }
        pool = rt.cache.real_keys.get(provider.name, ())
        real = rt.pool.pick(pool, now)
        if real is None:
            raise NoRealKey(
                f"No usable {provider.name} API key is configured in tollkeeper.",
                retry_after_s=rt.pool.soonest_retry(pool, now),
            )
        state.real_key = real
        flow.metadata["tollkeeper"]["real_key"] = real.label
        state.secret = rt.vault.resolve(ciphertext=real.ciphertext, env_ref=real.env_ref)
        target = parse_base_url(real.base_url or provider.default_base_url)
        new_path = upstream_path(flow.request.path, provider.base_path, target.path_prefix)
        flow.request.scheme, flow.request.host = target.scheme, target.host
        flow.request.port, flow.request.path = target.port, new_path
        if provider.auth == ANTHROPIC:
            state.secret_header, state.secret_value = "x-api-key", state.secret
        else:
            state.secret_header, state.secret_value = "authorization", f"Bearer {state.secret}"
        headers[state.secret_header] = placeholder(state)
        flow.request.anticomp()
        state.upstream = (target.host, target.port)
        if rt.config.probe_upstream:
            problem = await rt.probe.check(target.host, target.port)
            if problem == "timeout":
                raise UpstreamTimeout(f"The {provider.name} upstream did not accept a connection.")
            if problem is not None:
                raise UpstreamUnreachable(f"The {provider.name} upstream is unreachable.")
        if rt.config.upstream_timeout_s:
            loop = asyncio.get_running_loop()
            state.timer = loop.call_later(rt.config.upstream_timeout_s, self._timeout, flow)

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.states.get(flow.id)
        if state is None or state.rejected is not None or flow.response is not None:
            return
        try:
            self._inspect_body(flow, state)
            await self._enforce_limits(state)
            state.forwarded = True
        except GatewayError as e:
            self._reject(flow, state, e)
        except Exception:
            log.exception("tollkeeper: fault while inspecting a request")
            self._reject(flow, state, GatewayFault("tollkeeper gateway fault; not forwarded"))

    def _inspect_body(self, flow: http.HTTPFlow, state: FlowState) -> None:
        raw = flow.request.raw_content
        body: Any = None
        if raw and len(raw) <= MAX_PARSE_BYTES:
            try:
                body = json.loads(flow.request.get_content(strict=False) or b"")
            except ValueError:
                body = None  # the provider answers malformed JSON with its own 400
        if isinstance(body, dict):
            model = body.get("model")
            state.model = model if isinstance(model, str) else None
            opt_in = state.provider.stream_usage_opt_in
            if opt_in and state.api in INCLUDE_USAGE_APIS and body.get("stream") is True:
                self._inject_include_usage(flow, state, body)
        if state.key is not None:
            auth.check_model(state.key, state.model)
        if state.api in BILLABLE_APIS:
            state.request_body = raw

    async def _enforce_limits(self, state: FlowState) -> None:
        key, rt = state.key, self.runtime
        if key is None or rt is None:
            return
        limits = Limits(
            key.id, key.budget_picousd, key.budget_period, key.rpm, key.tpm, key.max_parallel
        )
        if not limits.any:
            return
        try:
            await asyncio.to_thread(
                admit_request,
                engine=rt.engine,
                prices=rt.prices,
                limits=limits,
                request_id=state.request_id,
                provider=state.provider.name,
                api=state.api,
                model=state.model,
                raw_body=state.request_body,
                ttl=timedelta(seconds=(rt.config.upstream_timeout_s or 3600) + 60),
            )
        except LimitExceeded as e:
            if e.kind == "budget":
                raise BudgetExceeded(f"The virtual key {key.id}: {e.message}.") from None
            raise RateLimited(
                f"The virtual key {key.id}: {e.message}.", retry_after_s=e.retry_after_s
            ) from None

    @staticmethod
    def _inject_include_usage(flow: http.HTTPFlow, state: FlowState, body: dict[str, Any]) -> None:
        opts = body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage") is True:
            return
        merged = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
        flow.request.set_content(json.dumps({**body, "stream_options": merged}).encode())
        state.injected_usage = True

    def _reject(self, flow: http.HTTPFlow, state: FlowState, err: GatewayError) -> None:
        self.injector.disarm(flow, state)
        _cancel(state)
        flowtools.reject(flow, state, err)

    def _timeout(self, flow: http.HTTPFlow) -> None:
        state = self.states.get(flow.id)
        if state is None or flow.response is not None or not flow.live:
            return
        state.timed_out = True
        if not flowtools.close_upstream(flow) and flow.killable:
            flow.kill()  # noticed by mitmproxy only when the upstream finally answers

    # --- response path ---------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.states.get(flow.id)
        if state is None:
            return
        self.injector.disarm(flow, state)
        _cancel(state)
        if state.rejected is not None or flow.response is None or self.runtime is None:
            return
        try:
            resp = flow.response
            state.ttfb_ms = flowtools.ms_since(state.started_at)
            if state.upstream is not None:
                self.runtime.probe.saw_answer(*state.upstream)
            self._report_health(state, resp)
            if "event-stream" in resp.headers.get("content-type", ""):
                state.meter = StreamMeter(
                    state.api,
                    strip_injected_usage=state.injected_usage,
                    content_encoding=resp.headers.get("content-encoding"),
                )
                resp.stream = state.meter.feed
        except Exception:
            log.exception("tollkeeper: fault in responseheaders")

    def _report_health(self, state: FlowState, resp: http.Response) -> None:
        if state.real_key is None or self.runtime is None:
            return
        before = self.runtime.pool.health(state.real_key)
        retry = flowtools.retry_after_seconds(resp.headers)
        after = self.runtime.pool.report(state.real_key, resp.status_code, retry)
        if after != before:
            self.runtime.writer.submit(HealthEvent(state.real_key.id, after))

    def response(self, flow: http.HTTPFlow) -> None:
        state = self.states.pop(flow.id, None)
        if state is None:
            return
        self.injector.disarm(flow, state)
        _cancel(state)
        resp = flow.response
        try:
            if state.rejected is not None:
                status = resp.status_code if resp is not None else None
                self._submit(state, error_kind=state.rejected.code, status=status)
                return
            assert resp is not None
            if state.meter is not None:
                result = state.meter.result()
            else:
                if state.secret:
                    flowtools.scrub(flow, state.secret)
                result = parse_response(state.api, resp.get_content(strict=False) or b"")
            upstream_error = f"upstream_{resp.status_code}" if resp.status_code >= 400 else None
            draft = self._submit(state, result=result, error_kind=upstream_error, flow=flow)
            usage = result.usage
            model = result.model or state.model
            cost = (
                None
                if draft is None
                else price(self.runtime.prices, state.provider.name, model, usage)
                if self.runtime
                else None
            )
            flow.comment = flowtools.comment(state, model, usage, cost)
            flow.marked = ":moneybag:"
        except Exception:
            log.exception("tollkeeper: fault while recording a response")
            self._submit(
                state, error_kind="gateway_fault", status=resp.status_code if resp else None
            )

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.states.pop(flow.id, None)
        if state is None:
            return
        self.injector.disarm(flow, state)
        _cancel(state)
        kind = flowtools.error_kind(flow.error.msg if flow.error else "", state)
        if kind == "upstream_unreachable" and state.upstream and self.runtime is not None:
            self.runtime.probe.forget(*state.upstream)
        status = flow.response.status_code if flow.response is not None else None
        if status is None:
            status = {"upstream_timeout": 504, "upstream_unreachable": 502}.get(kind)
        result = state.meter.result() if state.meter is not None else None
        if kind == "upstream_unreachable":
            state.forwarded = False
        self._submit(state, result=result, error_kind=kind, status=status, aborted=True)
        seen_model = result.model if result is not None else None
        seen_usage = result.usage if result is not None else None
        flow.comment = f"tollkeeper: {kind} · " + flowtools.comment(
            state, seen_model or state.model, seen_usage, None
        )
        flow.marked = ":warning:"

    # --- recording -------------------------------------------------------------------

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
        req_id_header = (
            "request-id" if state.provider.error_shape == "anthropic" else "x-request-id"
        )
        draft = UsageDraft(
            request_id=state.request_id,
            created_at=datetime.fromtimestamp(state.started_at, UTC),
            provider=state.provider.name,
            api=state.api,
            endpoint=state.endpoint,
            virtual_key_id=state.key.id if state.key else None,
            project=state.key.project if state.key else None,
            real_key_label=state.real_key.label if state.real_key else None,
            requested_model=state.model,
            status_code=resp.status_code if resp is not None else status,
            latency_ms=flowtools.ms_since(state.started_at),
            ttfb_ms=state.ttfb_ms,
            error_kind=error_kind,
            provider_request_id=resp.headers.get(req_id_header) if resp is not None else None,
            forwarded=state.forwarded,
            aborted=aborted,
            result=result,
            request_body=state.request_body,
        )
        self.runtime.writer.submit(draft)
        return draft


def _cancel(state: FlowState) -> None:
    if state.timer is not None:
        state.timer.cancel()
        state.timer = None
