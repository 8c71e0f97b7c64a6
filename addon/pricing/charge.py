"""The cost of one request from what it used: tokens at the model's price, or media usage.

Shared by the writer (``addon.records``) and ``usage reprice``, so a stored record is priced
again exactly as it was priced when it was made. None means unpriced, never $0.
"""

from __future__ import annotations

from collections.abc import Iterator

from addon.metering.media import MediaUsage
from addon.metering.usage import Usage
from addon.pricing.cost import cost_picousd
from addon.pricing.media import media_cost_picousd
from addon.pricing.table import PriceBook


def token_cost(
    book: PriceBook, provider: str, model: str | None, usage: Usage, tier: str | None = None
) -> int | None:
    price = book.lookup(provider, model)
    return None if price is None else cost_picousd(usage, price, service_tier=tier)


def media_cost(book: PriceBook, provider: str, model: str | None, media: MediaUsage) -> int | None:
    """Priced by the model's own media entry, else (images) by its per-image entry for the
    request's quality and size (LiteLLM's ``high/1024-x-1024/gpt-image-1`` keys)."""
    for name in media_price_names(model, media):
        price = book.lookup_media(provider, name)
        if price is not None:
            cost = media_cost_picousd(price, media)
            if cost is not None:
                return cost
    return None


def media_price_names(model: str | None, media: MediaUsage) -> Iterator[str]:
    if not model or not model.strip():
        return
    name = model.strip().lower().removeprefix("models/")
    yield name
    if media.kind != "image" or not media.size:
        return
    size = media.size.strip().lower().replace("x", "-x-")
    quality = (media.quality or "").strip().lower()
    if quality and quality != "auto":
        yield f"{quality}/{size}/{name}"
    yield f"{size}/{name}"
