"""Admitting a request: who is calling, which real key, where to, and whether the request
may go (policy, limits). Fails closed: an unexpected exception answers a provider-shaped 500
(recorded by the meter), never forwards the request unmetered."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mitmproxy import http

from addon import attribution, auth, binding
from addon.admission import check_metered
from addon.errors import (
    BudgetExceeded,
    GatewayError,
    GatewayFault,
    InvalidAttribution,
    InvalidRequest,
    NoRealKey,
    NotAllowed,
    NotRecording,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from addon.flowstate import FlowState
from addon.hooks.cutoff import cut
from addon.hooks.shared import Shared
from addon.limits import Limits
from addon.metering.decoders import decode_bounded
from addon.pool import describe_unavailable
from addon.providers.base import Provider
from addon.providers.registry import Registry
from addon.providers.wire import BILLABLE_APIS
from addon.runtime import Runtime
from addon.store.limits_repo import LimitExceeded
from addon.upstream import parse_base_url, upstream_path

log = logging.getLogger(__name__)

MAX_PARSE_BYTES = 32 * 1024 * 1024
NOT_RECORDING_RETRY_S = 5


def named_provider(flow: http.HTTPFlow, registry: Registry) -> Provider | None:
    """The provider a request names (TLS SNI, Host header) when its destination is not a
    provider host: such a request must not pass the gateway unmetered."""
    host_header = (flow.request.host_header or "").rsplit(":", 1)[0].strip("[]")
    for name in (flow.client_conn.sni, host_header):
        found = registry.by_host(name) if name else None
        if found is not None:
            return found
    return None


def reject(flow: http.HTTPFlow, state: FlowState, err: GatewayError) -> None:
    """Answer the flow with the provider-shaped error instead of forwarding it."""
    state.rejected = err
    flow.request.stream = False
    status, body, headers = state.provider.render_error(err)
    flow.response = http.Response.make(status, body, headers)
    flow.marked = ":no_entry:"
    flow.comment = f"tollkeeper rejected ({err.code}): {err.message}"


class Admit:
    """``requestheaders``: the key check, the real key and the reroute; ``request``: the
    body's model and attribution, the key's policy and limits."""

    name = "tollkeeper-admit"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        runtime = self.shared.runtime
        if runtime is None:
            return
        registry = runtime.cache.registry
        provider, misdirected = registry.by_host(flow.request.host), False
        if provider is None:
            provider, misdirected = named_provider(flow, registry), True
        if provider is None:
            return
        path = flow.request.path
        state = FlowState(
            provider=provider,
            api=provider.api_for(flow.request.method, path),
            endpoint=path.split("?", 1)[0].split("#", 1)[0][:200],
            flow=flow,
            model=provider.model_in_path(path) if provider.model_in_path else None,
        )
        self.shared.flows.add(flow, state)
        try:
            if misdirected:  # e.g. CONNECT <ip>:443 with a provider's SNI: never unmetered
                raise NotAllowed(
                    f"This request names the {provider.name} API but goes to "
                    f"{flow.request.host}; connect to the provider by its host name."
                )
            await self._admit(flow, state, runtime)
        except GatewayError as e:
            self._reject(flow, state, e)
        except Exception:
            log.exception("tollkeeper: fault while admitting a request")
            self._reject(flow, state, GatewayFault("tollkeeper gateway fault; not forwarded"))

    async def _admit(self, flow: http.HTTPFlow, state: FlowState, rt: Runtime) -> None:
        provider, headers = state.provider, flow.request.headers
        presented = auth.presented_credential(provider, headers, flow.request.query)
        for name in auth.credential_headers(provider, headers.items(multi=True)):
            headers.pop(name, None)
        query = flow.request.query
        for name in auth.credential_params(query.items(multi=True)):
            del query[name]  # never upstream, never stored, whatever the provider
        named = self._take_attribution(headers)
        key_id = auth.key_id_of(presented)
        assert presented is not None
        info = await rt.lookups.find(key_id)
        now = datetime.now(UTC)
        state.key = auth.check_key(presented, info, provider.name, now)
        if isinstance(named, ValueError):  # after the key check: strangers get their 401
            raise InvalidAttribution(str(named))
        self._check_target(flow.request.path)
        state.end_user, state.tags = named.user, named.tags_text
        flow.metadata["tollkeeper"] = {
            "request_id": state.request_id,
            "key_id": state.key.id,
            "project": state.key.project,
            "provider": provider.name,
        }
        if not rt.writer.accepting:  # a flag: the writer can keep no record right now
            raise NotRecording(
                "tollkeeper cannot record usage right now; not forwarded.",
                retry_after_s=NOT_RECORDING_RETRY_S,
            )
        pool = binding.bound_keys(
            provider, rt.cache.real_keys.get(provider.name, ()), flow.request.host
        )
        health_now = rt.pool.now()
        real = rt.pool.pick(pool, health_now, state.request_id)
        if real is None:
            raise NoRealKey(
                describe_unavailable(provider.name, pool, rt.pool, health_now),
                retry_after_s=rt.pool.soonest_retry(pool, health_now),
            )
        state.real_key = real
        flow.metadata["tollkeeper"]["real_key"] = real.label
        state.secret = rt.vault.resolve(ciphertext=real.ciphertext, env_ref=real.env_ref)
        if real.base_url or not provider.keeps_destination:
            target = parse_base_url(real.base_url or provider.default_base_url)
            new_path = upstream_path(flow.request.path, provider.base_path, target.path_prefix)
            flow.request.scheme, flow.request.host = target.scheme, target.host
            flow.request.port, flow.request.path = target.port, new_path
        state.secret_header, state.secret_value = provider.auth.real_header(state.secret)
        headers[state.secret_header] = self.shared.injector.arm(state)
        target_host, target_port = flow.request.host, flow.request.port
        flow.request.anticomp()
        state.upstream = (target_host, target_port)
        if rt.config.probe_upstream:
            problem = await rt.probe.check(target_host, target_port)
            if problem == "timeout":
                raise UpstreamTimeout(f"The {provider.name} upstream did not accept a connection.")
            if problem is not None:
                raise UpstreamUnreachable(f"The {provider.name} upstream is unreachable.")
        if rt.config.upstream_timeout_s:
            loop = asyncio.get_running_loop()
            state.timer = loop.call_later(rt.config.upstream_timeout_s, self._timeout, flow)

    @staticmethod
    def _check_target(path: str) -> None:
        """What is left of the path once credentials are gone must carry none: the query
        view stops at a ``#`` (a key behind it would go on), and a path segment is no place
        for a virtual key."""
        if "#" in path:
            raise InvalidRequest(
                "The request target holds a fragment ('#'), which HTTP clients never send;"
                " not forwarded."
            )
        if auth.carries_key(path):
            raise InvalidRequest("The request path holds a virtual key; not forwarded.")

    @staticmethod
    def _take_attribution(headers: http.Headers) -> attribution.Attribution | ValueError:
        """The end user and tags the gateway headers name, removed from the request (they
        are for the gateway, never for the provider), or what is wrong with them."""
        named: attribution.Attribution | ValueError
        try:
            named = attribution.parse_headers(headers.items(multi=True))
        except ValueError as e:
            named = e
        present = {name.lower() for name, _ in headers.fields}  # bytes, one pass
        for name in attribution.HEADERS:
            if name.encode() in present:  # a missing one would cost a failed lookup
                del headers[name]
        return named

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None or state.rejected is not None or flow.response is not None:
            return
        try:
            self._inspect_body(flow, state)
            await self._enforce_limits(state)
            state.forwarded, state.forwarded_at = True, time.time()
        except GatewayError as e:
            self._reject(flow, state, e)
        except Exception:
            log.exception("tollkeeper: fault while inspecting a request")
            self._reject(flow, state, GatewayFault("tollkeeper gateway fault; not forwarded"))

    def _inspect_body(self, flow: http.HTTPFlow, state: FlowState) -> None:
        raw = flow.request.raw_content
        body: Any = None
        if raw and len(raw) <= MAX_PARSE_BYTES:
            encoding = flow.request.headers.get("content-encoding")
            text, over = decode_bounded(raw, encoding, MAX_PARSE_BYTES)  # no request bomb
            try:
                body = None if over else json.loads(text or b"")
            except ValueError:
                body = None  # the provider answers malformed JSON with its own 400
            except RecursionError:
                body, raw = None, None  # absurdly nested: not parsed here, nor estimated later
        if isinstance(body, dict):
            model = body.get("model")
            if isinstance(model, str):
                state.model = model
            if state.end_user is None:  # the header wins; the body is never changed
                state.end_user = attribution.body_user(body)
            injects = state.provider.injects_include_usage(state.api)
            if injects and body.get("stream") is True:
                self._inject_include_usage(flow, state, body)
        real = state.real_key
        if real is not None and real.model_map and state.model:
            state.mapped_model = dict(real.model_map).get(state.model)  # an Azure deployment
        if state.key is not None:
            auth.check_model(state.key, state.mapped_model or state.model)
            check_metered(state.key, state.api, flow.request.method)
        if state.api in BILLABLE_APIS:
            state.request_body = raw

    async def _enforce_limits(self, state: FlowState) -> None:
        key, rt = state.key, self.shared.runtime
        if key is None or rt is None:
            return
        limits = Limits(
            key.id, key.budget_picousd, key.budget_period, key.rpm, key.tpm, key.max_parallel
        )
        if not limits.any:
            return
        try:
            await rt.admission.admit(
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
        self.shared.injector.disarm(flow, state)
        state.stop_timers()
        reject(flow, state, err)

    def _timeout(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None or flow.response is not None or not flow.live:
            return
        cut(flow, state)
