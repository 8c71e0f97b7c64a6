"""The cost of one request, exact, in integer picodollars (1e-12 USD).

The formula is LiteLLM's ``cost_per_token`` (reference/providers.md §4.4) on tollkeeper's token
convention, where ``input_tokens`` includes cache reads and writes and ``output_tokens`` includes
reasoning::

    uncached = input - cache_read - cache_write
    cost = uncached * input + cache_read * cached_input
         + (cache_write - cache_write_1h) * cache_write_5m + cache_write_1h * cache_write_1h
         + (output - reasoning) * output + reasoning * reasoning   # reasoning rate, if any

Rates are chosen first by purchase (``batch``, else ``service_tier`` flex/priority, when the
model has such a price), then by long-context tier: above a tier's threshold every rate is the
tier's. Arithmetic is exact, on integers (the rates' ratios are cached: converting a Decimal
costs more than the rest of the sum, and the writer prices every record); only the final
sub-picodollar remainder is rounded, half up. Counts a provider reports inconsistently (more
cached than prompt tokens, more reasoning than output) are clamped so that no part of the
bill goes negative.
"""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache

from addon.metering.usage import Usage
from addon.pricing.price import Price, Rates

PICOUSD_PER_USD = 10**12
_PICOUSD_PER_MTOK_RATE = PICOUSD_PER_USD // 10**6  # a rate per 1M tokens, per token, in pUSD
_SERVICE_TIERS = ("flex", "priority")
_COUNTS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def select_price(price: Price, *, service_tier: str | None = None, batch: bool = False) -> Price:
    """The standard, batch, flex or priority price a request is billed at."""
    if batch:
        return price.batch or price
    tier = (service_tier or "").strip().lower()
    if tier in _SERVICE_TIERS:
        return price.variant(tier) or price
    return price


def cost_picousd(
    usage: Usage, price: Price, *, service_tier: str | None = None, batch: bool = False
) -> int:
    """What ``usage`` costs at ``price``, in picodollars. ValueError on negative counts."""
    for name in _COUNTS:
        _check_count(usage, name)
    rates = select_price(price, service_tier=service_tier, batch=batch).rates_for(
        usage.input_tokens
    )
    terms = _input_terms(usage, rates) + _output_terms(usage, rates)
    ratios = [(tokens, _ratio(rate)) for tokens, rate in terms if tokens]
    den = math.lcm(*(d for _, (_, d) in ratios)) if ratios else 1
    num = sum(tokens * n * (den // d) for tokens, (n, d) in ratios) * _PICOUSD_PER_MTOK_RATE
    return (2 * num + den) // (2 * den)


@lru_cache(maxsize=4096)
def _ratio(rate: Decimal) -> tuple[int, int]:
    return rate.as_integer_ratio()


def _check_count(usage: Usage, name: str) -> None:
    value = getattr(usage, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Usage.{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"Usage.{name} is negative ({value})")


Terms = list[tuple[int, Decimal]]  # (tokens, rate in USD per 1M tokens)


def _input_terms(usage: Usage, rates: Rates) -> Terms:
    writes_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    writes_5m = usage.cache_write_tokens - writes_1h
    uncached = max(usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens, 0)
    return [
        (uncached, rates.input_per_mtok),
        (usage.cached_input_tokens, rates.cached_input),
        (writes_5m, rates.cache_write_5m),
        (writes_1h, rates.cache_write_1h),
    ]


def _output_terms(usage: Usage, rates: Rates) -> Terms:
    if rates.reasoning_per_mtok is None:
        return [(usage.output_tokens, rates.output_per_mtok)]
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    text = usage.output_tokens - reasoning
    return [(text, rates.output_per_mtok), (reasoning, rates.reasoning_per_mtok)]


def picousd_to_usd(picousd: int) -> Decimal:
    """Picodollars as an exact Decimal amount of USD."""
    if isinstance(picousd, bool) or not isinstance(picousd, int):
        raise TypeError(f"expected an int of picodollars, not {type(picousd).__name__}")
    return Decimal(f"{picousd}e-12")  # exact at any size, unlike division under a context


def format_usd(picousd: int) -> str:
    """Picodollars as a plain decimal string of USD: 127200000 -> "0.0001272", 0 -> "0"."""
    text = format(picousd_to_usd(picousd), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def usd_text(picousd: int) -> str:
    """Exact decimal USD from picodollars with at least two decimals: ``0.50``, ``0.000123``
    (the form reports print)."""
    sign = "-" if picousd < 0 else ""
    whole, frac = divmod(abs(picousd), PICOUSD_PER_USD)
    digits = f"{frac:012d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"
