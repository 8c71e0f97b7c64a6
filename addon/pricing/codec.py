"""Prices to and from JSON: the bundled table's nested entries and flat override rows.

Both forms hold decimal strings in USD per million tokens and may be sparse; a missing rate is
filled in the way LiteLLM 1.110.2 bills (``litellm_core_utils/llm_cost_calc/utils.py``):

- a tier inherits what it does not set from the tier below it (or the standard rates),
  except ``reasoning``, which applies only where it is given (else the tier's output rate);
- ``flex``/``priority`` inherit each missing rate from the standard price, their tiers from
  the standard tier at the same threshold, then from the tier below; ``reasoning`` is not
  inherited when the variant sets its own output rate;
- ``batch`` inherits input, output and cache-read rates from the standard price, but its
  cache writes fall back within the batch price (as LiteLLM's batch path does), and its
  tiers come only from batch tier keys.

Flat override keys read ``[flex_|priority_|batch_]<rate>[_above_<threshold>]``, e.g.
``{"input": "2.5", "output": "10", "batch_input": "1.25", "input_above_200000": "5"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from addon.pricing.price import RATE_FIELDS, VARIANTS, Price, Rates, Tier

RATE_NAMES = ("input", "output", "cached_input", "cache_write_5m", "cache_write_1h", "reasoning")
_FIELD = dict(zip(RATE_NAMES, RATE_FIELDS, strict=True))
_NAME = {f: n for n, f in _FIELD.items()}
_FLAT_KEY = re.compile(
    rf"^(?:({'|'.join(VARIANTS)})_)?({'|'.join(RATE_NAMES)})(?:_above_(\d+))?$",
)
_CACHE_WRITES = ("cache_write_5m", "cache_write_1h")

RateMap = dict[str, Decimal]  # rate name -> USD per 1M tokens


@dataclass
class Sparse:
    """Rates as written, before any inheritance: flat rates and rates per tier threshold."""

    flat: RateMap = field(default_factory=dict)
    tiers: dict[int, RateMap] = field(default_factory=dict)


def parse_decimal(text: object, what: str) -> Decimal:
    if not isinstance(text, str | int) or isinstance(text, bool):
        raise TypeError(f"{what}: expected a decimal string, got {type(text).__name__}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}: not a decimal number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what}: must be a finite, non-negative number, not {text!r}")
    return value


def _kwargs(values: RateMap) -> dict[str, Any]:
    missing = [n for n in ("input", "output") if n not in values]
    if missing:
        raise ValueError(f"no {' or '.join(missing)} rate")
    return {_FIELD[name]: value for name, value in values.items()}


def _tiers(start: RateMap, sources: Mapping[int, RateMap]) -> tuple[Tier, ...]:
    below = {k: v for k, v in start.items() if k != "reasoning"}
    tiers = []
    for threshold in sorted(sources):
        given = sources[threshold]
        below |= {k: v for k, v in given.items() if k != "reasoning"}
        rates = below | ({"reasoning": given["reasoning"]} if "reasoning" in given else {})
        tiers.append(Tier(threshold_tokens=threshold, **_kwargs(rates)))
    return tuple(tiers)


def _price(flat: RateMap, tiers: tuple[Tier, ...], variants: Mapping[str, Price]) -> Price:
    flex, priority, batch = (variants.get(name) for name in VARIANTS)
    return Price(**_kwargs(flat), tiers=tiers, flex=flex, priority=priority, batch=batch)


def _variant(name: str, base: Sparse, own: Sparse) -> Price:
    inherited = dict(base.flat)
    if name == "batch":
        for key in _CACHE_WRITES:
            inherited.pop(key, None)
    if "output" in own.flat and "reasoning" not in own.flat:
        inherited.pop("reasoning", None)
    flat = inherited | own.flat
    if name == "batch":
        sources = own.tiers
    else:
        sources = {t: base.tiers.get(t, {}) | own.tiers.get(t, {}) for t in base.tiers | own.tiers}
    return _price(flat, _tiers(flat, sources), {})


def build_price(base: Sparse, variants: Mapping[str, Sparse]) -> Price:
    """A complete Price from sparse rates, filling gaps as the module docstring describes."""
    built = {name: _variant(name, base, own) for name, own in variants.items()}
    return _price(base.flat, _tiers(base.flat, base.tiers), built)


def _sparse_nested(entry: Mapping[str, Any], what: str) -> Sparse:
    sparse = Sparse({n: parse_decimal(entry[n], f"{what}.{n}") for n in RATE_NAMES if n in entry})
    for tier in entry.get("tiers", ()):
        threshold = int(tier["threshold"])
        rates = {n: parse_decimal(tier[n], f"{what}.tiers.{n}") for n in RATE_NAMES if n in tier}
        sparse.tiers[threshold] = rates
    return sparse


def price_from_bundled(entry: Mapping[str, Any], what: str = "price") -> Price:
    """A Price from one model of ``prices.json`` (nested: ``tiers`` list, variant objects)."""
    variants = {v: _sparse_nested(entry[v], f"{what}.{v}") for v in VARIANTS if v in entry}
    return build_price(_sparse_nested(entry, what), variants)


def price_from_json(data: Mapping[str, str]) -> Price:
    """A Price from a flat mapping of decimal strings (an override row); ValueError if invalid."""
    parts: dict[str, Sparse] = {}
    for key, text in data.items():
        m = _FLAT_KEY.match(key)
        if m is None:
            raise ValueError(f"unknown price field {key!r}")
        variant, name, threshold = m.group(1) or "", m.group(2), m.group(3)
        sparse = parts.setdefault(variant, Sparse())
        target = sparse.flat if threshold is None else sparse.tiers.setdefault(int(threshold), {})
        target[name] = parse_decimal(text, key)
    base = parts.pop("", Sparse())
    return build_price(base, parts)


def _flat(rates: Rates, prefix: str, suffix: str) -> dict[str, str]:
    return {
        f"{prefix}{_NAME[f]}{suffix}": format_rate(value)
        for f in RATE_FIELDS
        if (value := getattr(rates, f)) is not None
    }


def price_to_json(price: Price) -> dict[str, str]:
    """The flat, explicit form of ``price``; ``price_from_json`` reads it back unchanged."""
    out: dict[str, str] = {}
    for prefix, part in [("", price)] + [(f"{v}_", price.variant(v)) for v in VARIANTS]:
        if part is None:
            continue
        out |= _flat(part, prefix, "")
        for tier in part.tiers:
            out |= _flat(tier, prefix, f"_above_{tier.threshold_tokens}")
    return out


def format_rate(value: Decimal) -> str:
    """A rate as a plain decimal string without exponent or trailing zeros: "0.075", "10"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
