"""The cost of a stored usage record at a book's prices: what ``usage reprice`` computes.

The tokens are the record's columns; 1-hour cache writes, the service tier and the media usage
(images, transcription, speech) come from its ``extras_json``.
"""

from __future__ import annotations

import json
from typing import Any

from addon.metering.media import media_usage_from_json
from addon.metering.usage import Usage
from addon.pricing.charge import media_cost
from addon.pricing.cost import cost_picousd
from addon.pricing.table import PriceBook

MAX_PICOUSD = 2**63 - 1  # what the BIGINT cost column holds


def record_usage(row: Any) -> tuple[Usage, str | None]:
    """The tokens of a stored record as a Usage, and its service tier (from extras)."""
    extras = _extras(row)
    writes_1h = extras.get("cache_write_1h_tokens", 0)
    if isinstance(writes_1h, bool) or not isinstance(writes_1h, int) or writes_1h < 0:
        writes_1h = 0
    tier = extras.get("service_tier")
    usage = Usage(
        input_tokens=row.input_tokens,
        cached_input_tokens=row.cached_input_tokens,
        cache_write_tokens=row.cache_write_tokens,
        cache_write_1h_tokens=writes_1h,
        output_tokens=row.output_tokens,
        reasoning_tokens=row.reasoning_tokens,
    )
    return usage, tier if isinstance(tier, str) else None


def _extras(row: Any) -> dict[str, Any]:
    try:
        extras = json.loads(row.extras_json or "{}")
    except json.JSONDecodeError:
        return {}
    return extras if isinstance(extras, dict) else {}


def current_cost(row: Any, book: PriceBook) -> int | None:
    """The record's cost at the book's prices, or None when it has no price: its model has
    none, its media usage cannot be priced, or its endpoint is not metered (no usage to
    price, so it stays unpriced whatever its model costs)."""
    extras = _extras(row)
    if extras.get("unpriced") == "endpoint_not_metered":
        return None
    media = media_usage_from_json(extras.get("media"))
    if media is not None:
        cost = media_cost(book, row.provider, row.model, media)
    else:
        price = book.lookup(row.provider, row.model)
        if price is None:
            return None
        usage, tier = record_usage(row)
        try:
            cost = cost_picousd(usage, price, service_tier=tier)
        except ValueError as e:
            raise ValueError(f"usage record {row.id}: {e}") from e
    if cost is None:
        return None
    if cost > MAX_PICOUSD:
        raise ValueError(f"usage record {row.id}: cost {cost} picodollars is too large to store")
    return cost
