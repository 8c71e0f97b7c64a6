"""Small helpers that act on flows for the hooks: rejections, annotations, scrubbing."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

from mitmproxy import ctx, http

from addon.errors import GatewayError, render
from addon.flowstate import FlowState
from addon.metering.usage import Usage
from addon.pricing.cost import format_usd
from addon.providers.base import Provider
from addon.providers.key_health import Answer, judge


def reject(flow: http.HTTPFlow, state: FlowState, err: GatewayError) -> None:
    state.rejected = err
    flow.request.stream = False
    status, body, headers = render(err, state.provider.error_shape)
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


def scrub(flow: http.HTTPFlow, secret: str) -> None:
    """Remove a real key that an upstream echoed back in a (buffered) response."""
    resp = flow.response
    if resp is None or len(secret) < 8:
        return
    if resp.status_code >= 400:  # error answers are where providers echo credentials
        for name, value in list(resp.headers.items()):
            if secret in value:
                resp.headers[name] = value.replace(secret, "[tollkeeper:redacted]")
    content = resp.raw_content
    plain = resp.headers.get("content-encoding") in (None, "", "identity")
    if content is not None and plain and secret.encode() in content:
        resp.content = content.replace(secret.encode(), b"[tollkeeper:redacted]")


def comment(
    state: FlowState, model: str | None, usage: Usage | None, cost_picousd: int | None
) -> str:
    project = state.key.project if state.key else "?"
    parts = [project, model or "?"]
    if usage is None:
        parts.append("usage: estimated later")
    else:
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


def health_signal(provider: Provider, resp: http.Response, body: bytes) -> Answer:
    """What an error answer says about the real key, read by the provider's own rules
    (``Provider.key_rejected``; Gemini names its wait in the body, not in retry-after)."""
    retry = retry_after_seconds(resp.headers)
    return judge(provider.key_rejected, provider.retry_hint, resp.status_code, body, retry)
