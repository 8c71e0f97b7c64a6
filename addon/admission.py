"""Admitting a request of a key with limits: estimate it, then reserve it in the database.

Runs in a worker thread (tiktoken and the database are blocking); the hooks await it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.errors import NotAllowed
from addon.keycache import KeyInfo
from addon.limits import Limits
from addon.metering.estimate import estimate_prompt_tokens
from addon.metering.media import MediaUsage, media_kind, request_facts
from addon.metering.usage import Usage
from addon.pricing.charge import media_cost
from addon.pricing.table import PriceBook
from addon.records import metered, price
from addon.store.limits_repo import admit

OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def check_metered(key: KeyInfo, api: str, method: str) -> None:
    """A key with a budget or a TPM limit reaches only endpoints the gateway meters (or knows
    to be free), so its limits hold for everything it spends; ``allow_unmetered`` lifts this
    (such requests are then recorded as unpriced). Raises ``NotAllowed`` (403)."""
    limited = key.budget_picousd is not None or key.tpm is not None
    if limited and not key.allow_unmetered and not metered(api, method):
        raise NotAllowed(
            f"The virtual key {key.id} has a budget or token limit and may use only endpoints"
            " tollkeeper meters; this one is not metered (keys update --allow-unmetered)."
        )


def estimate(api: str, model: str | None, raw_body: bytes | None) -> tuple[int, int]:
    """(prompt tokens, output tokens the client allows) for a request body."""
    if not raw_body:
        return 0, 0
    try:
        body: Any = json.loads(raw_body)
    except ValueError:
        return 0, 0
    prompt = estimate_prompt_tokens(api, body, model)
    output = 0
    if isinstance(body, dict):
        for name in OUTPUT_LIMIT_FIELDS:
            value = body.get(name)
            if isinstance(value, int) and value > 0:
                output = value
                break
    return prompt, output


def reservation(
    prices: PriceBook, provider: str, api: str, model: str | None, raw_body: bytes | None
) -> tuple[int, int]:
    """(picodollars, tokens) to reserve for a request, from its own body: the prompt estimate
    plus ``max_tokens``, priced; for images and speech, what the request asks for, priced."""
    kind = media_kind(api)
    if kind is not None:
        return media_reservation(prices, provider, api, kind, model, raw_body), 0
    prompt, output = estimate(api, model, raw_body)
    cost = price(prices, provider, model, Usage(input_tokens=prompt, output_tokens=output))
    return cost or 0, prompt + output


def media_reservation(
    prices: PriceBook, provider: str, api: str, kind: str, model: str | None, body: bytes | None
) -> int:
    """Images: ``n`` images at the per-image price of the requested quality and size (an
    unset or ``auto`` one: high, 1024x1024); speech: its characters. Transcriptions: 0 (the
    duration is known only from the answer)."""
    facts = request_facts(api, body)
    model = model or facts.get("model")
    if kind == "image":
        size, quality = facts.get("size"), facts.get("quality")
        usage = MediaUsage(
            kind="image",
            images=facts.get("n", 1),
            size=size if size and size != "auto" else "1024x1024",
            quality=quality if quality and quality != "auto" else "high",
        )
    elif kind == "speech":
        usage = MediaUsage(kind="speech", characters=facts.get("characters", 0))
    else:
        return 0
    return media_cost(prices, provider, model, usage) or 0


def admit_request(
    *,
    engine: Engine,
    prices: PriceBook,
    limits: Limits,
    request_id: str,
    provider: str,
    api: str,
    model: str | None,
    raw_body: bytes | None,
    ttl: timedelta,
) -> None:
    """Reserve the request or raise ``LimitExceeded``."""
    cost, tokens = reservation(prices, provider, api, model, raw_body)
    with Session(engine) as session:
        admit(
            session=session,
            limits=limits,
            request_id=request_id,
            now=datetime.now(UTC),
            reserve_picousd=cost,
            reserve_tokens=tokens,
            ttl=ttl,
        )
