"""From what a flow showed to one usage record: estimates where usage is missing, and cost.

``finish`` runs on the writer thread (tiktoken is CPU work); the hooks' mitmweb comment uses
the same ``charge`` without the estimate; ``price`` is the admission's cheap token price.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from addon.metering.estimate import count_tokens
from addon.metering.media import (
    MediaUsage,
    media_kind,
    media_usage_from_json,
    request_facts,
)
from addon.metering.usage import MeterResult, Usage
from addon.pricing.charge import media_cost, token_cost
from addon.pricing.table import PriceBook
from addon.providers.wire import BILLABLE_APIS, FREE_APIS, TOKEN_APIS, estimate_prompt_tokens
from addon.store.rows import UsageRow

FREE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})  # reads and deletions


@dataclass
class UsageDraft:
    """Plain data handed from the event loop to the writer thread."""

    request_id: str
    created_at: datetime
    provider: str
    api: str
    endpoint: str
    method: str = "POST"
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
    end_user: str | None = None  # addon.attribution (old journal lines have none)
    tags: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def price(
    book: PriceBook,
    provider: str,
    model: str | None,
    usage: Usage | None,
    service_tier: str | None = None,
) -> int | None:
    """The token cost of ``usage`` (None: the model has no price; no usage: nothing)."""
    if usage is None:
        return 0
    return token_cost(book, provider, model, usage, service_tier)


def _needs_estimate(d: UsageDraft) -> bool:
    if not d.forwarded or d.api not in TOKEN_APIS:
        return False
    if d.status_code is not None and not 200 <= d.status_code < 300:
        return False
    if d.result is not None and _ended_in_error(d.result.error_kind) and not d.result.usage_final:
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
    book: PriceBook, d: UsageDraft, model: str | None, usage: Usage, tier: str | None
) -> int | None:
    """Priced by the model the provider reported; if that has no price and the operator
    mapped the deployment to a model (Azure), by that model."""
    cost = token_cost(book, d.provider, model, usage, tier)
    if cost is None and d.mapped_model:
        cost = token_cost(book, d.provider, d.mapped_model, usage, tier)
    return cost


def _succeeded(d: UsageDraft) -> bool:
    """The provider did the (billable) work: forwarded and answered 2xx (101: a websocket
    was opened), or cut short."""
    if not d.forwarded:
        return False
    return d.status_code is None or d.status_code == 101 or 200 <= d.status_code < 300


def metered(api: str, method: str) -> bool:
    """Whether the gateway meters (or knows to be free) what this request costs: token and
    media APIs, free APIs, and reads or deletions of anything else (``*.other``)."""
    if api in BILLABLE_APIS or api in FREE_APIS:
        return True
    return api.endswith(".other") and method.upper() in FREE_METHODS


def _unmetered(d: UsageDraft) -> bool:
    """A request the provider may bill that the gateway has no meter for."""
    return not metered(d.api, d.method) and _succeeded(d)


def _media(d: UsageDraft, result: MeterResult, kind: str) -> MediaUsage:
    """The media usage of a request: the response's facts, the request's where it is silent."""
    seen = result.extras.get("media")
    facts: dict[str, Any] = dict(seen) if isinstance(seen, dict) else {}
    asked = request_facts(d.api, d.request_body)
    if kind == "image" and "images" not in facts and _succeeded(d):
        facts["images"] = asked.get("n", 1)  # no answer to count: what was asked for
    for name in ("size", "quality", "characters"):
        if name not in facts and name in asked:
            facts[name] = asked[name]
    if "tokens" not in facts and result.usage is not None:  # a stream: totals only
        facts["tokens"] = _stream_tokens(kind, result.usage)
    return media_usage_from_json({**facts, "kind": kind}) or MediaUsage(kind=kind)


def _stream_tokens(kind: str, u: Usage) -> dict[str, int]:
    """A streamed media answer's usage totals by modality (image and speech streams end with
    input and output totals; their input is text, a transcription's is audio)."""
    if kind == "transcription":
        return {"audio_input": u.input_tokens, "text_output": u.output_tokens}
    out = "image_output" if kind == "image" else "audio_output"
    return {"text_input": u.input_tokens, out: u.output_tokens}


