"""What images, transcription and speech cost: media rates and the exact cost of one request.

Rates, all exact decimals (from LiteLLM's ``image_generation``, ``audio_transcription`` and
``audio_speech`` entries, see ``scripts/update_prices.py``):

- per-token rates in USD per million tokens, by modality: ``text_input``, ``text_cached_input``,
  ``text_output``, ``image_input``, ``image_cached_input``, ``image_output``, ``audio_input``,
  ``audio_output``;
- ``per_image`` in USD per image made, or ``per_pixel`` in USD per pixel of each image made
  (LiteLLM keeps one entry per quality and size: ``high/1024-x-1024/gpt-image-1``);
- ``input_per_second`` (transcription) and ``output_per_second`` (speech) in USD per second;
- ``per_mchar`` in USD per million characters of text to speak.

A request is priced by the first of these that it can be priced by, in this order: the token
counts the provider reported (every nonzero count needs a rate: an image or audio count falls
back to the text rate of its direction, a cached count to its uncached rate, as LiteLLM does);
seconds (transcription: reported ``duration``; speech: none is reported today); characters
(speech); images made times ``per_image`` (else times their pixels times ``per_pixel``).
Anything else is unpriced (None), never $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any

from addon.metering.media import MediaUsage, TokenSplit
from addon.pricing.codec import format_rate, parse_decimal

PICOUSD_PER_USD = 10**12
_PER_MTOK = PICOUSD_PER_USD // 10**6


@dataclass(frozen=True, kw_only=True)
class MediaPrice:
    text_input: Decimal | None = None
    text_cached_input: Decimal | None = None
    text_output: Decimal | None = None
    image_input: Decimal | None = None
    image_cached_input: Decimal | None = None
    image_output: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    per_image: Decimal | None = None
    per_pixel: Decimal | None = None
    input_per_second: Decimal | None = None
    output_per_second: Decimal | None = None
    per_mchar: Decimal | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, Decimal):
                raise TypeError(f"{f.name} must be a Decimal, not {type(value).__name__}")
            if value is not None and (not value.is_finite() or value < 0):
                raise ValueError(f"{f.name} must be a finite, non-negative number")
        if all(getattr(self, f.name) is None for f in fields(self)):
            raise ValueError("a media price needs at least one rate")


MEDIA_RATE_NAMES = tuple(f.name for f in fields(MediaPrice))


def media_price_from_json(data: Mapping[str, Any], what: str = "media") -> MediaPrice:
    """A MediaPrice from decimal strings by rate name; ValueError/TypeError if invalid."""
    unknown = sorted(set(data) - set(MEDIA_RATE_NAMES) - {"provider", "alias_of", "retired"})
    if unknown:
        raise ValueError(f"{what}: unknown media rate {unknown[0]!r}")
    rates = {n: parse_decimal(data[n], f"{what}.{n}") for n in MEDIA_RATE_NAMES if n in data}
    return MediaPrice(**rates)


def media_price_to_json(price: MediaPrice) -> dict[str, str]:
    return {
        n: format_rate(value) for n in MEDIA_RATE_NAMES if (value := getattr(price, n)) is not None
    }


def media_cost_picousd(price: MediaPrice, usage: MediaUsage) -> int | None:
    """What ``usage`` costs at ``price`` in picodollars, or None when it cannot be priced."""
    total = _by_tokens(price, usage.tokens) if usage.tokens is not None else None
    if total is None and usage.seconds is not None:
        rate = price.input_per_second if usage.kind == "transcription" else price.output_per_second
        total = None if rate is None else Fraction(usage.seconds) * Fraction(rate) * PICOUSD_PER_USD
    if total is None and usage.kind == "speech" and price.per_mchar is not None:
        total = usage.characters * Fraction(price.per_mchar) * _PER_MTOK
    if total is None and usage.kind == "image" and usage.images and price.per_image is not None:
        total = usage.images * Fraction(price.per_image) * PICOUSD_PER_USD
    pixels = _pixels(usage.size)
    if total is None and usage.kind == "image" and price.per_pixel is not None and pixels:
        total = usage.images * pixels * Fraction(price.per_pixel) * PICOUSD_PER_USD
    if total is None:
        return None
    return (2 * total.numerator + total.denominator) // (2 * total.denominator)


def _by_tokens(price: MediaPrice, s: TokenSplit) -> Fraction | None:
    p = price
    parts = (
        (s.text_input - s.cached_text_input, p.text_input),
        (s.cached_text_input, _first(p.text_cached_input, p.text_input)),
        (s.image_input - s.cached_image_input, _first(p.image_input, p.text_input)),
        (s.cached_image_input, _first(p.image_cached_input, p.image_input, p.text_input)),
        (s.audio_input, _first(p.audio_input, p.text_input)),
        (s.text_output, p.text_output),
        (s.image_output, _first(p.image_output, p.text_output)),
        (s.audio_output, _first(p.audio_output, p.text_output)),
    )
    if not any(n for n, _ in parts):
        return None  # nothing reported: price by seconds, characters or images instead
    total = Fraction(0)
    for tokens, rate in parts:
        if tokens <= 0:
            continue
        if rate is None:
            return None
        total += tokens * Fraction(rate)
    return total * _PER_MTOK


def _first(*rates: Decimal | None) -> Decimal | None:
    return next((r for r in rates if r is not None), None)


def _pixels(size: str | None) -> int:
    """Pixels of a ``WIDTHxHEIGHT`` size (``1024x1536``), 0 if it is not one."""
    width, sep, height = (size or "").strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return 0
    return int(width) * int(height)
