"""From what a flow showed to one usage record: estimates where usage is missing, and cost.

``finish`` runs on the writer thread (tiktoken is CPU work); ``price`` is cheap and also
used by the hooks for the mitmweb comment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from addon.metering.estimate import count_tokens, estimate_prompt_tokens
from addon.metering.usage import MeterResult, Usage
from addon.pricing.cost import cost_picousd
from addon.pricing.table import PriceBook
from addon.store.rows import UsageRow

BILLABLE_APIS = frozenset(
    {
        "openai.chat",
        "openai.completions",
        "openai.embeddings",
        "openai.responses",
        "anthropic.messages",
        "gemini.generate",
        "gemini.stream",
    }
)


@dataclass
class UsageDraft:
    """Plain data handed from the event loop to the writer thread."""

    request_id: str
    created_at: datetime
    provider: str
    api: str
    endpoint: str
    virtual_key_id: str | None = None
    project: str | None = None
    real_key_label: str | None = None
    requested_model: str | None = None
    mapped_model: str | None = None  # Azure: the deployment's model, for pricing
    status_code: int | None = None
    latency_ms: int | None = None
    ttfb_ms: int | None = None
    error_kind: str | None = None
    provider_request_id: str | None = None
    forwarded: bool = False  # the request reached the provider
    aborted: bool = False  # the exchange ended early (disconnect, cut, timeout)
    result: MeterResult | None = None
    request_body: bytes | None = None  # kept only where an estimate may be needed
    extras: dict[str, Any] = field(default_factory=dict)


def price(
    book: PriceBook,
    provider: str,
    model: str | None,
    usage: Usage | None,
    service_tier: str | None = None,
) -> int | None:
    if usage is None:
        return 0
    p = book.lookup(provider, model)
    return None if p is None else cost_picousd(usage, p, service_tier=service_tier)


def _needs_estimate(d: UsageDraft) -> bool:
    if not d.forwarded or d.api not in BILLABLE_APIS:
        return False
    if d.status_code is not None and not 200 <= d.status_code < 300:
        return False
    if d.result is not None and _ended_in_error(d.result.error_kind):
        return True  # an error event after HTTP 200: what usage there is, is partial
    return d.result is None or d.result.usage is None or d.aborted


def _ended_in_error(kind: str | None) -> bool:
    return bool(kind) and str(kind).startswith(("stream_error", "response_failed"))


def _estimate(d: UsageDraft, model: str | None) -> Usage:
    known = d.result.usage if d.result is not None else None
    text = d.result.output_text if d.result is not None else ""
    output = count_tokens(text, model) if text else 0
    if known is not None:
        return Usage(
            input_tokens=known.input_tokens,
            cached_input_tokens=known.cached_input_tokens,
            cache_write_tokens=known.cache_write_tokens,
            cache_write_1h_tokens=known.cache_write_1h_tokens,
            output_tokens=max(known.output_tokens, output),
            reasoning_tokens=known.reasoning_tokens,
        )
    prompt = 0
    if d.request_body:
        try:
            prompt = estimate_prompt_tokens(d.api, json.loads(d.request_body), model)
        except ValueError:
            prompt = 0
    return Usage(input_tokens=prompt, output_tokens=output)


def _cost(
    book: PriceBook, d: UsageDraft, model: str | None, usage: Usage | None, tier: str | None
) -> int | None:
    """Priced by the model the provider reported; if that has no price and the operator
    mapped the deployment to a model (Azure), by that model."""
    cost = price(book, d.provider, model, usage, tier)
    if cost is None and d.mapped_model:
        cost = price(book, d.provider, d.mapped_model, usage, tier)
    return cost


def _clip(value: str | None, limit: int) -> str | None:
    """Strings from upstreams (model names, request ids) cut to their column's size."""
    return value if value is None or len(value) <= limit else value[:limit]


def finish(d: UsageDraft, book: PriceBook) -> UsageRow:
    result = d.result or MeterResult()
    model = result.model or d.requested_model
    usage = result.usage
    estimated = result.estimated
    if _needs_estimate(d):
        usage, estimated = _estimate(d, model), True
    u = usage or Usage()
    extras = {**result.extras, **d.extras}
    if u.cache_write_1h_tokens:  # no column of its own; `usage reprice` reads it back
        extras["cache_write_1h_tokens"] = u.cache_write_1h_tokens
    tier = extras.get("service_tier")
    return UsageRow(
        request_id=d.request_id,
        created_at=d.created_at,
        virtual_key_id=d.virtual_key_id,
        project=_clip(d.project, 200),
        provider=d.provider,
        real_key_label=_clip(d.real_key_label, 200),
        endpoint=d.endpoint[:200],
        model=_clip(model, 200),
        status_code=d.status_code,
        input_tokens=u.input_tokens,
        cached_input_tokens=u.cached_input_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cost_picousd=_cost(book, d, model, usage, tier if isinstance(tier, str) else None),
        latency_ms=d.latency_ms,
        ttfb_ms=d.ttfb_ms,
        streamed=result.streamed,
        estimated=estimated,
        error_kind=_clip(d.error_kind or result.error_kind, 64),
        provider_request_id=_clip(d.provider_request_id, 200),
        extras_json=json.dumps(extras, sort_keys=True, default=str),
    )


def minimal_record(d: UsageDraft, error_kind: str) -> UsageRow:
    """The part of a draft that is plain fact (who called, which provider, the status),
    for a draft that ``finish`` could not turn into a record: never a lost request."""
    return UsageRow(
        request_id=str(d.request_id)[:64],
        created_at=d.created_at if isinstance(d.created_at, datetime) else datetime.now(UTC),
        virtual_key_id=_clip(d.virtual_key_id, 16),
        project=_clip(d.project, 200),
        provider=str(d.provider)[:64],
        real_key_label=_clip(d.real_key_label, 200),
        endpoint=str(d.endpoint)[:200],
        model=_clip(d.requested_model, 200),
        status_code=d.status_code,
        input_tokens=0,
        cached_input_tokens=0,
        cache_write_tokens=0,
        output_tokens=0,
        reasoning_tokens=0,
        cost_picousd=None,
        latency_ms=d.latency_ms,
        ttfb_ms=d.ttfb_ms,
        streamed=False,
        estimated=True,
        error_kind=_clip(error_kind, 64),
        provider_request_id=None,
        extras_json="{}",
    )