def _media_cost(book: PriceBook, d: UsageDraft, model: str | None, media: MediaUsage) -> int | None:
    cost = media_cost(book, d.provider, model, media)
    if cost is None and d.mapped_model:
        cost = media_cost(book, d.provider, d.mapped_model, media)
    return cost


def _clip(value: str | None, limit: int) -> str | None:
    """Strings from upstreams (model names, request ids) cut to their column's size."""
    return value if value is None or len(value) <= limit else value[:limit]


@dataclass(frozen=True)
class Charge:
    """What a draft costs: the one computation behind the record and the mitmweb comment."""

    model: str | None
    usage: Usage | None  # None: not metered, or (estimate=False) to be estimated later
    estimated: bool
    cost_picousd: int | None  # None: unpriced (see extras["unpriced"]) or not known yet
    extras: dict[str, Any]
    pending: bool = False  # the usage still has to be estimated on the writer thread


def charge(d: UsageDraft, book: PriceBook, *, estimate: bool = True) -> Charge:
    """The model, usage and cost a draft is recorded with. ``estimate=False`` (the event
    loop) skips the tiktoken estimate and says the cost is pending instead."""
    result = d.result or MeterResult()
    kind = media_kind(d.api)
    model = result.model or d.requested_model
    if kind is not None and model is None:
        model = request_facts(d.api, d.request_body).get("model")
    usage = result.usage
    estimated = result.estimated
    extras = {**result.extras, **d.extras}
    if _needs_estimate(d):
        if not estimate:
            return Charge(model, None, True, None, extras, pending=True)
        usage, estimated = _estimate(d, model), True
    if usage is not None and usage.cache_write_1h_tokens:  # no column; `usage reprice` reads it
        extras["cache_write_1h_tokens"] = usage.cache_write_1h_tokens
    tier = extras.get("service_tier")
    cost: int | None
    if kind is not None and _succeeded(d):
        media = _media(d, result, kind)
        extras["media"] = media.as_json()  # what `usage reprice` prices again
        cost = _media_cost(book, d, model, media)
    elif kind is not None:
        cost = 0  # refused or failed: providers do not bill it
    elif usage is None:
        cost = None if _unmetered(d) else 0
    else:
        cost = _cost(book, d, model, usage, tier if isinstance(tier, str) else None)
    if cost is None:
        extras["unpriced"] = _why_unpriced(kind, usage, model, d)
    return Charge(model, usage, estimated, cost, extras)


def finish(d: UsageDraft, book: PriceBook) -> UsageRow:
    c = charge(d, book)
    model, estimated, cost, extras = c.model, c.estimated, c.cost_picousd, c.extras
    u = c.usage or Usage()
    result = d.result or MeterResult()
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
        cost_picousd=cost,
        latency_ms=d.latency_ms,
        ttfb_ms=d.ttfb_ms,
        streamed=result.streamed,
        estimated=estimated,
        error_kind=_clip(d.error_kind or result.error_kind, 64),
        provider_request_id=_clip(d.provider_request_id, 200),
        extras_json=json.dumps(extras, sort_keys=True, default=str),
        end_user=_clip(d.end_user, 128),
        tags=d.tags,
    )


def _why_unpriced(kind: str | None, usage: Usage | None, model: str | None, d: UsageDraft) -> str:
    if kind is None and usage is None:
        return "endpoint_not_metered"
    if not model:
        return "model_unknown"
    return "no_price_for_model" if kind is None else "no_media_price_for_usage"


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
        end_user=_clip(d.end_user, 128),
        tags=d.tags if isinstance(d.tags, str) else "",
    )
