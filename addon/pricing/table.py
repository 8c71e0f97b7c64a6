"""The price book: the bundled LiteLLM-derived table plus operator overrides, and name lookup.

``lookup(provider, model)`` tries, case-insensitively and in this order, for the model name as
given (a leading ``models/`` dropped; an OpenAI fine-tune also as ``ft:<base>``), then without
a ``-latest`` suffix, then without a date suffix (``-2024-07-18``, ``-20250929``): first the
provider-prefixed key (``gemini/…``, ``azure/…``), then the bare key. Overrides are searched
first and win whatever their provider; bundled entries must belong to the provider asked for
(Azure may also use OpenAI's list price). A model that matches nothing is ``None`` — the
caller records it as unpriced, never as $0.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal

from addon.pricing.codec import price_from_bundled, price_from_json, price_to_json
from addon.pricing.media import MediaPrice, media_price_from_json
from addon.pricing.price import Price, Rates, Tier

__all__ = ["Price", "PriceBook", "Rates", "Tier", "price_from_json", "price_to_json"]

Source = Literal["bundled", "override"]

# tollkeeper provider name -> the prefix LiteLLM uses for that provider's keys
_PREFIX = MappingProxyType({"together": "together_ai", "fireworks": "fireworks_ai"})
# providers whose models may also be priced by another provider's bundled entries
_ALSO = MappingProxyType({"azure": ("openai",)})
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


_MEMO_MAX = 10_000  # distinct (provider, model) pairs remembered


@dataclass(frozen=True)
class _Entry:
    model: str  # as written in the table
    provider: str
    price: Price


@dataclass(frozen=True)
class _MediaEntry:
    model: str
    provider: str
    price: MediaPrice


def _prefix(provider: str) -> str:
    name = provider.strip().lower()
    return _PREFIX.get(name, name)


def _names(model: str) -> Iterator[str]:
    """The model name, then its ``-latest`` and date-suffix-free forms."""
    name = model.strip().lower().removeprefix("models/")
    yield name
    if name.startswith("ft:"):  # OpenAI fine-tune "ft:<base>:<org>:<name>:<id>" -> "ft:<base>"
        name = ":".join(name.split(":", 2)[:2])
        yield name
    if name.endswith("-latest"):
        yield name.removesuffix("-latest")
    undated = _DATE_SUFFIX.sub("", name)
    if undated != name:
        yield undated


def _keys(prefix: str, model: str) -> Iterator[str]:
    for name in _names(model):
        if prefix and not name.startswith(f"{prefix}/"):
            yield f"{prefix}/{name}"
        yield name


class PriceBook:
    """Immutable: ``with_overrides`` returns a new book."""

    def __init__(
        self,
        bundled: Mapping[str, _Entry],
        overrides: Mapping[str, tuple[str, Price]] | None = None,
        media: Mapping[str, _MediaEntry] | None = None,
    ) -> None:
        self._bundled = MappingProxyType(dict(bundled))
        self._overrides = MappingProxyType(dict(overrides or {}))
        self._media = MappingProxyType(dict(media or {}))
        self._memo: dict[tuple[str, str], Price | None] = {}  # GIL-atomic dict ops

    @classmethod
    def bundled(cls) -> PriceBook:
        """The table shipped in ``addon/pricing/prices.json`` (parsed once per process)."""
        return _bundled_book()

    @classmethod
    def from_table(cls, table: Mapping[str, object]) -> PriceBook:
        """A book from the parsed contents of a ``prices.json``; ValueError if malformed."""
        models = table.get("models")
        if not isinstance(models, Mapping):
            raise ValueError("price table has no 'models' object")
        entries: dict[str, _Entry] = {}
        for model, entry in models.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("provider"), str):
                raise ValueError(f"price table entry {model!r} has no provider")
            try:
                price = price_from_bundled(entry, model)
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"price table entry {model!r}: {e}") from e
            if model.lower() in entries:
                raise ValueError(f"price table lists {model!r} twice (names are case-insensitive)")
            entries[model.lower()] = _Entry(model, entry["provider"], price)
        return cls(entries, media=_media_entries(table.get("media", {})))

    def with_overrides(self, overrides: Mapping[str, Price]) -> PriceBook:
        """A new book in which ``overrides`` (model name -> Price) win over everything else."""
        merged = dict(self._overrides)
        for model, price in overrides.items():
            if not isinstance(price, Price):
                raise TypeError(f"override for {model!r} is not a Price")
            merged[model.strip().lower()] = (model.strip(), price)
        return PriceBook(self._bundled, merged, self._media)

    def lookup(self, provider: str, model: str | None) -> Price | None:
        """The price of ``model`` as served by ``provider``, or None if it is unknown.

        Memoised: a book is immutable, and the proxy asks for the same few models."""
        if not model or not model.strip():
            return None
        try:
            return self._memo[(provider, model)]
        except KeyError:
            pass
        found = self._lookup(provider, model)
        if len(self._memo) < _MEMO_MAX:
            self._memo[(provider, model)] = found
        return found

    def _lookup(self, provider: str, model: str) -> Price | None:
        prefix = _prefix(provider)
        keys = list(_keys(prefix, model))
        for key in keys:
            if key in self._overrides:
                return self._overrides[key][1]
        allowed = {prefix, *_ALSO.get(prefix, ())}
        for key in keys:
            entry = self._bundled.get(key)
            if entry is not None and entry.provider in allowed:
                return entry.price
        return None

    def lookup_media(self, provider: str, model: str | None) -> MediaPrice | None:
        """The media price (images, audio, speech) of ``model`` at ``provider``, or None.

        Found like ``lookup`` finds token prices; bundled only (no overrides yet)."""
        if not model or not model.strip():
            return None
        prefix = _prefix(provider)
        allowed = {prefix, *_ALSO.get(prefix, ())}
        for key in _keys(prefix, model):
            entry = self._media.get(key)
            if entry is not None and entry.provider in allowed:
                return entry.price
        return None

    def media_entries(self) -> list[tuple[str, str, MediaPrice]]:
        """Every bundled media price as (model, provider, price), sorted by model name."""
        return [(e.model, e.provider, e.price) for _, e in sorted(self._media.items())]

    def entries(self) -> list[tuple[str, str, Price, Source]]:
        """Every known model as (model, provider, price, source), sorted by model name."""
        rows: dict[str, tuple[str, str, Price, Source]] = {
            key: (e.model, e.provider, e.price, "bundled") for key, e in self._bundled.items()
        }
        for key, (model, price) in self._overrides.items():
            bundled = self._bundled.get(key)
            provider = bundled.provider if bundled else _provider_of(key)
            rows[key] = (model, provider, price, "override")
        return [rows[key] for key in sorted(rows)]


def _provider_of(model: str) -> str:
    """The provider a prefixed override name implies (``groq/x`` -> ``groq``), else ""."""
    head, sep, _ = model.partition("/")
    return head if sep else ""


def _media_entries(section: object) -> dict[str, _MediaEntry]:
    if not isinstance(section, Mapping):
        raise ValueError("price table 'media' is not an object")
    out: dict[str, _MediaEntry] = {}
    for model, entry in section.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("provider"), str):
            raise ValueError(f"media price entry {model!r} has no provider")
        try:
            price = media_price_from_json(entry, model)
        except (TypeError, ValueError) as e:
            raise ValueError(f"media price entry {model!r}: {e}") from e
        if model.lower() in out:
            raise ValueError(f"price table lists media {model!r} twice")
        out[model.lower()] = _MediaEntry(model, entry["provider"], price)
    return out


@functools.cache
def _bundled_book() -> PriceBook:
    text = resources.files("addon.pricing").joinpath("prices.json").read_text(encoding="utf-8")
    return PriceBook.from_table(json.loads(text))
