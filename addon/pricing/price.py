"""What a model costs: rates in exact decimal USD per million tokens.

A missing (``None``) rate falls back when a cost is computed, the way LiteLLM bills:
``cached_input`` and ``cache_write_5m`` to ``input``; ``cache_write_1h`` to ``cache_write_5m``
(then ``input``); ``reasoning`` to ``output``. Zero is a real price, never a fallback.

``tiers`` are long-context prices: a tier applies when a request's ``input_tokens`` (cache
included) exceed its ``threshold_tokens``, and then *every* rate of the request is the tier's.
``flex``, ``priority`` and ``batch`` are the same model bought another way; each is a complete
``Price`` of its own (with its own tiers) and has no variants itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

RATE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_5m_per_mtok",
    "cache_write_1h_per_mtok",
    "reasoning_per_mtok",
)
VARIANTS = ("flex", "priority", "batch")


def _check_rate(name: str, value: object, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, Decimal):  # a float here would be a bug upstream, not a price
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative number, not {value}")


@dataclass(frozen=True, kw_only=True)
class Rates:
    """The six per-token rates, in USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    cache_write_5m_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            _check_rate(name, getattr(self, name), required=name in RATE_FIELDS[:2])

    @property
    def cached_input(self) -> Decimal:
        return (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )

    @property
    def cache_write_5m(self) -> Decimal:
        rate = self.cache_write_5m_per_mtok
        return self.input_per_mtok if rate is None else rate

    @property
    def cache_write_1h(self) -> Decimal:
        rate = self.cache_write_1h_per_mtok
        return self.cache_write_5m if rate is None else rate


@dataclass(frozen=True, kw_only=True)
class Tier(Rates):
    """Rates that replace all others once ``input_tokens > threshold_tokens``."""

    threshold_tokens: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.threshold_tokens, bool) or not isinstance(self.threshold_tokens, int):
            raise TypeError("threshold_tokens must be an int")
        if self.threshold_tokens < 0:
            raise ValueError("threshold_tokens must not be negative")


@dataclass(frozen=True, kw_only=True)
class Price(Rates):
    """The price of one model: standard rates, long-context tiers and purchase variants."""

    tiers: tuple[Tier, ...] = ()
    flex: Price | None = None
    priority: Price | None = None
    batch: Price | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        thresholds = [t.threshold_tokens for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers must have distinct thresholds in ascending order")
        for name in VARIANTS:
            variant = getattr(self, name)
            if variant is not None and any(getattr(variant, v) is not None for v in VARIANTS):
                raise ValueError(f"the {name} price must not have variants of its own")

    def variant(self, name: str) -> Price | None:
        """The ``flex``, ``priority`` or ``batch`` price, if the model has one."""
        if name not in VARIANTS:
            raise ValueError(f"unknown price variant {name!r}")
        variant: Price | None = getattr(self, name)
        return variant

    def rates_for(self, input_tokens: int) -> Rates:
        """The rates a request with this many input tokens (cache included) is billed at."""
        chosen: Rates = self
        for tier in self.tiers:
            if input_tokens > tier.threshold_tokens:
                chosen = tier
        return chosen


def rate_values(rates: Rates) -> dict[str, Decimal | None]:
    """The six rate fields of ``rates`` (a Price or a Tier) by field name."""
    return {name: getattr(rates, name) for name in RATE_FIELDS}
